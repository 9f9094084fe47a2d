// crew/process.hpp: crew::Process, Python's multiprocessing.Process.
//
//     void display_message(std::string message) { std::cout << message << '\n'; }
//
//     int main(int argc, char** argv) {
//         crew::init(argc, argv);
//         crew::Process p1(display_message, "Hello from Process 1");
//         crew::Process p2(display_message, "Hello from Process 2");
//         p1.start();
//         p2.start();
//         p1.join();
//         p2.join();
//     }
//
// The target runs in a child process started with the process's start method
// (crew/start_method.hpp). The target and its arguments are sent to the child as
// crew/serialization.hpp describes; what cannot be sent (a lambda with captures, a pointer) is
// refused at compile time. Arguments are copied when the Process is constructed.
//
// Or subclass Process and override run(). A subclass's members cannot be rebuilt in a fresh
// process, so a subclass always starts with fork: the child inherits the object as it was at
// start(), as under Python's fork method. Asking a subclass for another start method throws.
//
// What the parent sees, as in Python:
//   exitcode() is empty until the child has ended; then 0 when the target returned, the status
//   given to exit(n), 1 when the target threw (the child prints the exception's type and what()
//   to its stderr, as Python prints a traceback) and -N when signal N ended it (-SIGSEGV after a
//   segfault). Nothing the child does can harm the parent.
//
// Blocking: start() returns once the child exists; join() waits for it to end; join(timeout)
// waits at most that long and returns whether it ended. Any thread may call join, is_alive and
// exitcode, also at once.
//
// Lifetime: children never outlive their parent: if the parent dies, even by SIGKILL, they are
// killed. Destroying a started Process waits for its child to end (it joins), except for a daemon
// child, which is terminated (SIGTERM, then SIGKILL after a second). The same happens to children
// whose Process objects are still alive when the parent exits normally. Children never run the
// parent's atexit handlers and inherit none of the descriptors crew opened for other children.
//
// Misuse, such as start() twice or join() before start(), throws crew::Error.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <concepts>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "crew/detail/byte_stream.hpp"
#include "crew/detail/callable.hpp"
#include "crew/start_method.hpp"

namespace crew {

namespace detail {
struct ProcessState;
struct ProcessAccess;
}  // namespace detail

struct ProcessOptions {
    // Every member has an initializer, so that designated initializers may leave any out without
    // -Wmissing-field-initializers.
    std::string name = {};                         // default "Process-N", N counting from 1
    bool daemon = false;                           // see "Lifetime" above
    std::optional<StartMethod> start_method = {};  // default crew::get_start_method() at start()
};

class Process {
  public:
    // A process that will call target(arguments...) in the child.
    template <class Function, class... Arguments>
    requires(!std::same_as<std::remove_cvref_t<Function>, ProcessOptions>) explicit Process(
        Function&& target, Arguments&&... arguments)
        : Process(ProcessOptions{}, std::forward<Function>(target),
                  std::forward<Arguments>(arguments)...) {}

    template <class Function, class... Arguments>
    Process(ProcessOptions options, Function&& target, Arguments&&... arguments)
        : Process(std::move(options)) {
        detail::Writer call;
        detail::encode_call(call, std::decay_t<Function>(std::forward<Function>(target)),
                            std::forward<Arguments>(arguments)...);
        set_target(call.bytes(), call.attached_fds());
    }

    Process(Process&& other) noexcept;
    Process& operator=(Process&&) = delete;
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    virtual ~Process();

    // Starts the child. Throws crew::Error if called twice or the child cannot be started.
    void start();
    // Waits until the child has ended. Throws crew::Error before start().
    void join();
    // Waits at most timeout; returns whether the child has ended.
    template <class Rep, class Period>
    bool join(std::chrono::duration<Rep, Period> timeout) {
        return join_for(std::chrono::duration_cast<std::chrono::nanoseconds>(timeout));
    }
    // Whether the child has been started and has not ended yet.
    bool is_alive();
    // The child's exit code once it has ended; see the top of this header.
    std::optional<int> exitcode();
    // The child's pid once started.
    std::optional<pid_t> pid() const;
    // Sends SIGTERM / SIGKILL to the child; does nothing if it has already ended.
    void terminate();
    void kill();
    // A descriptor that becomes readable when the child ends (a pidfd), for poll or epoll beside
    // other descriptors: Python's sentinel. Owned by the Process; throws crew::Error before
    // start().
    int sentinel() const;
    // Releases the child's descriptors; throws crew::Error while the child is still running.
    // Afterwards every call but name() and daemon() throws crew::Error, as in Python.
    void close();

    const std::string& name() const;
    void set_name(std::string name);
    bool daemon() const;
    // Must be called before start().
    void set_daemon(bool daemon);

    // What the child runs: by default the target given to the constructor. Override it in a
    // subclass (which then starts with fork).
    virtual void run();

  protected:
    // For subclasses that override run().
    explicit Process(ProcessOptions options = {});

  private:
    void set_target(std::span<const std::byte> call, std::span<const int> fds);
    bool join_for(std::chrono::nanoseconds timeout);

    std::unique_ptr<detail::ProcessState> state_;
    friend struct detail::ProcessAccess;
};

// A process this one did not start itself: Python's current_process() and parent_process() give
// such objects; here, what they say of it.
struct ProcessInfo {
    std::string name;
    pid_t pid = 0;
};

// This process: "MainProcess" in the program, else the name of the crew::Process it is.
ProcessInfo current_process();
// The process that started this one; none in the main process (Python: None).
std::optional<ProcessInfo> parent_process();
// The children this process started whose Process objects exist and that have not ended.
std::vector<ProcessInfo> active_children();

namespace detail {
// For crew's pools, which watch their workers in an epoll set of their own.
struct ProcessAccess {
    // The started process's pidfd: readable once it has ended.
    static int pidfd(const Process& process);
};
}  // namespace detail

}  // namespace crew
