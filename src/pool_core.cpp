#include "crew/detail/pool_core.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <array>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "crew/detail/descriptor_passing.hpp"
#include "crew/detail/interrupt.hpp"
#include "crew/detail/log.hpp"
#include "crew/detail/message_ring.hpp"
#include "crew/detail/shared_mapping.hpp"
#include "crew/detail/spin.hpp"
#include "crew/error.hpp"
#include "crew/init.hpp"
#include "crew/process.hpp"
#include "crew/synchronize.hpp"

namespace crew::detail {
namespace {

// Each direction of a worker's channel: big enough that a map's chunks rarely wait for space,
// small enough to stay warm (it is touched once, when the worker starts).
constexpr std::size_t ring_capacity = std::size_t{1} << 20;
// Tasks written to a worker ahead of the one it runs: at least one, so that it never waits for
// the broker; more while its tasks are short, up to about queued_work of them, so that a worker
// fed tiny tasks runs them back to back instead of sleeping between the broker's visits.
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

// Replies from a worker: a task id (0 for none), then what happened.
enum class Reply : std::uint8_t {
    ran = 0,       // outcomes follow
    failed = 1,    // the task could not be read: an exception follows
    ready = 2,     // the worker's initializer ran; it takes tasks now
    retiring = 3,  // max_tasks_per_child reached: the worker exits after this
};
constexpr std::uint64_t stop_task_id = ~std::uint64_t{0};
// Set in a task's id when the descriptors its arguments carry wait on the worker's descriptor
// socket (the rings carry bytes only): a count, with the descriptors attached.
constexpr std::uint64_t descriptors_follow = std::uint64_t{1} << 63;

std::chrono::steady_clock::time_point now() {
    return std::chrono::steady_clock::now();
}

}  // namespace

void WorkerSetup::encode_into(Writer& writer) const {
    encode(writer, channel);
    encode(writer, tasks_wake);
    encode(writer, wake);
    encode(writer, descriptors);
    encode(writer, capacity);
    encode(writer, max_tasks);
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
    setup.capacity = decode<std::uint64_t>(reader);
    setup.max_tasks = decode<std::int32_t>(reader);
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
// worker that cannot get them cannot run its tasks: it ends, and the pool sees it die.
std::vector<int> receive_task_fds(int socket) {
    std::uint32_t count = 0;
    std::vector<UniqueFd> received;
    if (!receive_with_fds(socket, &count, sizeof count, received) || received.size() != count) {
        log(LogLevel::error, "a pool worker could not receive a task's file descriptors");
        std::_Exit(1);
    }
    std::vector<int> fds;
    for (UniqueFd& fd : received) fds.push_back(fd.release());
    return fds;
}

}  // namespace

void worker_main(WorkerSetup setup) {
    // The terminal sends Ctrl-C to the whole process group: the pool decides about its workers.
    std::signal(SIGINT, SIG_IGN);
    SharedBlock::keep_received(kept_blocks);
    SharedMapping channel = SharedMapping::attach(UniqueFd(setup.channel.fd));
    UniqueFd tasks_wake(setup.tasks_wake.fd);
    UniqueFd wake(setup.wake.fd);
    UniqueFd descriptors(setup.descriptors.fd);
    std::vector<int> task_fds;  // the decoded task's objects own them
    const std::size_t capacity = setup.capacity;
    RingReader tasks(channel.data(), capacity, RingReader::default_pauses_between_looks,
                     tasks_wake.get());
    RingWriter replies(channel.data() + ring_footprint(capacity), capacity, wake.get());
    Writer reply;
    // A reply's header: the task id, the kind, and the nanoseconds the task kept this worker busy
    // (the pool sizes imap's chunks by it: round trips would count queueing as work).
    auto send = [&](std::uint64_t id, Reply kind, std::uint64_t busy,
                    RingWriter::Wake wake = RingWriter::now) {
        reply.overwrite(0, &id, sizeof id);
        reply.overwrite(sizeof id, &kind, sizeof kind);
        reply.overwrite(sizeof id + sizeof kind, &busy, sizeof busy);
        replies.write(reply.bytes(), wake);
    };
    auto start_reply = [&] {
        reply.clear();
        encode(reply, std::uint64_t{0});
        encode(reply, Reply::ran);
        encode(reply, std::uint64_t{0});
    };

    if (!setup.initializer.empty()) {
        // The initializer's objects own the descriptors its arguments carried.
        std::vector<int> initializer_fds;
        for (const SentFd& fd : setup.initializer_fds) initializer_fds.push_back(fd.fd);
        Reader call(setup.initializer, initializer_fds);
        Writer ignored;
        invoke_call(call, ignored);  // an exception ends the worker: the pool sees it die unready
    }
    start_reply();
    send(0, Reply::ready, 0);

    for (std::int32_t done = 0; setup.max_tasks == 0 || done < setup.max_tasks; ++done) {
        std::span<const std::byte> message = tasks.read();
        // Replies to the tasks before this one woke nobody (see below): the broker gets them
        // now, when this is the last task queued, and gives this worker more while it runs.
        if (!tasks.more_waiting()) replies.wake_reader();
        std::uint64_t id;
        std::memcpy(&id, message.data(), sizeof id);
        if (id == stop_task_id) return;
        task_fds.clear();
        if (id & descriptors_follow) {
            id &= ~descriptors_follow;
            task_fds = receive_task_fds(descriptors.get());
        }
        start_reply();
        Reply kind = Reply::ran;
        const auto started = std::chrono::steady_clock::now();
        try {
            Reader task(message.subspan(sizeof id), task_fds);
            invoke_call(task, reply);
        } catch (...) {
            start_reply();
            encode_current_exception(reply);
            kind = Reply::failed;
        }
        const auto busy = std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::steady_clock::now() - started);
        tasks.release();
        // While more tasks are queued, a reply need not wake a sleeping broker: it is collected
        // with the others, one wake-up for many (a wake-up takes a core from the workers).
        send(id, kind, static_cast<std::uint64_t>(busy.count()),
             tasks.more_waiting() ? RingWriter::later : RingWriter::now);
    }
    start_reply();
    send(0, Reply::retiring, 0);
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
    std::byte* data() noexcept { return size_ > small_.size() ? large_.data() : small_.data(); }
    std::size_t size() const noexcept { return size_; }
    std::span<const std::byte> bytes() const noexcept {
        return {size_ > small_.size() ? large_.bytes().data() : small_.data(), size_};
    }

  private:
    std::size_t size_;
    std::array<std::byte, 128> small_;  // a call of a plain function with a few numbers fits
    MessageBytes large_;
};

struct PoolCore::Task {
    TaskMessage message;  // begins with room for the task id
    std::uint64_t first = 0;
    std::uint32_t count = 0;
    std::shared_ptr<TaskSink> sink;
    int attempts = 0;
    std::vector<UniqueFd> fds;  // that its arguments carry, sent beside the ring at each attempt
};

struct PoolCore::Worker {
    std::unique_ptr<Process> process;
    pid_t pid = 0;
    SharedMapping channel;
    UniqueFd descriptors;  // our end of the worker's descriptor socket
    UniqueFd tasks_wake;   // the writing end of the pipe on which the worker sleeps for tasks
    std::optional<RingWriter> tasks;
    std::optional<RingReader> replies;
    std::deque<Task> in_flight;  // in the order sent; the first is the one running
    std::chrono::steady_clock::time_point running_since;
    std::chrono::nanoseconds recent_task_cost{queued_work};  // busy time, smoothed
    bool ready = false;
    bool retiring = false;
    bool timed_out = false;
    bool stopped = false;     // sent the stop message: it is expected to end
    bool unreadable = false;  // sent a reply that could not be read: killed, not read any more
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
    worker.channel =
        SharedMapping::create(2 * ring_footprint(ring_capacity), "crew-pool-worker-channel");
    // A worker sleeps on a pipe, not on the ring's futex: the kernel may place a pipe's wake-up
    // on the waker's core. Woken on futexes, the workers of a map often all landed on the core
    // they last ran on while the caller kept its own core busy, and the map ran at one worker's
    // pace (seen with perf sched on the sqrt benchmark).
    int wake_pipe[2];
    if (::pipe2(wake_pipe, O_CLOEXEC) != 0) {
        throw_system_error("cannot create a pool worker's wake-up pipe");
    }
    UniqueFd workers_wake_end(wake_pipe[0]);
    worker.tasks_wake = UniqueFd(wake_pipe[1]);
    if (::fcntl(wake_pipe[1], F_SETFL, O_NONBLOCK) != 0) {
        throw_system_error("cannot make a pool worker's wake-up pipe non-blocking");
    }
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
    WorkerSetup setup{SentFd{worker.channel.fd()},
                      SentFd{workers_wake_end.get()},
                      SentFd{wake_.get()},
                      SentFd{workers_end.get()},
                      ring_capacity,
                      options_.max_tasks_per_child,
                      options_.initializer.bytes,
                      {}};
    if (options_.initializer.fds) {
        for (const UniqueFd& fd : *options_.initializer.fds) {
            setup.initializer_fds.push_back(SentFd{fd.get()});
        }
    }
    ProcessOptions process_options{
        .name = "PoolWorker", .daemon = true, .start_method = options_.start_method};
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
        throw Error(
            "crew: the pool is closed (close(), terminate() or join() ran); it takes no "
            "new tasks");
    }
    if (task.attached_fds().size() > max_fds_per_message) {
        throw Error("crew: a pool task's arguments carry more than " +
                    std::to_string(max_fds_per_message) +
                    " file descriptors (one for each Lock, Queue, Pipe end or shared value)");
    }
    std::vector<UniqueFd> fds = task.take_fds();
    return Task{TaskMessage(task), first, count, std::move(sink), 0, std::move(fds)};
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
        if (broker_sleeping_.load() && drivers_.load() == 0) wake_broker();
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
    fail_everything(std::make_exception_ptr(
        Error("crew: the pool stopped (terminate(), or close() and join()) before this task "
              "could run")));
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
    Reader reader(bytes);
    auto id = decode<std::uint64_t>(reader);
    auto kind = decode<Reply>(reader);
    auto busy = decode<std::uint64_t>(reader);
    (void)id;
    switch (kind) {
        case Reply::ready:
            worker.ready = true;
            failed_starts_in_a_row_ = 0;
            return;
        case Reply::retiring:
            worker.retiring = true;
            return;
        case Reply::ran:
        case Reply::failed:
            break;
    }
    if (worker.in_flight.empty())
        throw Error("crew: a pool worker answered a task it was not given");
    Task task = std::move(worker.in_flight.front());
    worker.in_flight.pop_front();
    tasks_out_.fetch_sub(1);
    worker.running_since = now();
    worker.recent_task_cost = (3 * worker.recent_task_cost + std::chrono::nanoseconds(busy)) / 4;
    task_cost_ns_.store(worker.recent_task_cost.count(), std::memory_order_relaxed);
    // The task is the sink's now: it hears of an outcome that cannot be read as a failure.
    try {
        if (kind == Reply::ran) {
            TaskResults results(bytes.subspan(sizeof id + sizeof kind + sizeof busy));
            task.sink->completed(task.first, results, std::chrono::nanoseconds(busy));
        } else {
            task.sink->failed(task.first, task.count, decode_exception(reader));
        }
    } catch (...) {
        task.sink->failed(task.first, task.count, std::current_exception());
        throw;
    }
}

void PoolCore::handle_end(std::size_t index) {
    Worker& worker = *workers_[index];
    collect(worker);  // what it finished before it ended still counts
    int exitcode = worker.process->exitcode().value_or(-SIGKILL);
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, ProcessAccess::pidfd(*worker.process), nullptr);
    if (worker.stopped || broken_) return;
    log(LogLevel::debug, "pool worker {} ended with exitcode {}", worker.pid, exitcode);

    std::deque<Task> orphans = std::move(worker.in_flight);
    if (!worker.ready) {
        if (++failed_starts_in_a_row_ >= start_failures_tolerated) {
            for (Task& task : orphans) pending_.push_front(std::move(task));
            fail_everything(std::make_exception_ptr(Error(fmt::format(
                "crew: pool workers keep dying as they start (the last exit code was {}); is the "
                "initializer failing? Every task of the pool failed",
                exitcode))));
            broken_ = true;
            closed_.store(true);
            return;
        }
    } else if (!worker.retiring && !orphans.empty()) {
        // The first task was running: it failed, or it gets another try.
        Task running = std::move(orphans.front());
        orphans.pop_front();
        if (worker.timed_out) {
            tasks_out_.fetch_sub(1);
            running.sink->failed(
                running.first, running.count,
                std::make_exception_ptr(TimeoutError(fmt::format(
                    "crew: a task ran longer than the pool's task_timeout of {} "
                    "ms; its worker (pid {}) was killed and replaced",
                    std::chrono::duration_cast<std::chrono::milliseconds>(options_.task_timeout)
                        .count(),
                    worker.pid))));
        } else if (running.attempts < options_.retries) {
            ++running.attempts;
            orphans.push_front(std::move(running));
        } else {
            tasks_out_.fetch_sub(1);
            running.sink->failed(running.first, running.count,
                                 std::make_exception_ptr(WorkerDied(exitcode, worker.pid)));
        }
    }
    // The others never started: they go first to whoever is free.
    while (!orphans.empty()) {
        pending_.push_front(std::move(orphans.back()));
        orphans.pop_back();
    }
    start_worker(index);
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
    const std::size_t depth = std::clamp<std::size_t>(
        static_cast<std::size_t>(queued_work /
                                 std::max(worker.recent_task_cost, std::chrono::nanoseconds(1))),
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
    const std::uint64_t id = next_task_id_++;
    std::uint64_t sent_id = id;
    if (!task.fds.empty()) {
        if (send_task_fds(worker.descriptors.get(), task.fds)) {
            sent_id |= descriptors_follow;
        } else if (errno == EAGAIN) {
            // The broker must never block on a worker: the socket's buffer is full of the
            // descriptors of tasks queued before, which the worker does not run.
            tasks_out_.fetch_sub(1);
            task.sink->failed(task.first, task.count,
                              std::make_exception_ptr(Error(
                                  "crew: too many tasks carrying descriptors wait for one pool "
                                  "worker; submit fewer at a time")));
            return;
        }
        // Else the worker died, closing the socket: the task fails or is retried once its death
        // is handled, as it would have been anyway.
    }
    std::memcpy(task.message.data(), &sent_id, sizeof sent_id);
    if (worker.in_flight.empty()) worker.running_since = now();
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
    for (Task& task : pending_) {
        tasks_out_.fetch_sub(1);
        task.sink->failed(task.first, task.count, error);
    }
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
        for (auto& worker : workers_) {
            if (!worker->in_flight.empty() && !worker->timed_out &&
                now() - worker->running_since > options_.task_timeout) {
                worker->timed_out = true;
                worker->process->kill();
            }
        }
    }
    return ended;
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
        if (drivers_.load() == 0) {
            for (auto& worker : workers_) {
                if (may_sleep && !worker->replies->prepare_to_sleep()) may_sleep = false;
            }
        }
        if (options_.task_timeout.count() > 0) {
            auto soonest = std::chrono::steady_clock::time_point::max();
            for (auto& worker : workers_) {
                if (!worker->in_flight.empty()) {
                    soonest = std::min(soonest, worker->running_since + options_.task_timeout);
                }
            }
            if (soonest != std::chrono::steady_clock::time_point::max()) {
                auto left = std::chrono::ceil<std::chrono::milliseconds>(soonest - now()).count();
                timeout_ms = static_cast<int>(std::clamp<long long>(left, 0, 60'000));
            }
        }
    }
    epoll_event events[16];
    if (may_sleep) ::epoll_wait(epoll_.get(), events, 16, timeout_ms);
    broker_sleeping_.store(false);
    std::uint64_t count;
    (void)!::read(wake_.get(), &count, sizeof count);
}

void PoolCore::broker() {
    int idle = 0;
    bool woke = false;
    for (std::uint64_t iteration = 0;; ++iteration) {
        bool progress = false;
        bool tasks_waiting = false;  // for room in a worker's queue
        {
            BrokerWork work(*this, BrokerWork::wait);
            progress = take_submissions();
            if (terminate_requested_.load()) {
                broker_finished_.store(true);
                for (auto& worker : workers_) {
                    worker->stopped = true;
                    worker->process->kill();
                }
                fail_everything(std::make_exception_ptr(
                    Error("crew: the pool was terminated before this task finished")));
                for (auto& worker : workers_) worker->process->join();
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
                Writer stop;
                encode(stop, stop_task_id);
                for (auto& worker : workers_) {
                    worker->stopped = true;
                    worker->tasks->write(stop.bytes());
                }
                for (auto& worker : workers_) worker->process->join();
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
