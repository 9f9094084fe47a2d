#include "crew/detail/pool_core.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "crew/detail/interrupt.hpp"
#include "crew/detail/message_ring.hpp"
#include "crew/detail/shared_mapping.hpp"
#include "crew/detail/spin.hpp"
#include "crew/error.hpp"
#include "crew/init.hpp"
#include "crew/process.hpp"
#include "crew/synchronize.hpp"
#include "foundation/descriptor_passing.hpp"
#include "foundation/log.hpp"

namespace crew::detail {
namespace {

// Each direction of a worker's channel: big enough that a map's chunks rarely wait for space,
// small enough to stay warm (it is touched once, when the worker starts).
constexpr std::size_t ring_capacity = std::size_t{1} << 20;
// Tasks written to a worker ahead of the one it runs, while its tasks are short (under
// queued_work each): at least one, so that it never waits for the broker, and up to about
// queued_work of them, so that a worker fed tiny tasks runs them back to back instead of sleeping
// between the broker's visits. A worker whose tasks take longer gets one at a time: a task
// queued behind a long one would wait there while another worker may sit idle.
constexpr std::size_t least_tasks_in_flight = 2;
constexpr std::size_t most_tasks_in_flight = 256;
constexpr std::chrono::nanoseconds queued_work = std::chrono::microseconds(200);
// Without a core to spare, a caller driving the pool (PoolCore::Driver) spins only when its
// result is expected within about this long (else it yields its core between steps), and a
// broker with no task waiting for a worker (only replies to collect) spins only this many times
// before sleeping.
constexpr std::chrono::nanoseconds longest_spin = std::chrono::microseconds(50);
constexpr int broker_spins_without_spare_core = 50;
// Tasks a PoolCore::Batch hands over at a time: few enough that a long map's first tasks start
// early, enough that the workers are woken once for many.
constexpr std::size_t tasks_in_a_batch = 64;
// Locks, queues and shared values that tasks carried, kept mapped in a worker for the next task
// that carries the same.
constexpr std::size_t kept_blocks = 64;
// Workers that die before they are ready, one after another, before the pool gives up.
constexpr int start_failures_tolerated = 3;

// A worker's channel: the ring of tasks, the ring of replies, then its progress.
constexpr std::size_t progress_at = 2 * ring_footprint(ring_capacity);
constexpr std::size_t channel_size = progress_at + sizeof(WorkerProgress);

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

bool send_task_fds(int socket, std::span<const UniqueFd> fds) {
    std::vector<int> numbers;
    for (const UniqueFd& fd : fds) numbers.push_back(fd.get());
    const auto count = static_cast<std::uint32_t>(numbers.size());
    return send_with_fds(socket, &count, sizeof count, numbers);
}

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

void worker_main(WorkerSetup setup) {
    // The terminal sends Ctrl-C to the whole process group: the pool decides about its workers.
    std::signal(SIGINT, SIG_IGN);
    const std::string name = fmt::format("crew-worker-{}", setup.number);
    ::prctl(PR_SET_NAME, name.c_str());  // what ps and top show
    adopt_what_tasks_leave_behind();
    SharedBlock::keep_received(kept_blocks);
    SharedMapping channel = SharedMapping::attach(UniqueFd(setup.channel.fd));
    UniqueFd tasks_wake(setup.tasks_wake.fd);
    UniqueFd wake(setup.wake.fd);
    UniqueFd descriptors(setup.descriptors.fd);
    const WorkerDescriptors needed({tasks_wake.get(), wake.get(), descriptors.get()});
    std::vector<int> task_fds;  // the decoded task's objects own them
    RingReader tasks(channel.data(), ring_capacity, RingReader::default_pauses_between_looks,
                     tasks_wake.get());
    RingWriter replies(channel.data() + ring_footprint(ring_capacity), ring_capacity, wake.get());
    auto& progress = *reinterpret_cast<WorkerProgress*>(channel.data() + progress_at);
    Writer reply;
    auto start_reply = [&] {
        reply.clear();
        const ReplyHeader header;
        reply.write_bytes(&header, sizeof header);
    };
    auto send = [&](const ReplyHeader& header, RingWriter::Wake wake = RingWriter::now) {
        reply.overwrite(0, &header, sizeof header);
        replies.write(reply.bytes(), wake);
    };

    if (!setup.initializer.empty()) {
        // The initializer's objects own the descriptors its arguments carried.
        std::vector<int> initializer_fds;
        for (const SentFd& fd : setup.initializer_fds) initializer_fds.push_back(fd.fd);
        Reader call(setup.initializer, initializer_fds);
        Writer ignored;
        try {
            invoke_call(call, ignored);
        } catch (...) {
            // Said to the broker, for the error its tasks get should every start fail; the
            // exception then ends the worker, which the pool sees die unready.
            start_reply();
            encode_current_exception(reply);
            send({.kind = ReplyKind::initializer_failed});
            throw;
        }
    }
    start_reply();
    send({.kind = ReplyKind::ready});

    call_returned = setup.timed ? note_call_returned : nullptr;
    for (std::int32_t done = 0; setup.max_tasks == 0 || done < setup.max_tasks; ++done) {
        std::span<const std::byte> message = tasks.read();
        // Replies to the tasks before this one woke nobody (see below): the broker gets them
        // now, when this is the last task queued, and gives this worker more while it runs.
        if (!tasks.more_waiting()) replies.wake_reader();
        const auto header = read_header<TaskHeader>(message);
        if (header.id == stop_task_id) {
            end_children();
            return;
        }
        task_fds.clear();
        if (header.descriptors != 0) {
            task_fds = receive_task_fds(descriptors.get(), header.descriptors);
        }
        // Begun: from here on, this worker's death fails (or retries) the call running.
        progress.call.store(header.begin_call, std::memory_order_relaxed);
        if (setup.timed) progress.call_began_ns.store(steady_now_ns(), std::memory_order_relaxed);
        progress.task.store(header.id, std::memory_order_release);
        running_task = {header.begin_call, header.end_call, &progress, setup.timed};
        start_reply();
        ReplyKind kind = ReplyKind::ran;
        const auto started = std::chrono::steady_clock::now();
        try {
            Reader task(message.subspan(sizeof header), task_fds);
            invoke_call(task, reply);
        } catch (...) {
            start_reply();
            encode_current_exception(reply);
            kind = ReplyKind::failed;
        }
        const auto busy = std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::steady_clock::now() - started);
        // Sending a large result takes time that no task_timeout counts.
        progress.call.store(WorkerProgress::sending, std::memory_order_release);
        tasks.release();
        if (!needed.intact_after(busy)) {
            // The broker may not even be woken: it learns of the reply when this worker ends.
            start_reply();
            try {
                throw Error(fmt::format(
                    "crew: the task closed file descriptors its pool worker (pid {}) needs; its "
                    "result was dropped and the worker replaced",
                    ::getpid()));
            } catch (const Error&) {
                encode_current_exception(reply);
            }
            send({.task_id = header.id, .kind = ReplyKind::failed});
            std::_Exit(1);
        }
        // While more tasks are queued, a reply need not wake a sleeping broker: it is collected
        // with the others, one wake-up for many (a wake-up takes a core from the workers).
        send({.task_id = header.id,
              .busy_ns = static_cast<std::uint64_t>(busy.count()),
              .kind = kind},
             tasks.more_waiting() ? RingWriter::later : RingWriter::now);
    }
    start_reply();
    send({.kind = ReplyKind::retiring});
    end_children();
}

// A task's message. A small one is copied in rather than taken from the submitter's Writer, so
// that the thread that finishes the task (the broker, often) frees nothing the submitting thread
// allocated: both would take the same malloc arena's lock, at every task.
class TaskMessage {
  public:
    explicit TaskMessage(Writer& written) : size_(written.size()) {
        if (size_ > small_.size()) {
            large_ = written.take_bytes();
        } else if (size_ != 0) {
            std::memcpy(small_.data(), written.bytes().data(), size_);
        }
    }
    // A copy, for part of a task that runs again.
    TaskMessage copy() const {
        Writer written;
        written.write_bytes(bytes().data(), size_);
        return TaskMessage(written);
    }
    std::byte* data() noexcept { return size_ > small_.size() ? large_.data() : small_.data(); }
    std::size_t size() const noexcept { return size_; }
    std::span<const std::byte> bytes() const noexcept {
        return {size_ > small_.size() ? large_.bytes().data() : small_.data(), size_};
    }

  private:
    std::size_t size_;
    // The header and a call of a plain function with a few numbers fit.
    std::array<std::byte, 160> small_;
    MessageBytes large_;
};

struct PoolCore::Task {
    TaskMessage message;      // begins with its TaskHeader
    std::uint64_t first = 0;  // the sink's index of the chunk's first call
    std::uint32_t count = 0;  // the calls in the chunk
    std::shared_ptr<TaskSink> sink;
    // The calls to make, [begin_call, end_call): fewer than count once part of the chunk was
    // made, or failed, on a worker that died.
    std::uint32_t begin_call = 0;
    std::uint32_t end_call = 0;
    int attempts = 0;
    // That its arguments carry, sent beside the ring at each attempt; shared by its parts.
    std::shared_ptr<const std::vector<UniqueFd>> fds;
    std::uint64_t id = 0;  // as last sent

    // The part [begin, end) of its calls, as a task of its own.
    Task part(std::uint32_t begin, std::uint32_t end) const {
        return Task{message.copy(), first, count, sink, begin, end, attempts, fds, 0};
    }
};

struct PoolCore::Worker {
    std::unique_ptr<Process> process;
    pid_t pid = 0;
    SharedMapping channel;
    UniqueFd descriptors;  // our end of the worker's descriptor socket
    UniqueFd tasks_wake;   // our end of the socket on which the worker sleeps for tasks
    std::optional<RingWriter> tasks;
    std::optional<RingReader> replies;
    const WorkerProgress* progress = nullptr;  // in channel
    std::deque<Task> in_flight;                // in the order sent; the first is the one running
    std::chrono::nanoseconds recent_task_cost{queued_work};  // busy time, smoothed
    bool ready = false;
    bool retiring = false;
    bool stopped = false;     // sent the stop message: it is expected to end
    bool unreadable = false;  // sent a reply that could not be read: killed, not read any more
    // The call the pool killed it for, running past the task_timeout.
    std::optional<std::uint32_t> timed_out_call;

    // The call of the first task in flight that is running, and when it began (only under a
    // task_timeout): nothing while that task has not begun, or once its call has returned.
    std::optional<std::pair<std::uint32_t, std::int64_t>> running_call() const {
        if (in_flight.empty() ||
            progress->task.load(std::memory_order_acquire) != in_flight.front().id) {
            return std::nullopt;
        }
        const std::uint32_t call = progress->call.load(std::memory_order_acquire);
        const std::int64_t began = progress->call_began_ns.load(std::memory_order_relaxed);
        // The worker may have moved on between the two: the next look tells.
        if (call == WorkerProgress::sending || began == WorkerProgress::returned ||
            call != progress->call.load(std::memory_order_acquire)) {
            return std::nullopt;
        }
        return std::pair{call, began};
    }
};

PoolCore::PoolCore(PoolCoreOptions options)
    : options_(std::move(options)), task_cost_ns_(queued_work.count()) {
    if (options_.processes < 1) {
        throw Error(
            fmt::format("crew: a pool needs at least one process, not {}", options_.processes));
    }
    spare_core_ = options_.processes < cpu_count();
    int wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake < 0) throw_system_error("cannot create the pool's eventfd");
    wake_ = UniqueFd(wake);
    int epoll = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll < 0) throw_system_error("cannot create the pool's epoll");
    epoll_ = UniqueFd(epoll);
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = 0;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &event) != 0) {
        throw_system_error("cannot watch the pool's eventfd");
    }
    handle_interrupts();
    workers_.resize(static_cast<std::size_t>(options_.processes));
    for (std::size_t i = 0; i < workers_.size(); ++i) start_worker(i);
    broker_ = std::thread([this] { broker(); });
    register_for_interrupts([this] { terminate(); }, this);
}

PoolCore::~PoolCore() {
    unregister_for_interrupts(this);
    if (broker_.joinable()) {
        terminate();
        join();
    }
}

// Starts the worker in slot index, in place of the one there before, if any.
void PoolCore::start_worker(std::size_t index) {
    workers_[index] = std::make_unique<Worker>();
    Worker& worker = *workers_[index];
    worker.channel = SharedMapping::create(channel_size, "crew-pool-worker-channel");
    worker.progress = reinterpret_cast<const WorkerProgress*>(worker.channel.data() + progress_at);
    // A worker sleeps on a socket, not on the ring's futex: the kernel may place a socket's (or
    // a pipe's) wake-up on the waker's core. Woken on futexes, the workers of a map often all
    // landed on the core they last ran on while the caller kept its own core busy, and the map
    // ran at one worker's pace (seen with perf sched on the sqrt benchmark). A socket, not a
    // pipe: sending to a worker that died or closed its end must not raise SIGPIPE here.
    int wake_pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, wake_pair) != 0) {
        throw_system_error("cannot create a pool worker's wake-up socket");
    }
    UniqueFd workers_wake_end(wake_pair[0]);
    worker.tasks_wake = UniqueFd(wake_pair[1]);
    worker.tasks.emplace(worker.channel.data(), ring_capacity, worker.tasks_wake.get());
    worker.replies.emplace(worker.channel.data() + ring_footprint(ring_capacity), ring_capacity);
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
        throw_system_error("cannot create a pool worker's descriptor socket");
    }
    worker.descriptors = UniqueFd(pair[0]);
    if (::fcntl(pair[0], F_SETFL, O_NONBLOCK) != 0) {
        throw_system_error("cannot make a pool worker's descriptor socket non-blocking");
    }
    UniqueFd workers_end(pair[1]);
    const std::uint64_t number = ++workers_started_;
    WorkerSetup setup{SentFd{worker.channel.fd()},
                      SentFd{workers_wake_end.get()},
                      SentFd{wake_.get()},
                      SentFd{workers_end.get()},
                      number,
                      options_.max_tasks_per_child,
                      options_.task_timeout.count() > 0,
                      options_.initializer.bytes,
                      {}};
    if (options_.initializer.fds) {
        for (const UniqueFd& fd : *options_.initializer.fds) {
            setup.initializer_fds.push_back(SentFd{fd.get()});
        }
    }
    ProcessOptions process_options{.name = fmt::format("PoolWorker-{}", number),
                                   .daemon = true,
                                   .start_method = options_.start_method};
    worker.process = std::make_unique<Process>(process_options, &worker_main, setup);
    worker.process->start();
    worker.pid = *worker.process->pid();
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = index + 1;  // 0 is the wake eventfd
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, ProcessAccess::pidfd(*worker.process), &event) !=
        0) {
        throw_system_error("cannot watch a pool worker");
    }
}

PoolCore::Task PoolCore::make_task(Writer& task, std::uint64_t first, std::uint32_t count,
                                   std::shared_ptr<TaskSink> sink) const {
    if (closed_.load()) {
        if (broken_error_) std::rethrow_exception(broken_error_);
        throw Error(
            "crew: the pool is closed (close(), terminate() or join() ran); it takes no "
            "new tasks");
    }
    if (task.attached_fds().size() > max_fds_per_message) {
        throw Error("crew: a pool task's arguments carry more than " +
                    std::to_string(max_fds_per_message) +
                    " file descriptors (one for each Lock, Queue, Pipe end or shared value)");
    }
    std::shared_ptr<const std::vector<UniqueFd>> fds;
    if (!task.attached_fds().empty()) {
        fds = std::make_shared<const std::vector<UniqueFd>>(task.take_fds());
    }
    return Task{TaskMessage(task), first, count, std::move(sink), 0, count, 0, std::move(fds), 0};
}

void PoolCore::submit(Writer& task, std::uint64_t first, std::uint32_t count,
                      std::shared_ptr<TaskSink> sink) {
    Task queued = make_task(task, first, count, std::move(sink));
    hand_over({&queued, 1});
}

void PoolCore::hand_over(std::span<Task> tasks) {
    tasks_out_.fetch_add(static_cast<std::int64_t>(tasks.size()));
    if (BrokerWork work(*this); work.held()) {
        // The caller does the broker's work itself: no hand-over to another thread.
        take_submissions();
        for (Task& task : tasks) pending_.push_back(std::move(task));
        if (broker_finished_.load()) {
            fail_late_tasks();
            return;
        }
        dispatch();
        if (broker_sleeping_.load() && drivers_.load() == 0) have_replies_wake_broker();
        return;
    }
    {
        std::lock_guard lock(submissions_mutex_);
        for (Task& task : tasks) submissions_.push_back(std::move(task));
        has_submissions_.store(true);
    }
    if (broker_finished_.load()) {
        BrokerWork work(*this, BrokerWork::wait);
        fail_late_tasks();
        return;
    }
    if (broker_sleeping_.load()) wake_broker();
}

PoolCore::Batch::Batch(PoolCore& core) : core_(core) {}

PoolCore::Batch::~Batch() = default;

void PoolCore::Batch::add(Writer& task, std::uint64_t first, std::uint32_t count,
                          std::shared_ptr<TaskSink> sink) {
    tasks_.push_back(core_.make_task(task, first, count, std::move(sink)));
    if (tasks_.size() == tasks_in_a_batch) submit();
}

void PoolCore::Batch::submit() {
    if (tasks_.empty()) return;
    core_.hand_over(tasks_);
    tasks_.clear();
}

// A task that passed the closed check while the pool was closing can arrive after the broker
// has gone: it fails instead of waiting forever.
void PoolCore::fail_late_tasks() {
    take_submissions();
    fail_everything(broken_error_ ? broken_error_
                                  : std::make_exception_ptr(
                                        Error("crew: the pool stopped (terminate(), or close() and "
                                              "join()) before this task could run")));
}

// The broker sleeps, perhaps without watching the replies (it left them to drivers that have
// gone since): the replies to what a caller just sent must wake it, unless a waiter collects them
// first (see Driver). Asking the workers to signal it is a store a ring; waking it would cost a
// thread wake-up and a core on every submit.
void PoolCore::have_replies_wake_broker() {
    // Tasks the workers had no room for need the broker now, not when a worker's queue drains;
    // and its sleep must count down the new tasks' time.
    if (!pending_.empty() || options_.task_timeout.count() > 0) {
        wake_broker();
        return;
    }
    if (!ask_workers_to_signal_replies()) wake_broker();
}

// Asks each worker to signal the broker's wake descriptor at its next reply; false, asking no
// more, once a reply is there already (the broker must not sleep).
bool PoolCore::ask_workers_to_signal_replies() {
    for (auto& worker : workers_) {
        if (!worker->replies->prepare_to_sleep()) return false;
    }
    return true;
}

void PoolCore::wake_broker() {
    std::uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
}

PoolCore::Driver::Driver(PoolCore& core) : core_(core) {
    if (core_.drivers_.fetch_add(1) == 0 && core_.broker_sleeping_.load()) {
        // The replies are this thread's to collect now: a worker need not wake the broker
        // (which would take a core) for them. It slept before drivers_ rose, or it saw them.
        BrokerWork work(core_, BrokerWork::wait);
        for (auto& worker : core_.workers_) worker->replies->cancel_sleep();
    }
}

PoolCore::Driver::~Driver() {
    // The broker may be asleep without watching the workers' replies, left to the drivers.
    if (core_.drivers_.fetch_sub(1) == 1 && core_.tasks_out_.load() > 0 &&
        core_.broker_sleeping_.load()) {
        core_.wake_broker();
    }
}

// On a machine the workers keep busy, a caller that spins without yielding takes a core from
// one of them: worth it only for a result expected within the spin.
bool PoolCore::worth_spinning() const {
    if (spare_core_) return true;
    const auto expected_ns =
        tasks_out_.load() * task_cost_ns_.load(std::memory_order_relaxed) / options_.processes;
    return expected_ns <= longest_spin.count();
}

bool PoolCore::Driver::step() {
    BrokerWork work(core_);
    if (!work.held()) return false;
    if (core_.broker_finished_.load()) {
        core_.fail_late_tasks();
        return true;
    }
    bool progress = core_.take_submissions();
    for (auto& worker : core_.workers_) progress |= core_.collect(*worker);
    core_.dispatch();
    return progress;
}

void PoolCore::close() {
    closed_.store(true);
    wake_broker();
}

void PoolCore::terminate() {
    terminate_requested_.store(true);
    close();
}

void PoolCore::join() {
    if (!closed_.load()) {
        throw Error(
            "crew: join() called on a pool that is still open; call close() or "
            "terminate() first");
    }
    std::call_once(joined_, [this] {
        if (broker_.joinable()) broker_.join();
    });
}

bool PoolCore::collect(Worker& worker) {
    bool any = false;
    while (!worker.unreadable) {
        auto reply = worker.replies->try_read();
        if (!reply) break;
        try {
            handle_reply(worker, *reply);
        } catch (const std::exception& error) {
            // Its channel holds what no worker writes: the task scribbled over it, say. The
            // worker is killed and replaced, as if it had crashed.
            log(LogLevel::error, "pool worker {} sent a reply that cannot be read ({}); killing it",
                worker.pid, error.what());
            worker.unreadable = true;
            worker.process->kill();
        }
        worker.replies->release();
        any = true;
    }
    return any;
}

void PoolCore::handle_reply(Worker& worker, std::span<const std::byte> bytes) {
    if (bytes.size() < sizeof(ReplyHeader)) throw Error("crew: a pool worker's reply is too short");
    const auto header = read_header<ReplyHeader>(bytes);
    switch (header.kind) {
        case ReplyKind::ready:
            worker.ready = true;
            failed_starts_in_a_row_ = 0;
            last_start_error_ = nullptr;
            return;
        case ReplyKind::retiring:
            worker.retiring = true;
            return;
        case ReplyKind::initializer_failed: {
            Reader reader(bytes.subspan(sizeof header));
            last_start_error_ = decode_exception(reader);
            return;
        }
        case ReplyKind::ran:
        case ReplyKind::failed:
            break;
        default:
            throw Error("crew: a pool worker's reply is of no known kind");
    }
    if (worker.in_flight.empty() || worker.in_flight.front().id != header.task_id) {
        throw Error("crew: a pool worker answered a task it was not given");
    }
    Task task = std::move(worker.in_flight.front());
    worker.in_flight.pop_front();
    const std::chrono::nanoseconds busy(header.busy_ns);
    worker.recent_task_cost = (3 * worker.recent_task_cost + busy) / 4;
    task_cost_ns_.store(worker.recent_task_cost.count(), std::memory_order_relaxed);
    // The task is the sink's now: it hears of an outcome that cannot be read as a failure.
    try {
        const auto body = bytes.subspan(sizeof header);
        if (header.kind == ReplyKind::ran) {
            const TaskResults results(body);
            if (results.size() != task.end_call - task.begin_call) {
                throw Error("crew: a pool worker answered with more or fewer results than calls");
            }
            complete(task, results, busy);
        } else {
            Reader reader(body);
            fail(task, decode_exception(reader));
        }
    } catch (...) {
        fail(task, std::current_exception());
        throw;
    }
}

// The two ways a task ends; each once for every task submitted. The count goes down after the
// sink has heard: an exception from the sink leaves the task to end by fail.
void PoolCore::complete(Task& task, const TaskResults& results, std::chrono::nanoseconds busy) {
    task.sink->completed(task.first + task.begin_call, results, busy);
    tasks_out_.fetch_sub(1);
}

void PoolCore::fail(Task& task, std::exception_ptr error) {
    task.sink->failed(task.first + task.begin_call, task.end_call - task.begin_call,
                      std::move(error));
    tasks_out_.fetch_sub(1);
}

// Kills what a worker's tasks left running in its process group, once the worker has ended.
// The group keeps the worker's pid from being reused while any of them lives.
void PoolCore::end_left_behind(const Worker& worker) {
    if (worker.pid > 0 && ::kill(-worker.pid, SIGKILL) != 0 && errno != ESRCH) {
        log(LogLevel::warning, "cannot end the processes pool worker {} left: {}", worker.pid,
            std::strerror(errno));
    }
}

void PoolCore::handle_end(std::size_t index) {
    Worker& worker = *workers_[index];
    collect(worker);  // what it finished before it ended still counts
    int exitcode = worker.process->exitcode().value_or(-SIGKILL);
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, ProcessAccess::pidfd(*worker.process), nullptr);
    end_left_behind(worker);
    if (worker.stopped || broken_) return;
    log(LogLevel::debug, "pool worker {} ended with exitcode {}", worker.pid, exitcode);

    std::deque<Task> orphans = std::move(worker.in_flight);
    if (!worker.ready) {
        if (++failed_starts_in_a_row_ >= start_failures_tolerated) {
            for (Task& task : orphans) pending_.push_front(std::move(task));
            broken_error_ = std::make_exception_ptr(
                BrokenPool("crew: the pool's workers cannot start: " + start_failure(exitcode) +
                           "; every task of the pool failed, and it takes no more"));
            broken_ = true;
            // Before the tasks fail: a caller woken by its failure must find the pool closed.
            // After broken_error_, which callers read once they see it.
            closed_.store(true);
            fail_everything(broken_error_);
            return;
        }
    } else if (!worker.retiring && !orphans.empty() &&
               worker.progress->task.load(std::memory_order_acquire) == orphans.front().id) {
        blame_running_call(worker, orphans, exitcode);
    }
    // The others never began: they go first to whoever is free, as they were sent.
    while (!orphans.empty()) {
        pending_.push_front(std::move(orphans.back()));
        orphans.pop_back();
    }
    start_worker(index);
}

// Why the last worker that died as it started did, for a BrokenPool's message.
std::string PoolCore::start_failure(int exitcode) const {
    if (last_start_error_) {
        try {
            std::rethrow_exception(last_start_error_);
        } catch (const RemoteError& error) {  // its what() names the type already
            return std::string("the initializer threw ") + error.what();
        } catch (...) {
            return "the initializer threw " + describe_current_exception();
        }
    }
    return exitcode < 0 ? fmt::format("each ended by signal {} ({}) before it was ready", -exitcode,
                                      strsignal(-exitcode))
                        : fmt::format("each exited with status {} before it was ready", exitcode);
}

// The first task in flight had begun on the worker that died: the call that was running fails
// (or is tried again, while retries remain); the calls before it, whose results were not sent,
// and those after it, which never began, run again, each part as a task of its own.
void PoolCore::blame_running_call(const Worker& worker, std::deque<Task>& orphans, int exitcode) {
    Task running = std::move(orphans.front());
    orphans.pop_front();
    std::uint32_t call = worker.timed_out_call.value_or(worker.progress->call.load());
    // Dead while sending the results: the last call's result may be what could not be sent.
    if (call == WorkerProgress::sending) call = running.end_call - 1;
    call = std::clamp(call, running.begin_call, running.end_call - 1);
    if (call + 1 < running.end_call) {
        orphans.push_front(running.part(call + 1, running.end_call));
        tasks_out_.fetch_add(1);
    }
    if (running.begin_call < call) {
        orphans.push_front(running.part(running.begin_call, call));
        tasks_out_.fetch_add(1);
    }
    running.begin_call = call;
    running.end_call = call + 1;
    if (worker.timed_out_call) {
        fail(running,
             std::make_exception_ptr(TimeoutError(fmt::format(
                 "crew: a task ran longer than the pool's task_timeout of {} ms; its "
                 "worker (pid {}) was killed and replaced",
                 std::chrono::duration_cast<std::chrono::milliseconds>(options_.task_timeout)
                     .count(),
                 worker.pid))));
    } else if (running.attempts < options_.retries) {
        ++running.attempts;
        orphans.push_front(std::move(running));
    } else {
        fail(running, std::make_exception_ptr(WorkerDied(exitcode, worker.pid)));
    }
}

void PoolCore::dispatch() {
    // Each task to the worker with the fewest queued: the queues fill evenly, also when tasks
    // are submitted one at a time.
    while (!pending_.empty()) {
        Worker* least = nullptr;
        for (auto& worker : workers_) {
            if (wants_task(*worker) &&
                (least == nullptr || worker->in_flight.size() < least->in_flight.size())) {
                least = worker.get();
            }
        }
        if (least == nullptr) break;
        give(*least);
    }
    // A sleeping worker is woken once all its tasks are written, not at the first: woken on
    // this thread's core, it would take the core before the others were handed out. Waking
    // at each task halved the rate of a map with chunksize 1 (bench/pool_overhead).
    for (auto& worker : workers_) worker->tasks->wake_reader();
}

bool PoolCore::wants_task(const Worker& worker) const {
    if (worker.stopped) return false;
    const std::size_t depth =
        worker.recent_task_cost >= queued_work
            ? 1
            : std::clamp<std::size_t>(
                  static_cast<std::size_t>(
                      queued_work / std::max(worker.recent_task_cost, std::chrono::nanoseconds(1))),
                  least_tasks_in_flight, most_tasks_in_flight);
    if (worker.in_flight.size() >= depth) return false;
    // Beyond the least, only what fits at once: the broker must not wait on one worker.
    return worker.in_flight.size() < least_tasks_in_flight ||
           worker.tasks->has_room_for(pending_.front().message.size());
}

void PoolCore::give(Worker& worker) {
    Task task = std::move(pending_.front());
    pending_.pop_front();
    if (!task.sink->starting()) {
        tasks_out_.fetch_sub(1);
        return;
    }
    TaskHeader header{.id = next_task_id_++,
                      .begin_call = task.begin_call,
                      .end_call = task.end_call,
                      .descriptors = 0};
    if (task.fds) {
        if (send_task_fds(worker.descriptors.get(), *task.fds)) {
            header.descriptors = static_cast<std::uint32_t>(task.fds->size());
        } else if (errno == EAGAIN) {
            // The broker must never block on a worker: the socket's buffer is full of the
            // descriptors of tasks queued before, which the worker does not run.
            fail(task, std::make_exception_ptr(
                           Error("crew: too many tasks carrying descriptors wait for one pool "
                                 "worker; submit fewer at a time")));
            return;
        }
        // Else the worker died, closing the socket: the task runs again once its death is
        // handled, as it never began.
    }
    task.id = header.id;
    std::memcpy(task.message.data(), &header, sizeof header);
    worker.tasks->write(task.message.bytes(), RingWriter::later);  // dispatch wakes it
    worker.in_flight.push_back(std::move(task));
}

void PoolCore::fail_everything(const std::exception_ptr& error) {
    for (auto& worker : workers_) {
        while (!worker->in_flight.empty()) {
            pending_.push_back(std::move(worker->in_flight.front()));
            worker->in_flight.pop_front();
        }
    }
    {
        std::lock_guard lock(submissions_mutex_);
        for (Task& task : submissions_) pending_.push_back(std::move(task));
        submissions_.clear();
        has_submissions_.store(false);
    }
    for (Task& task : pending_) fail(task, error);
    pending_.clear();
}

bool PoolCore::take_submissions() {
    if (!has_submissions_.load()) return false;
    std::lock_guard lock(submissions_mutex_);
    for (Task& task : submissions_) pending_.push_back(std::move(task));
    submissions_.clear();
    has_submissions_.store(false);
    return true;
}

// Ended workers and overdue tasks; returns whether a worker ended.
bool PoolCore::check_workers() {
    bool ended = false;
    epoll_event events[16];
    int ready = ::epoll_wait(epoll_.get(), events, 16, 0);
    for (int i = 0; i < ready; ++i) {
        if (events[i].data.u64 != 0) {
            handle_end(events[i].data.u64 - 1);
            ended = true;
        }
    }
    if (options_.task_timeout.count() > 0) {
        const std::int64_t now_ns = steady_now_ns();
        for (auto& worker : workers_) {
            if (worker->timed_out_call) continue;
            const auto running = worker->running_call();
            if (running && now_ns - running->second > options_.task_timeout.count()) {
                worker->timed_out_call = running->first;
                worker->process->kill();
            }
        }
    }
    return ended;
}

// How long the broker may sleep before a running call may pass the task_timeout: -1 for as long
// as it likes. A worker whose first task in flight has not begun may begin it at once.
int PoolCore::milliseconds_to_next_timeout() const {
    std::optional<std::int64_t> soonest;
    const std::int64_t now_ns = steady_now_ns();
    for (const auto& worker : workers_) {
        if (worker->in_flight.empty() || worker->timed_out_call) continue;
        const auto running = worker->running_call();
        const std::int64_t due =
            (running ? running->second : now_ns) + options_.task_timeout.count();
        soonest = std::min(soonest.value_or(due), due);
    }
    if (!soonest) return -1;
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(std::chrono::nanoseconds(*soonest - now_ns));
    return static_cast<int>(std::clamp<long long>(left.count(), 0, 60'000));
}

void PoolCore::sleep_until_woken() {
    int timeout_ms = -1;
    bool may_sleep = false;
    {
        BrokerWork work(*this, BrokerWork::wait);
        broker_sleeping_.store(true);
        may_sleep = !has_submissions_.load() && !terminate_requested_.load();
        // While callers drive the pool (see Driver), the replies are theirs to collect: the
        // workers need not signal the broker, and waking it would only take a core from them.
        if (drivers_.load() == 0 && may_sleep) may_sleep = ask_workers_to_signal_replies();
        if (options_.task_timeout.count() > 0) timeout_ms = milliseconds_to_next_timeout();
    }
    epoll_event events[16];
    if (may_sleep) ::epoll_wait(epoll_.get(), events, 16, timeout_ms);
    broker_sleeping_.store(false);
    std::uint64_t count;
    (void)!::read(wake_.get(), &count, sizeof count);
}

// Whatever fails on the broker's thread (a system call, a replacement worker that cannot start)
// breaks the pool, never the program: an exception leaving a thread's function would end it.
void PoolCore::broker() {
    try {
        run_broker();
    } catch (...) {
        break_down(std::current_exception());
    }
}

// Every task fails with a BrokenPool that says why, and the workers end.
void PoolCore::break_down(const std::exception_ptr& cause) {
    BrokerWork work(*this, BrokerWork::wait);
    std::string why = "unknown error";
    try {
        std::rethrow_exception(cause);
    } catch (const std::exception& error) {
        why = error.what();
    } catch (...) {
    }
    log(LogLevel::error, "a pool's broker cannot go on: {}", why);
    broken_error_ = std::make_exception_ptr(
        BrokenPool("crew: the pool broke down (" + why +
                   "); every task of the pool failed, and it takes no more"));
    broken_ = true;
    for (auto& worker : workers_) {
        if (!worker->process || !worker->process->pid()) continue;
        worker->stopped = true;
        worker->process->kill();
        worker->process->join();
        end_left_behind(*worker);
    }
    closed_.store(true);  // after broken_error_, which callers read once they see it
    broker_finished_.store(true);
    fail_late_tasks();  // with broken_error_, also what was submitted before closed_ was seen
}

void PoolCore::run_broker() {
    int idle = 0;
    bool woke = false;
    for (std::uint64_t iteration = 0;; ++iteration) {
        bool progress = false;
        bool tasks_waiting = false;  // for room in a worker's queue
        {
            BrokerWork work(*this, BrokerWork::wait);
            progress = take_submissions();
            // Submitted as the pool broke, before its callers could see it closed.
            if (broken_) fail_everything(broken_error_);
            if (terminate_requested_.load()) {
                broker_finished_.store(true);
                for (auto& worker : workers_) {
                    worker->stopped = true;
                    worker->process->kill();
                }
                fail_everything(std::make_exception_ptr(
                    Error("crew: the pool was terminated before this task finished")));
                for (auto& worker : workers_) {
                    worker->process->join();
                    end_left_behind(*worker);
                }
                return;
            }
            for (auto& worker : workers_) progress |= collect(*worker);
            // A system call costs more than a round trip: now and then, and after each sleep.
            if (woke || iteration % 64 == 0) progress |= check_workers();
            dispatch();
            tasks_waiting = !pending_.empty();

            if (closed_.load() && pending_.empty() && !has_submissions_.load() &&
                std::all_of(workers_.begin(), workers_.end(),
                            [](const auto& worker) { return worker->in_flight.empty(); })) {
                const TaskHeader stop{.id = stop_task_id};
                for (auto& worker : workers_) {
                    worker->stopped = true;
                    worker->tasks->write(std::as_bytes(std::span(&stop, 1)));
                }
                for (auto& worker : workers_) {
                    worker->process->join();
                    end_left_behind(*worker);
                }
                broker_finished_.store(true);
                fail_late_tasks();
                return;
            }
        }
        woke = false;
        if (progress) {
            idle = 0;
        } else if (drivers_.load() > 0 ||
                   ++idle > (spare_core_ || tasks_waiting ? spins_before_sleeping
                                                          : broker_spins_without_spare_core)) {
            sleep_until_woken();
            woke = true;
            idle = 0;
        } else {
            cpu_relax();
        }
    }
}

}  // namespace crew::detail
