#include "process/fork_server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <csignal>
#include "process/pidfd.hpp"

#include <fmt/format.h>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "crew/detail/code_address.hpp"
#include "crew/error.hpp"
#include "foundation/descriptor_passing.hpp"
#include "foundation/library_lock.hpp"
#include "foundation/log.hpp"
#include "process/child.hpp"

namespace crew::detail {
namespace {

enum class RequestKind : std::uint32_t {
    fork_child,      // then the encoded ChildRequest
    spawn_child,     // the same
    track_segment,   // then a shared-memory name to unlink when the program ends; no reply
    forget_segment,  // then a name no longer to unlink
};

struct RequestHeader {
    RequestKind kind;
    std::uint32_t reserved;
    std::uint64_t size;
};

// What the server gets when the thread that started it ends (its parent-death signal).
constexpr int parent_died_signal = SIGUSR1;

struct Reply {
    std::int32_t pid_or_error;  // the child's pid, or -errno when it could not be forked
};

// In a spawn child: execute the program anew, handing it the request in an inherited memfd and
// the passed descriptors under the same numbers.
[[noreturn]] void execute_spawned(const ChildRequest& request) {
    for (int fd : request.fds) ::fcntl(fd, F_SETFD, 0);
    std::vector<std::byte> request_bytes = encode_child_request(request);
    int memory = ::memfd_create("crew-spawn-request", 0);  // no CLOEXEC: the new program reads it
    bool written = memory >= 0 && ::write(memory, request_bytes.data(), request_bytes.size()) ==
                                      static_cast<ssize_t>(request_bytes.size());
    if (written) {
        ::setenv(spawn_request_variable, std::to_string(memory).c_str(), 1);
        std::vector<char*> argv;
        for (const std::string& argument : request.argv) {
            argv.push_back(const_cast<char*>(argument.c_str()));
        }
        argv.push_back(nullptr);
        ::execv("/proc/self/exe", argv.data());
    }
    std::string message =
        fmt::format("crew: cannot start spawn child {}: {}\n", request.name, std::strerror(errno));
    write_to_stderr(message);
    ::_exit(127);
}

class Server {
  public:
    explicit Server(UniqueFd socket) : socket_(std::move(socket)) {}

    [[noreturn]] void serve() {
        sigset_t child_signals;
        sigemptyset(&child_signals);
        sigaddset(&child_signals, SIGCHLD);
        sigaddset(&child_signals, parent_died_signal);
        sigprocmask(SIG_BLOCK, &child_signals, nullptr);
        int signal_fd = ::signalfd(-1, &child_signals, SFD_CLOEXEC | SFD_NONBLOCK);
        if (signal_fd < 0) fail("signalfd");
        signals_ = UniqueFd(signal_fd);
        // Ctrl-C is for the program; it decides what happens to its children.
        std::signal(SIGINT, SIG_IGN);
        std::signal(SIGPIPE, SIG_IGN);
        try {
            preload_executable_symbols();  // so that children inherit it instead of reading it
        } catch (const Error&) {
            // Only a head start: a child that needs the symbols reports the same error itself.
        }

        while (true) {
            pollfd watched[2] = {{socket_.get(), POLLIN, 0}, {signals_.get(), POLLIN, 0}};
            if (::poll(watched, 2, -1) < 0) {
                if (errno == EINTR) continue;
                fail("poll");
            }
            if (watched[1].revents != 0) handle_signals();
            if (watched[0].revents != 0) handle_request();
        }
    }

  private:
    [[noreturn]] void fail(const char* what) {
        std::string message =
            fmt::format("crew: the fork server failed: {}: {}\n", what, std::strerror(errno));
        write_to_stderr(message);
        shut_down();
    }

    // The program has ended (or closed the socket): its children must not outlive it, nor the
    // named shared memory it left.
    [[noreturn]] void shut_down() {
        for (auto& [pid, status] : status_of_) ::kill(pid, SIGKILL);
        for (auto& [pid, status] : status_of_) ::waitpid(pid, nullptr, 0);
        for (const std::string& name : segments_) ::shm_unlink(name.c_str());
        ::_exit(0);
    }

    void handle_signals() {
        signalfd_siginfo info;
        while (::read(signals_.get(), &info, sizeof info) > 0) {
            if (info.ssi_signo == parent_died_signal) {
                // What the program sent before it died still counts (shared memory to unlink).
                pollfd socket{socket_.get(), POLLIN, 0};
                while (::poll(&socket, 1, 0) > 0) handle_request();  // ends at its end of file
                shut_down();
            }
        }
        reap();
    }

    void reap() {
        int status = 0;
        pid_t pid;
        while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
            auto child = status_of_.find(pid);
            if (child == status_of_.end()) continue;
            // The parent may have stopped listening; EPIPE is fine (SIGPIPE is ignored here).
            (void)!::write(child->second.get(), &status, sizeof status);
            status_of_.erase(child);
        }
    }

    void handle_request() {
        RequestHeader header{};
        std::vector<UniqueFd> fds;  // the status pipe, then the child's passed descriptors
        if (!receive_with_fds(socket_.get(), &header, sizeof header, fds)) shut_down();
        std::vector<std::byte> request_bytes(header.size);
        std::vector<UniqueFd> unexpected;
        if (!receive_with_fds(socket_.get(), request_bytes.data(), request_bytes.size(),
                              unexpected)) {
            shut_down();
        }
        if (header.kind == RequestKind::track_segment ||
            header.kind == RequestKind::forget_segment) {
            std::string name(reinterpret_cast<const char*>(request_bytes.data()),
                             request_bytes.size());
            if (header.kind == RequestKind::track_segment) {
                segments_.insert(std::move(name));
            } else {
                segments_.erase(name);
            }
            return;
        }
        if (fds.empty()) shut_down();
        UniqueFd status = std::move(fds.front());
        ChildRequest request = decode_child_request(request_bytes);
        for (std::size_t i = 1; i < fds.size(); ++i) request.fds.push_back(fds[i].get());

        pid_t server = ::getpid();
        pid_t pid = ::fork();
        if (pid == 0) {
            become_child(server, true, request.fds);
            if (header.kind == RequestKind::spawn_child) execute_spawned(request);
            run_child_request(request);
        }
        Reply reply{pid < 0 ? -errno : pid};
        int pidfd = -1;
        if (pid > 0) {
            pidfd = open_pidfd(pid);
            if (pidfd < 0) {
                reply.pid_or_error = -errno;
                ::kill(pid, SIGKILL);
                ::waitpid(pid, nullptr, 0);
            } else {
                status_of_.emplace(pid, std::move(status));
            }
        }
        std::span<const int> reply_fds;
        if (pidfd >= 0) reply_fds = std::span<const int>(&pidfd, 1);
        bool sent = send_with_fds(socket_.get(), &reply, sizeof reply, reply_fds);
        if (pidfd >= 0) ::close(pidfd);
        if (!sent) shut_down();
    }

    UniqueFd socket_;
    UniqueFd signals_;
    std::map<pid_t, UniqueFd> status_of_;  // running children -> where their status goes
    std::set<std::string> segments_;       // shared memory to unlink at the end
};

// Guarded by library_mutex().
struct Handle {
    pid_t owner = 0;   // the process that started the server
    pid_t server = 0;  // the server's pid, a child of owner
    UniqueFd socket;
};

// A fork child must start its own server: it finds the handle empty.
Handle& handle() {
    static Handle* instance = [] {
        auto* created = new Handle;
        on_fork_child([] {
            Handle& h = handle();
            h.owner = 0;
            h.server = 0;
            h.socket = UniqueFd();  // the child closes the descriptor itself (become_child)
        });
        return created;
    }();
    return *instance;
}

void start_server(Handle& h) {
    if (h.owner == ::getpid() && h.server > 0) {
        h.socket.reset();
        ::waitpid(h.server, nullptr, 0);  // the old server ends once its socket closes
    }
    auto [ours, theirs] = make_socket_pair("the fork server's socket");
    flush_standard_streams();
    pid_t parent = ::getpid();
    // Started from the main thread, the server may also follow the parent-death signal; started
    // from another thread it must not, as that thread may end long before the program.
    bool main_thread = ::gettid() == parent;
    pid_t pid = ::fork();
    if (pid < 0) throw_system_error("cannot fork the fork server");
    if (pid == 0) {
        int kept = ::fcntl(theirs.get(), F_DUPFD_CLOEXEC, 0);
        // The parent's death must let the server end its children and unlink what the program
        // left in /dev/shm, so it is a signal the server handles, not SIGKILL; blocked, it waits
        // for the server's signalfd.
        sigset_t death;
        sigemptyset(&death);
        sigaddset(&death, parent_died_signal);
        sigprocmask(SIG_BLOCK, &death, nullptr);
        become_child(parent, false, {}, main_thread ? parent_died_signal : 0);
        if (kept < 0) ::_exit(1);
        set_current_process_name("ForkServer");
        ::prctl(PR_SET_NAME, "crew-forkserver");  // what ps and top show
        Server(UniqueFd(kept)).serve();
    }
    h.owner = parent;
    h.server = pid;
    h.socket = std::move(ours);
    log(LogLevel::debug, "fork server started with pid {}", pid);
}

void ensure_started(Handle& h) {
    if (!h.socket) start_server(h);
}

}  // namespace

void ensure_fork_server() {
    std::lock_guard lock(library_mutex());
    ensure_started(handle());
}

ServedChild start_through_fork_server(bool spawn, std::span<const std::byte> request,
                                      std::span<const int> fds) {
    std::lock_guard lock(library_mutex());
    Handle& h = handle();
    ensure_started(h);
    for (int attempt = 0;; ++attempt) {
        int pipe_ends[2];
        if (::pipe2(pipe_ends, O_CLOEXEC) != 0) throw_system_error("cannot create a status pipe");
        UniqueFd status_read(pipe_ends[0]);
        UniqueFd status_write(pipe_ends[1]);

        RequestHeader header{spawn ? RequestKind::spawn_child : RequestKind::fork_child, 0,
                             request.size()};
        std::vector<int> sent_fds{status_write.get()};
        sent_fds.insert(sent_fds.end(), fds.begin(), fds.end());
        Reply reply{};
        bool ok = send_with_fds(h.socket.get(), &header, sizeof header, sent_fds) &&
                  send_with_fds(h.socket.get(), request.data(), request.size(), {});
        status_write.reset();
        std::vector<UniqueFd> received;
        ok = ok && receive_with_fds(h.socket.get(), &reply, sizeof reply, received);
        UniqueFd owned_pidfd = received.empty() ? UniqueFd() : std::move(received.front());
        if (!ok) {
            // The server died (killed from outside?): start a new one and try once more.
            int error = errno;
            start_server(h);
            if (attempt == 0) continue;
            throw SystemError("the fork server stopped answering", error == 0 ? EPIPE : error);
        }
        if (reply.pid_or_error < 0) {
            throw SystemError("the fork server could not start a child", -reply.pid_or_error);
        }
        if (!owned_pidfd) throw Error("crew: the fork server sent no pidfd for its child");
        return {reply.pid_or_error, std::move(owned_pidfd), std::move(status_read)};
    }
}

namespace {

bool send_segment_request(Handle& h, RequestKind kind, const std::string& name) {
    RequestHeader header{kind, 0, name.size()};
    return send_with_fds(h.socket.get(), &header, sizeof header, {}) &&
           send_with_fds(h.socket.get(), name.data(), name.size(), {});
}

}  // namespace

void track_shared_memory(const std::string& name) {
    std::lock_guard lock(library_mutex());
    Handle& h = handle();
    ensure_started(h);
    if (!send_segment_request(h, RequestKind::track_segment, name)) {
        throw_system_error("cannot ask the fork server to watch shared memory " + name);
    }
}

void forget_shared_memory(const std::string& name) noexcept {
    std::lock_guard lock(library_mutex());
    Handle& h = handle();
    // No server (a fork child's, or one the program's end stopped): nothing to forget.
    if (h.socket) (void)send_segment_request(h, RequestKind::forget_segment, name);
}

}  // namespace crew::detail
