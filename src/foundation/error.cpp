#include "crew/error.hpp"

#include <cxxabi.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <typeinfo>
#include <utility>

namespace crew {

SystemError::SystemError(const std::string& what_failed, int error_number)
    : Error("crew: " + what_failed + ": " + std::strerror(error_number)),
      error_number_(error_number) {}

RemoteError::RemoteError(std::string type_name, std::string message, int pid)
    : Error(type_name + ": " + message + " (in worker pid " + std::to_string(pid) + ")"),
      type_name_(std::move(type_name)),
      message_(std::move(message)),
      pid_(pid) {}

namespace {
std::string describe_death(int exitcode, int pid) {
    std::string how = exitcode < 0 ? "was killed by signal " + std::to_string(-exitcode) + " (" +
                                         strsignal(-exitcode) + ")"
                                   : "exited with status " + std::to_string(exitcode);
    return "crew: the worker (pid " + std::to_string(pid) + ") running this task " + how +
           "; the task failed, the pool replaced the worker";
}
}  // namespace

WorkerDied::WorkerDied(int exitcode, int pid, const std::string& context)
    : Error(context.empty() ? describe_death(exitcode, pid)
                            : context + ": " + describe_death(exitcode, pid)),
      exitcode_(exitcode),
      pid_(pid) {}

std::string detail::current_exception_type_name() {
    const std::type_info* type = abi::__cxa_current_exception_type();
    return type == nullptr ? "unknown exception" : demangled_name(*type);
}

std::string detail::describe_current_exception() {
    try {
        throw;
    } catch (const std::exception& error) {
        return current_exception_type_name() + ": " + error.what();
    } catch (...) {
        return current_exception_type_name();
    }
}

std::string detail::demangled_name(const std::type_info& type) {
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> name(
        abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free);
    return status == 0 && name ? name.get() : type.name();
}

void detail::throw_system_error(const std::string& what_failed) {
    throw SystemError(what_failed, errno);
}

Interrupted::Interrupted()
    : Error(
          "crew: interrupted by SIGINT (Ctrl-C) while waiting for a result; the workers of every "
          "pool were stopped and their unfinished tasks failed") {}

}  // namespace crew

namespace crew {

OwnerDied::OwnerDied()
    : Error(
          "crew: a process died holding this lock; the lock was recovered and left released, but "
          "what it guarded may be half-updated: check or repair it, then acquire the lock again") {}

BrokenBarrierError::BrokenBarrierError()
    : Error(
          "crew: the barrier is broken (it was aborted or reset, or a wait on it timed out); "
          "reset() it to use it again") {}

EOFError::EOFError()
    : Error(
          "crew: the connection's other end is closed (or the process holding it ended) and "
          "nothing is left to receive") {}

Empty::Empty()
    : Error("crew: the queue is empty (get_nowait, or get with a timeout that passed)") {}

Full::Full() : Error("crew: the queue is full (put_nowait, or put with a timeout that passed)") {}

}  // namespace crew
