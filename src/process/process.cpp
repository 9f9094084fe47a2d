#include "crew/process.hpp"

#include <poll.h>
#include <signal.h>

#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "crew/detail/code_address.hpp"
#include "crew/detail/futex.hpp"
#include "crew/detail/unique_fd.hpp"
#include "crew/error.hpp"
#include "foundation/library_lock.hpp"
#include "foundation/log.hpp"
#include "foundation/signal_free_thread.hpp"
#include "process/child.hpp"
#include "process/fork_server.hpp"
#include "process/pidfd.hpp"
#include "process/program.hpp"

namespace crew {
namespace detail {

struct ProcessState {
    std::string name;
    bool daemon = false;
    std::optional<StartMethod> requested_method;
    std::vector<std::byte> call;  // empty for subclasses, which override run()
    bool has_target = false;
    std::vector<UniqueFd> call_fds;  // descriptors attached to the call, kept until start()
    std::vector<int> call_fd_numbers;

    std::mutex mutex;       // guards what follows; never held while waiting for the child
    bool starting = false;  // start() is under way
    bool started = false;
    bool ended = false;
    bool closed = false;
    StartMethod method = StartMethod::forkserver;
    pid_t pid = 0;
    int exitcode = 0;
    UniqueFd pidfd;   // readable once the child has ended
    UniqueFd status;  // forkserver and spawn children: the wait status, from the fork server
};

namespace {

std::atomic<int> process_counter{0};

// The started children of this process whose Process objects still exist: at normal exit,
// daemons are terminated and the others joined, as Python does. Guarded by library_mutex().
struct LiveChildren {
    std::set<ProcessState*> states;
    bool exit_handler_installed = false;
};

// A fork child finds the list empty: those are its parent's children, not its own.
LiveChildren& live_children() {
    static LiveChildren* instance = [] {
        auto* created = new LiveChildren;
        on_fork_child([] { live_children().states.clear(); });
        return created;
    }();
    return *instance;
}

int exitcode_of(int wait_status) {
    if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
    if (WIFSIGNALED(wait_status)) return -WTERMSIG(wait_status);
    return 1;
}

// Waits until the child's pidfd is readable, at most timeout (forever if empty).
bool wait_readable(int fd, Timeout timeout) {
    const Deadline deadline = deadline_for(timeout);
    while (true) {
        pollfd watched{fd, POLLIN, 0};
        timespec wait{};
        timespec* limit = nullptr;
        if (deadline) {
            wait = to_timespec(std::max(*deadline - Clock::now(), Clock::duration::zero()));
            limit = &wait;
        }
        int ready = ::ppoll(&watched, 1, limit, nullptr);
        if (ready > 0) return true;
        if (ready == 0) return false;
        if (errno != EINTR) throw_system_error("cannot wait for a child process");
    }
}

// The child has ended (its pidfd is readable): learn how, once. Called with state.mutex held.
void collect_exit(ProcessState& state) {
    if (state.ended) return;
    int wait_status = 0;
    if (state.method == StartMethod::fork) {
        pid_t reaped;
        do {
            reaped = ::waitpid(state.pid, &wait_status, 0);
        } while (reaped < 0 && errno == EINTR);
        if (reaped < 0) {
            throw SystemError(fmt::format("cannot learn how {} (pid {}) ended; was SIGCHLD set to "
                                          "SIG_IGN, or did something else reap it?",
                                          state.name, state.pid),
                              errno);
        }
    } else {
        ssize_t got;
        do {
            got = ::read(state.status.get(), &wait_status, sizeof wait_status);
        } while (got < 0 && errno == EINTR);
        // No status means the fork server died, and its death killed the child with SIGKILL.
        if (got != sizeof wait_status) wait_status = SIGKILL;
    }
    state.exitcode = exitcode_of(wait_status);
    state.ended = true;
    log(LogLevel::info, "{} (pid {}) ended with exitcode {}", state.name, state.pid,
        state.exitcode);
}

// Called with state.mutex held.
void refuse_if_closed(const ProcessState& state) {
    if (state.closed) {
        throw Error(
            fmt::format("crew: {} is closed; a closed Process can only say its name", state.name));
    }
}

std::optional<ProcessInfo>& parent_identity() {
    static std::optional<ProcessInfo>* parent = new std::optional<ProcessInfo>;
    return *parent;
}

bool wait_for_end(ProcessState& state, Timeout timeout) {
    {
        std::lock_guard lock(state.mutex);
        refuse_if_closed(state);
        if (!state.started) {
            throw Error(fmt::format("crew: join() called before start() on {}; start it first",
                                    state.name));
        }
        if (state.ended) return true;
    }
    // The descriptors stay open while the state lives, so waiting needs no lock.
    if (!wait_readable(state.pidfd.get(), timeout)) return false;
    std::lock_guard lock(state.mutex);
    collect_exit(state);
    return true;
}

void send_signal(ProcessState& state, int signal, const char* call) {
    std::lock_guard lock(state.mutex);
    refuse_if_closed(state);
    if (!state.started) {
        throw Error(fmt::format("crew: {}() called before start() on {}", call, state.name));
    }
    if (state.ended) return;
    if (send_signal_to_pidfd(state.pidfd.get(), signal) != 0 && errno != ESRCH) {
        throw_system_error(fmt::format("cannot send signal {} to {}", signal, state.name));
    }
}

// Ends a daemon child: SIGTERM, then SIGKILL if it has not ended within a second.
void terminate_daemon(ProcessState& state) {
    send_signal(state, SIGTERM, "terminate");
    if (!wait_for_end(state, std::chrono::seconds(1))) {
        send_signal(state, SIGKILL, "kill");
        wait_for_end(state, std::nullopt);
    }
}

void finish_at_exit(ProcessState& state) {
    try {
        if (state.daemon) {
            terminate_daemon(state);
        } else {
            wait_for_end(state, std::nullopt);
        }
    } catch (const Error& error) {
        log(LogLevel::error, "{}", error.what());
    }
}

void finish_live_children_at_exit() {
    std::vector<ProcessState*> states;
    {
        std::lock_guard lock(library_mutex());
        LiveChildren& live = live_children();
        states.assign(live.states.begin(), live.states.end());
    }
    for (ProcessState* state : states) finish_at_exit(*state);
}

// While crew logs at info, a thread of the parent's watches its children's pidfds, so that a
// child's end is logged as it happens: a child killed from outside would otherwise go unreported
// until the program next asked about it. Only made once logging is on; leaked, like the list of
// live children, so that it outlives the exit handlers that join children.
class DeathLog {
  public:
    static void watch(ProcessState& state);

  private:
    DeathLog();
    void run();
    static DeathLog*& instance();

    struct Child {
        ProcessState* state;
        pid_t pid;  // with the address, tells this child's state from a later one's
        UniqueFd pidfd;
    };
    std::mutex mutex_;  // guards added_
    std::vector<Child> added_;
    UniqueFd wake_;
};

DeathLog*& DeathLog::instance() {
    static DeathLog* log = [] {
        // A fork child does not have the thread: it starts its own if it logs.
        on_fork_child([] { instance() = nullptr; });
        return nullptr;
    }();
    return log;
}

DeathLog::DeathLog() {
    wake_ = make_eventfd("an eventfd to log children's ends");
    start_signal_free_thread([this] { run(); }, "a thread to log children's ends").detach();
}

// Called with library_mutex() held, after state was added to the live children.
void DeathLog::watch(ProcessState& state) {
    if (log_level() > LogLevel::info) return;
    UniqueFd pidfd = duplicate(state.pidfd.get(), "a pidfd to log " + state.name + "'s end");
    if (instance() == nullptr) instance() = new DeathLog;
    DeathLog& log = *instance();
    {
        std::lock_guard lock(log.mutex_);
        log.added_.push_back({&state, state.pid, std::move(pidfd)});
    }
    const std::uint64_t one = 1;
    (void)!::write(log.wake_.get(), &one, sizeof one);  // a full counter wakes it as well
}

void DeathLog::run() {
    std::vector<Child> watched;
    std::vector<pollfd> descriptors;
    while (true) {
        descriptors.assign(1, {wake_.get(), POLLIN, 0});
        for (auto& child : watched) descriptors.push_back({child.pidfd.get(), POLLIN, 0});
        if (::poll(descriptors.data(), descriptors.size(), -1) < 0) {
            if (errno == EINTR) continue;
            log(LogLevel::error, "cannot watch for children's ends any more: {}",
                std::strerror(errno));
            return;
        }
        if (descriptors[0].revents != 0) {
            std::uint64_t count;
            (void)!::read(wake_.get(), &count, sizeof count);
            std::lock_guard lock(mutex_);
            for (auto& child : added_) watched.push_back(std::move(child));
            added_.clear();
        }
        for (std::size_t i = descriptors.size() - 1; i > 0; --i) {
            if (descriptors[i].revents == 0) continue;
            const Child ended = std::move(watched[i - 1]);
            watched.erase(watched.begin() + static_cast<std::ptrdiff_t>(i - 1));
            std::lock_guard live(library_mutex());
            // Gone from the list: its Process was destroyed or closed, and it said so itself.
            if (live_children().states.count(ended.state) == 0) continue;
            std::lock_guard lock(ended.state->mutex);
            if (ended.state->pid != ended.pid) continue;
            ProcessState* state = ended.state;
            try {
                collect_exit(*state);
            } catch (const Error& error) {
                log(LogLevel::error, "{}", error.what());
            }
        }
    }
}

void add_live_child(ProcessState& state) {
    std::lock_guard lock(library_mutex());
    LiveChildren& live = live_children();
    if (!live.exit_handler_installed) {
        std::atexit(finish_live_children_at_exit);
        live.exit_handler_installed = true;
    }
    live.states.insert(&state);
    DeathLog::watch(state);
}

}  // namespace
}  // namespace detail

Process::Process(ProcessOptions options) : state_(std::make_unique<detail::ProcessState>()) {
    state_->name = options.name.empty() ? "Process-" + std::to_string(++detail::process_counter)
                                        : std::move(options.name);
    state_->daemon = options.daemon;
    state_->requested_method = options.start_method;
}

Process::Process(Process&& other) noexcept = default;

Process::~Process() {
    if (!state_) return;
    {
        std::lock_guard lock(detail::library_mutex());
        detail::live_children().states.erase(state_.get());
    }
    bool started;
    {
        std::lock_guard lock(state_->mutex);
        // A closed process has ended and been let go of: nothing is left to finish.
        started = state_->started && !state_->closed;
    }
    if (started) detail::finish_at_exit(*state_);
}

void Process::set_target(std::span<const std::byte> call, std::span<const int> fds) {
    state_->call.assign(call.begin(), call.end());
    state_->has_target = true;
    // Copies, so that the caller may close its own descriptors before start().
    for (int fd : fds) {
        state_->call_fds.push_back(detail::duplicate(fd, "a descriptor for " + state_->name));
        state_->call_fd_numbers.push_back(state_->call_fds.back().get());
    }
}

void Process::run() {
    if (!state_->has_target) return;
    detail::Reader call(state_->call, state_->call_fd_numbers);
    detail::Writer result;
    detail::invoke_call(call, result);
}

namespace {

// Checks that the process may start now, and how, and marks it starting.
StartMethod claim_start(detail::ProcessState& state) {
    std::lock_guard lock(state.mutex);
    detail::refuse_if_closed(state);
    if (state.started || state.starting) {
        throw Error(
            fmt::format("crew: start() called twice on {}; a process can be started "
                        "only once: make a new Process to run it again",
                        state.name));
    }
    StartMethod method = state.requested_method.value_or(get_start_method());
    if (!state.has_target) {
        if (state.requested_method && method != StartMethod::fork) {
            throw Error(
                fmt::format("crew: {} is a Process subclass and can only start with "
                            "fork: its members cannot be rebuilt in a fresh process",
                            state.name));
        }
        method = StartMethod::fork;
    }
    if (method == StartMethod::spawn && !detail::initialized()) {
        throw Error(
            "crew: the spawn start method needs crew::init(argc, argv) as the first "
            "line of main: the spawned program runs main again and init turns it into "
            "the child");
    }
    state.starting = true;
    return method;
}

struct StartedChild {
    pid_t pid = 0;
    detail::UniqueFd pidfd;
    detail::UniqueFd status;  // from the fork server; none for a forked child
};

// Forks; the child runs run and never returns here.
StartedChild start_by_fork(detail::ProcessState& state, const std::function<void()>& run) {
    // Read here once, the symbol table that fork children check targets against is inherited
    // instead of read by each.
    detail::preload_executable_symbols();
    detail::flush_standard_streams();
    pid_t parent = ::getpid();
    std::string parent_name = detail::current_process_name();
    const pid_t pid = ::fork();
    if (pid < 0) detail::throw_system_error("cannot fork " + state.name);
    if (pid == 0) {
        detail::become_child(parent, false, state.call_fd_numbers);
        detail::set_parent_process(std::move(parent_name), parent);
        state.started = true;  // as Python's self.pid in the child: its own pid
        state.pid = ::getpid();
        detail::run_child(state.name, detail::log_level(), run);
    }
    const int opened = detail::open_pidfd(pid);
    if (opened < 0) {
        const int error = errno;
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        throw SystemError("cannot open a pidfd for " + state.name, error);
    }
    return {pid, detail::UniqueFd(opened), {}};
}

// Has the fork server start the child (forkserver and spawn): it runs the target it is sent.
StartedChild start_through_server(detail::ProcessState& state, StartMethod method) {
    detail::ChildRequest request{
        state.name, detail::log_level(), detail::current_process_name(), ::getpid(), {}, state.call,
        {}};
    if (method == StartMethod::spawn) request.argv = detail::program_arguments();
    detail::ServedChild child = detail::start_through_fork_server(
        method == StartMethod::spawn, detail::encode_child_request(request), state.call_fd_numbers);
    return {child.pid, std::move(child.pidfd), std::move(child.status)};
}

}  // namespace

void Process::start() {
    detail::ProcessState& state = *state_;
    const StartMethod method = claim_start(state);
    // The state lock is not held from here on: a fork child inherits it free, and its run() may
    // ask its own Process for its pid or name.
    StartedChild child;
    try {
        child = method == StartMethod::fork ? start_by_fork(state, [this] { run(); })
                                            : start_through_server(state, method);
    } catch (...) {
        std::lock_guard lock(state.mutex);
        state.starting = false;
        throw;
    }
    {
        std::lock_guard lock(state.mutex);
        state.pid = child.pid;
        state.pidfd = std::move(child.pidfd);
        state.status = std::move(child.status);
        state.method = method;
        state.started = true;
        // The child has its copies now; the parent's would keep pipes from seeing their end.
        state.call_fds.clear();
    }
    detail::add_live_child(state);
    detail::log(LogLevel::info, "{} started with pid {} ({})", state.name, child.pid,
                to_string(method));
}

namespace {
// Inside its own child, a subclass's Process would wait for itself forever.
void refuse_joining_itself(detail::ProcessState& state) {
    std::lock_guard lock(state.mutex);
    if (state.started && state.pid == ::getpid()) {
        throw Error(
            fmt::format("crew: {} cannot join itself; join a process from its parent", state.name));
    }
}
}  // namespace

void Process::join() {
    refuse_joining_itself(*state_);
    detail::wait_for_end(*state_, std::nullopt);
}

bool Process::join_for(std::chrono::nanoseconds timeout) {
    refuse_joining_itself(*state_);
    return detail::wait_for_end(*state_, timeout);
}

bool Process::is_alive() {
    {
        std::lock_guard lock(state_->mutex);
        detail::refuse_if_closed(*state_);
        if (!state_->started || state_->ended) return false;
    }
    return !detail::wait_for_end(*state_, std::chrono::nanoseconds::zero());
}

std::optional<int> Process::exitcode() {
    if (is_alive()) return std::nullopt;
    std::lock_guard lock(state_->mutex);
    if (!state_->ended) return std::nullopt;
    return state_->exitcode;
}

std::optional<pid_t> Process::pid() const {
    std::lock_guard lock(state_->mutex);
    if (!state_->started) return std::nullopt;
    return state_->pid;
}

int Process::sentinel() const {
    std::lock_guard lock(state_->mutex);
    detail::refuse_if_closed(*state_);
    if (!state_->started) {
        throw Error(fmt::format("crew: sentinel() called before start() on {}", state_->name));
    }
    return state_->pidfd.get();
}

void Process::close() {
    {
        std::lock_guard lock(state_->mutex);
        if (state_->closed) return;
    }
    if (is_alive()) {
        throw Error(fmt::format(
            "crew: close() called on {} while it is still running; join() or terminate() it first",
            state_->name));
    }
    {
        std::lock_guard lock(detail::library_mutex());
        detail::live_children().states.erase(state_.get());
    }
    std::lock_guard lock(state_->mutex);
    state_->pidfd.reset();
    state_->status.reset();
    state_->call_fds.clear();
    state_->closed = true;
}

ProcessInfo current_process() {
    return {detail::current_process_name(), ::getpid()};
}

std::optional<ProcessInfo> parent_process() {
    return detail::parent_identity();
}

std::vector<ProcessInfo> active_children() {
    std::vector<ProcessInfo> children;
    std::lock_guard lock(detail::library_mutex());  // no Process is destroyed meanwhile
    for (detail::ProcessState* state : detail::live_children().states) {
        if (!detail::wait_for_end(*state, std::chrono::nanoseconds::zero())) {
            children.push_back({state->name, state->pid});
        }
    }
    return children;
}

void detail::set_parent_process(std::string name, pid_t pid) {
    parent_identity() = ProcessInfo{std::move(name), pid};
}

int detail::ProcessAccess::pidfd(const Process& process) {
    std::lock_guard lock(process.state_->mutex);
    return process.state_->pidfd.get();
}

void Process::terminate() {
    detail::send_signal(*state_, SIGTERM, "terminate");
}

void Process::kill() {
    detail::send_signal(*state_, SIGKILL, "kill");
}

const std::string& Process::name() const {
    return state_->name;
}

void Process::set_name(std::string name) {
    state_->name = std::move(name);
}

bool Process::daemon() const {
    return state_->daemon;
}

void Process::set_daemon(bool daemon) {
    std::lock_guard lock(state_->mutex);
    if (state_->started) {
        throw Error(fmt::format("crew: set_daemon() called on {} after start(); set it before",
                                state_->name));
    }
    state_->daemon = daemon;
}

}  // namespace crew
