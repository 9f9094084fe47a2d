// crew/error.hpp: the exceptions crew throws.
//
// Every error crew reports is a crew::Error, a std::runtime_error whose what() says what went
// wrong and what to do about it. A failed system call is a crew::SystemError, which also keeps
// the errno value. crew never aborts the calling process for a problem in a child, a message or
// an input: it throws one of these instead.
//
//     try {
//         crew::Process p(work);
//         p.join();                      // join() before start()
//     } catch (const crew::Error& e) {
//         std::cerr << e.what() << '\n';  // "crew: join() called before start() on Process-1 ..."
//     }
#pragma once

#include <stdexcept>
#include <string>
#include <typeinfo>

namespace crew {

class Error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// A system call failed; what() ends with the text of errno.
class SystemError : public Error {
  public:
    SystemError(const std::string& what_failed, int error_number);
    int error_number() const noexcept { return error_number_; }

  private:
    int error_number_;
};

// A process was asked to call something that is not a known entry point of a module it has
// loaded: another build of the program sent it, or the message was corrupted. Nothing was called.
class UnknownCallableError : public Error {
  public:
    using Error::Error;
};

// A task raised an exception in a worker process that crew cannot rebuild as its own type (see
// crew/remote_exception.hpp). what() reads "<type>: <what> (in worker pid N)"; the parts are
// kept too.
class RemoteError : public Error {
  public:
    RemoteError(std::string type_name, std::string message, int pid);
    const std::string& type_name() const noexcept { return type_name_; }
    const std::string& message() const noexcept { return message_; }
    int pid() const noexcept { return pid_; }

  private:
    std::string type_name_;
    std::string message_;
    int pid_;
};

// The worker running a task died (a signal, exit(), abort()) before the task finished. The pool
// replaced the worker; other tasks were not affected.
class WorkerDied : public Error {
  public:
    // exitcode as Process::exitcode(): -N for signal N, else the exit status. context, if any,
    // opens what() (crew::Parallel names the input whose call was running).
    WorkerDied(int exitcode, int pid, const std::string& context = {});
    int exitcode() const noexcept { return exitcode_; }
    // The signal that ended the worker, or 0 if it exited.
    int signal() const noexcept { return exitcode_ < 0 ? -exitcode_ : 0; }
    int pid() const noexcept { return pid_; }

  private:
    int exitcode_;
    int pid_;
};

// The pool's workers cannot start (their initializer keeps failing, say): every task of the pool
// failed with this, and it takes no more. what() says why (Python's BrokenProcessPool).
class BrokenPool : public Error {
  public:
    using Error::Error;
};

// A wait ran out of time (AsyncResult::get(timeout)), or a task ran longer than the pool's
// task_timeout and its worker was killed.
class TimeoutError : public Error {
  public:
    using Error::Error;
};

// Ctrl-C (SIGINT) arrived while this thread waited for a result: every pool's workers were
// stopped, as Python's KeyboardInterrupt ends a `with Pool()` block.
class Interrupted : public Error {
  public:
    Interrupted();
};

// A process died holding the Lock or RLock just acquired (crew/synchronize.hpp). The lock was
// made usable again and left released; what it guarded may be half-updated.
class OwnerDied : public Error {
  public:
    OwnerDied();
};

// A Barrier was aborted or reset, or a wait on it timed out (Python's BrokenBarrierError).
class BrokenBarrierError : public Error {
  public:
    BrokenBarrierError();
};

// recv() on a connection whose other end is closed, or whose process ended (Python's EOFError).
class EOFError : public Error {
  public:
    EOFError();
};

// get_nowait(), or get(timeout) that timed out, on an empty Queue (Python's queue.Empty).
class Empty : public Error {
  public:
    Empty();
};

// put_nowait(), or put(x, timeout) that timed out, on a full Queue (Python's queue.Full).
class Full : public Error {
  public:
    Full();
};

namespace detail {
// Throws SystemError for the current errno.
[[noreturn]] void throw_system_error(const std::string& what_failed);
// The demangled type name of the exception being handled ("unknown exception" outside a handler).
std::string current_exception_type_name();
// "<type>: <what()>" of the exception being handled, or its type alone if it has no what().
std::string describe_current_exception();
std::string demangled_name(const std::type_info& type);
}  // namespace detail

}  // namespace crew
