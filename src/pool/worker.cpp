#include "pool/worker.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "crew/detail/message_ring.hpp"
#include "crew/detail/ring_pair.hpp"
#include "crew/detail/shared_block.hpp"
#include "crew/detail/task.hpp"
#include "crew/error.hpp"
#include "foundation/descriptor_passing.hpp"
#include "foundation/log.hpp"
#include "pool/task_runner.hpp"

namespace crew::detail {
namespace {

// Locks, queues and shared values that tasks carried, kept mapped in a worker for the next task
// that carries the same.
constexpr std::size_t kept_blocks = 64;

}  // namespace

void WorkerSetup::encode_into(Writer& writer) const {
    encode(writer, channel);
    encode(writer, tasks_wake);
    encode(writer, wake);
    encode(writer, descriptors);
    encode(writer, number);
    encode(writer, max_tasks);
    encode(writer, timed);
    encode(writer, initializer);
    encode(writer, static_cast<std::uint32_t>(initializer_fds.size()));
    for (const SentFd& fd : initializer_fds) encode(writer, fd);
}

WorkerSetup WorkerSetup::decode_from(Reader& reader) {
    WorkerSetup setup;
    setup.channel = decode<SentFd>(reader);
    setup.tasks_wake = decode<SentFd>(reader);
    setup.wake = decode<SentFd>(reader);
    setup.descriptors = decode<SentFd>(reader);
    setup.number = decode<std::uint64_t>(reader);
    setup.max_tasks = decode<std::int32_t>(reader);
    setup.timed = decode<bool>(reader);
    setup.initializer = decode<std::vector<std::byte>>(reader);
    const auto fd_count = decode<std::uint32_t>(reader);
    for (std::uint32_t i = 0; i < fd_count; ++i)
        setup.initializer_fds.push_back(decode<SentFd>(reader));
    return setup;
}

namespace {

// The descriptors of the task just read, released to the objects its arguments decode into. A
// worker that cannot get them cannot run its tasks: it ends before it begins the task, which
// then runs on another worker.
std::vector<int> receive_task_fds(int socket, std::uint32_t expected) {
    std::uint32_t count = 0;
    std::vector<UniqueFd> received;
    if (!receive_with_fds(socket, &count, sizeof count, received) || received.size() != count ||
        count != expected) {
        log(LogLevel::error, "a pool worker could not receive a task's file descriptors");
        std::_Exit(1);
    }
    std::vector<int> fds;
    for (UniqueFd& fd : received) fds.push_back(fd.release());
    return fds;
}

// The descriptors a worker needs to take tasks and answer them. A task may close them (a loop
// over every descriptor, say): its worker must then not take another task.
class WorkerDescriptors {
  public:
    explicit WorkerDescriptors(std::array<int, 3> fds) : fds_(fds) {
        // A task that ran for less time than closing a descriptor takes closed none: checking
        // after it would cost more than the task (bench/pool_overhead's round trip is 1 us).
        int copy = ::fcntl(fds_[0], F_DUPFD_CLOEXEC, 0);
        for (int i = 0; i < 3 && copy >= 0; ++i) {
            const auto started = std::chrono::steady_clock::now();
            ::close(copy);
            const auto took = std::chrono::steady_clock::now() - started;
            if (i == 0 || took < shortest_close_) shortest_close_ = took;
            copy = i < 2 ? ::fcntl(fds_[0], F_DUPFD_CLOEXEC, 0) : -1;
        }
    }
    // Whether all are still open, after a task that kept the worker busy that long.
    bool intact_after(std::chrono::nanoseconds busy) const {
        if (busy < shortest_close_) return true;
        std::array<pollfd, 3> watched{};
        for (std::size_t i = 0; i < fds_.size(); ++i) watched[i] = {fds_[i], 0, 0};
        if (::poll(watched.data(), watched.size(), 0) < 0) return errno == EINTR;
        return std::none_of(watched.begin(), watched.end(),
                            [](const pollfd& fd) { return (fd.revents & POLLNVAL) != 0; });
    }

  private:
    std::array<int, 3> fds_;
    std::chrono::nanoseconds shortest_close_{0};
};

// Processes a worker's tasks start and leave behind are the pool's to end: orphans come to the
// worker (a subreaper) rather than to init, and all of them stay in the worker's process group,
// which the pool kills once the worker has ended (see end_left_behind).
void adopt_what_tasks_leave_behind() {
    if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0 || ::setpgid(0, 0) != 0) {
        log(LogLevel::warning,
            "a pool worker could not become the keeper of its tasks' processes: {}",
            std::strerror(errno));
    }
}

// This process's children, zombies included, whichever thread started them.
std::vector<pid_t> children() {
    std::vector<pid_t> pids;
    std::error_code ignored;
    for (const auto& thread : std::filesystem::directory_iterator("/proc/self/task", ignored)) {
        std::ifstream listed(thread.path() / "children");
        for (pid_t child; listed >> child;) pids.push_back(child);
    }
    return pids;
}

// Ends the processes this worker's tasks left, as the worker ends. Each round may bring orphans
// of the last, which come to the worker as their parents die.
void end_children() {
    for (int round = 0; round < 100; ++round) {
        const std::vector<pid_t> left = children();
        if (left.empty()) return;
        for (pid_t child : left) ::kill(child, SIGKILL);
        for (pid_t child : left) ::waitpid(child, nullptr, 0);
    }
}

}  // namespace

namespace {

// A worker's side of its channel, and its life from its initializer to its last task.
class WorkerLoop {
  public:
    explicit WorkerLoop(const WorkerSetup& setup)
        : channel_(RingPair::attach(UniqueFd(setup.channel.fd), RingPair::pool_worker_capacity)),
          tasks_wake_(setup.tasks_wake.fd),
          wake_(setup.wake.fd),
          descriptors_(setup.descriptors.fd),
          needed_({tasks_wake_.get(), wake_.get(), descriptors_.get()}),
          tasks_(channel_.ring_to(worker_end), channel_.capacity(),
                 RingReader::default_pauses_between_looks, tasks_wake_.get()),
          replies_(channel_.ring_to(pool_end), channel_.capacity(), wake_.get()),
          progress_(*reinterpret_cast<WorkerProgress*>(channel_.trailer())),
          timed_(setup.timed) {}

    // Runs the initializer, if any, then says the worker is ready. An initializer that throws
    // is said to the broker, for the error its tasks get should every start fail; the exception
    // then ends the worker, which the pool sees die unready.
    void start(const WorkerSetup& setup) {
        if (!setup.initializer.empty()) {
            // The initializer's Reader owns the descriptors its arguments carried.
            std::vector<int> initializer_fds;
            for (const SentFd& fd : setup.initializer_fds) initializer_fds.push_back(fd.fd);
            Reader call(setup.initializer, initializer_fds);
            Writer ignored;
            try {
                invoke_call(call, ignored);
            } catch (...) {
                start_reply(reply_);
                encode_current_exception(reply_);
                send({.kind = ReplyKind::initializer_failed});
                throw;
            }
        }
        start_reply(reply_);
        send({.kind = ReplyKind::ready});
    }

    // Runs tasks until the pool asks this worker to stop, or max_tasks of them (0: no limit).
    void run(std::int32_t max_tasks) {
        call_returned = timed_ ? note_call_returned : nullptr;
        for (std::int32_t done = 0; max_tasks == 0 || done < max_tasks; ++done) {
            std::optional<std::span<const std::byte>> queued = tasks_.try_read();
            if (!queued) {
                // Nothing to do: the large arguments of the calls done are let go now, so that
                // their memory goes with the call that sent them (carried_span.hpp).
                SharedBlock::release_idle();
            }
            std::span<const std::byte> message = queued ? *queued : tasks_.read();
            // Replies to the tasks before this one woke nobody (see below): the broker gets them
            // now, when this is the last task queued, and gives this worker more while it runs.
            if (!tasks_.more_waiting()) replies_.wake_reader();
            const auto header = read_header<TaskHeader>(message);
            if (header.kind == TaskKind::stop) return;
            const ReplyHeader reply = run_task(header, message.subspan(sizeof header));
            // While more tasks are queued, a reply need not wake a sleeping broker: it is
            // collected with the others, one wake-up for many (a wake-up takes a core from the
            // workers).
            send(reply, tasks_.more_waiting() ? RingWriter::later : RingWriter::now);
        }
        start_reply(reply_);
        send({.kind = ReplyKind::retiring});
    }

  private:
    // Runs one task and writes its results (or what kept it from running) as the reply.
    ReplyHeader run_task(const TaskHeader& header, std::span<const std::byte> calls) {
        task_fds_.clear();
        if (header.descriptors != 0) {
            task_fds_ = receive_task_fds(descriptors_.get(), header.descriptors);
        }
        // Begun: from here on, this worker's death fails (or retries) the call running.
        progress_.call.store(header.begin_call, std::memory_order_relaxed);
        if (timed_) progress_.call_began_ns.store(steady_now_ns(), std::memory_order_relaxed);
        progress_.task.store(header.id, std::memory_order_release);
        running_task = {header.begin_call, header.end_call, &progress_, timed_,
                        header.stop_at_failure};
        const auto [kind, busy] = run_calls(calls, task_fds_, reply_);
        // Sending a large result takes time that no task_timeout counts.
        progress_.call.store(WorkerProgress::sending, std::memory_order_release);
        tasks_.release();
        if (!needed_.intact_after(busy)) end_for_closed_descriptors(header.id);
        return {.task_id = header.id,
                .busy_ns = static_cast<std::uint64_t>(busy.count()),
                .kind = kind};
    }

    // The task closed what this worker needs to take tasks and answer them. The broker may not
    // even be woken by the reply: it learns of it when this worker ends.
    [[noreturn]] void end_for_closed_descriptors(std::uint64_t task_id) {
        start_reply(reply_);
        try {
            throw Error(fmt::format(
                "crew: the task closed file descriptors its pool worker (pid {}) needs; its "
                "result was dropped and the worker replaced",
                ::getpid()));
        } catch (const Error&) {
            encode_current_exception(reply_);
        }
        send({.task_id = task_id, .kind = ReplyKind::failed});
        std::_Exit(1);
    }

    void send(const ReplyHeader& header, RingWriter::Wake wake = RingWriter::now) {
        reply_.overwrite(0, &header, sizeof header);
        replies_.write(reply_.bytes(), wake);
    }

    const RingPair channel_;
    UniqueFd tasks_wake_;
    UniqueFd wake_;
    UniqueFd descriptors_;
    const WorkerDescriptors needed_;
    RingReader tasks_;
    RingWriter replies_;
    WorkerProgress& progress_;
    const bool timed_;
    std::vector<int> task_fds_;  // the task's Reader closes them
    Writer reply_;
};

}  // namespace

void worker_main(WorkerSetup setup) {
    // The terminal sends Ctrl-C to the whole process group: the pool decides about its workers.
    std::signal(SIGINT, SIG_IGN);
    pool_worker_process = true;
    const std::string name = fmt::format("crew-worker-{}", setup.number);
    ::prctl(PR_SET_NAME, name.c_str());  // what ps and top show
    adopt_what_tasks_leave_behind();
    SharedBlock::keep_received(kept_blocks);
    WorkerLoop worker(setup);
    worker.start(setup);
    worker.run(setup.max_tasks);
    end_children();
}

}  // namespace crew::detail
