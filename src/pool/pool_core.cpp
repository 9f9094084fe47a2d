#include "crew/detail/pool_core.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "crew/detail/interrupt.hpp"
#include "crew/detail/message_ring.hpp"
#include "crew/detail/ring_pair.hpp"
#include "crew/detail/spin.hpp"
#include "crew/error.hpp"
#include "crew/init.hpp"
#include "crew/process.hpp"
#include "foundation/descriptor_passing.hpp"
#include "foundation/log.hpp"
#include "pool/worker.hpp"

namespace crew::detail {
namespace {

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
// Workers that die before they are ready, one after another, before the pool gives up.
constexpr int start_failures_tolerated = 3;

bool send_task_fds(int socket, std::span<const UniqueFd> fds) {
    std::vector<int> numbers;
    for (const UniqueFd& fd : fds) numbers.push_back(fd.get());
    const auto count = static_cast<std::uint32_t>(numbers.size());
    return send_with_fds(socket, &count, sizeof count, numbers);
}

}  // namespace

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
    RingPair channel;
    UniqueFd descriptors;  // our end of the worker's descriptor socket
    UniqueFd tasks_wake;   // our end of the socket on which the worker sleeps for tasks
    std::optional<RingWriter> tasks;
    std::optional<RingReader> replies;
    const WorkerProgress* progress = nullptr;  // in channel
    std::deque<Task> in_flight;                // in the order sent; the first is the one running
    std::chrono::nanoseconds recent_task_cost{queued_work};  // busy time, smoothed
    enum class Life {
        starting,    // started, its initializer running: tasks wait in its ring
        ready,       // taking tasks
        retiring,    // made max_tasks_per_child tasks: it ends of itself
        overdue,     // killed by the pool, its call overdue_call past the task_timeout
        unreadable,  // killed by the pool for a reply it cannot read: none is read any more
        stopped,     // asked to end (close, terminate, a broken pool): its end is expected
    };
    Life life = Life::starting;
    std::uint32_t overdue_call = 0;

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
    wake_ = make_eventfd("the pool's eventfd");
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
    worker.channel = RingPair::create(RingPair::pool_worker_capacity, sizeof(WorkerProgress),
                                      "crew-pool-worker-channel");
    worker.progress = reinterpret_cast<const WorkerProgress*>(worker.channel.trailer());
    // A worker sleeps on a socket, not on the ring's futex: the kernel may place a socket's (or
    // a pipe's) wake-up on the waker's core. Woken on futexes, the workers of a map often all
    // landed on the core they last ran on while the caller kept its own core busy, and the map
    // ran at one worker's pace (seen with perf sched on the sqrt benchmark). A socket, not a
    // pipe: sending to a worker that died or closed its end must not raise SIGPIPE here.
    auto [workers_wake_end, tasks_wake] = make_socket_pair("a pool worker's wake-up socket");
    worker.tasks_wake = std::move(tasks_wake);
    worker.tasks.emplace(worker.channel.ring_to(worker_end), worker.channel.capacity(),
                         worker.tasks_wake.get());
    worker.replies.emplace(worker.channel.ring_to(pool_end), worker.channel.capacity());
    auto [descriptors, workers_end] = make_socket_pair("a pool worker's descriptor socket");
    worker.descriptors = std::move(descriptors);
    if (::fcntl(worker.descriptors.get(), F_SETFL, O_NONBLOCK) != 0) {
        throw_system_error("cannot make a pool worker's descriptor socket non-blocking");
    }
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
    if (closed()) {
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

void PoolCore::advance(Life to) {
    Life now = life_.load();
    while (now < to && !life_.compare_exchange_weak(now, to)) {
    }
}

void PoolCore::close() {
    advance(Life::closed);
    wake_broker();
}

void PoolCore::terminate() {
    advance(Life::terminating);
    wake_broker();
}

void PoolCore::join() {
    if (!closed()) {
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
    while (worker.life != Worker::Life::unreadable) {
        auto reply = worker.replies->try_read();
        if (!reply) break;
        try {
            handle_reply(worker, *reply);
        } catch (const std::exception& error) {
            // Its channel holds what no worker writes: the task scribbled over it, say. The
            // worker is killed and replaced, as if it had crashed.
            log(LogLevel::error, "pool worker {} sent a reply that cannot be read ({}); killing it",
                worker.pid, error.what());
            worker.life = Worker::Life::unreadable;
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
            if (worker.life == Worker::Life::starting) worker.life = Worker::Life::ready;
            failed_starts_in_a_row_ = 0;
            last_start_error_ = nullptr;
            return;
        case ReplyKind::retiring:
            if (worker.life == Worker::Life::ready) worker.life = Worker::Life::retiring;
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
            finish(task, Completed{results, busy});
        } else {
            Reader reader(body);
            finish(task, decode_exception(reader));
        }
    } catch (...) {
        finish(task, std::current_exception());
        throw;
    }
}

// Ends a task, once for every task handed over or split off: its sink hears, then the count of
// tasks out goes down. An exception from the sink leaves the count alone: the caller then ends
// the task with that exception.
void PoolCore::finish(Task& task, const Ending& ending) {
    const std::uint64_t first = task.first + task.begin_call;
    if (const auto* completed = std::get_if<Completed>(&ending)) {
        task.sink->completed(first, completed->results, completed->busy);
    } else if (const auto* error = std::get_if<std::exception_ptr>(&ending)) {
        task.sink->failed(first, task.end_call - task.begin_call, *error);
    }
    tasks_out_.fetch_sub(1);
}

// The part [begin_call, end_call) of a task's calls, to run as a task of its own.
PoolCore::Task PoolCore::split_off(const Task& task, std::uint32_t begin_call,
                                   std::uint32_t end_call) {
    tasks_out_.fetch_add(1);
    return task.part(begin_call, end_call);
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
    if (worker.life == Worker::Life::stopped || broken_error_) return;
    log(LogLevel::debug, "pool worker {} ended with exitcode {}", worker.pid, exitcode);

    std::deque<Task> orphans = std::move(worker.in_flight);
    if (worker.life == Worker::Life::starting) {
        if (++failed_starts_in_a_row_ >= start_failures_tolerated) {
            for (Task& task : orphans) pending_.push_front(std::move(task));
            broken_error_ = std::make_exception_ptr(
                BrokenPool("crew: the pool's workers cannot start: " + start_failure(exitcode) +
                           "; every task of the pool failed, and it takes no more"));
            // Before the tasks fail: a caller woken by its failure must find the pool closed.
            // After broken_error_, which callers read once they see it.
            advance(Life::closed);
            fail_everything(broken_error_);
            return;
        }
    } else if (worker.life != Worker::Life::retiring && !orphans.empty() &&
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
    const bool overdue = worker.life == Worker::Life::overdue;
    std::uint32_t call = overdue ? worker.overdue_call : worker.progress->call.load();
    // Dead while sending the results: the last call's result may be what could not be sent.
    if (call == WorkerProgress::sending) call = running.end_call - 1;
    call = std::clamp(call, running.begin_call, running.end_call - 1);
    if (call + 1 < running.end_call) {
        orphans.push_front(split_off(running, call + 1, running.end_call));
    }
    if (running.begin_call < call) orphans.push_front(split_off(running, running.begin_call, call));
    running.begin_call = call;
    running.end_call = call + 1;
    if (overdue) {
        finish(running,
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
        finish(running, std::make_exception_ptr(WorkerDied(exitcode, worker.pid)));
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
    if (worker.life == Worker::Life::stopped) return false;
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
        finish(task, Dropped{});
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
            finish(task, std::make_exception_ptr(
                             Error("crew: too many tasks carrying descriptors wait for one pool "
                                   "worker; submit fewer at a time")));
            return;
        }
        // Else the worker died, closing the socket: the task runs again once its death is
        // handled, as it never began.
    }
    task.id = header.id;
    write_header(std::span(task.message.data(), task.message.size()), header);
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
    for (Task& task : pending_) finish(task, error);
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
            if (worker->life != Worker::Life::ready && worker->life != Worker::Life::retiring) {
                continue;
            }
            const auto running = worker->running_call();
            if (running && now_ns - running->second > options_.task_timeout.count()) {
                worker->life = Worker::Life::overdue;
                worker->overdue_call = running->first;
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
        if (worker->in_flight.empty() || worker->life == Worker::Life::overdue) continue;
        const auto running = worker->running_call();
        const std::int64_t due =
            (running ? running->second : now_ns) + options_.task_timeout.count();
        soonest = std::min(soonest.value_or(due), due);
    }
    if (!soonest) return -1;
    return milliseconds_until(Clock::now() + std::chrono::nanoseconds(*soonest - now_ns), 60'000);
}

void PoolCore::sleep_until_woken() {
    int timeout_ms = -1;
    bool may_sleep = false;
    {
        BrokerWork work(*this, BrokerWork::wait);
        broker_sleeping_.store(true);
        may_sleep = !has_submissions_.load() && life_.load() != Life::terminating;
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
    for (auto& worker : workers_) {
        if (!worker->process || !worker->process->pid()) continue;
        worker->life = Worker::Life::stopped;
        worker->process->kill();
        worker->process->join();
        end_left_behind(*worker);
    }
    advance(Life::closed);  // after broken_error_, which callers read once they see it
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
            if (broken_error_) fail_everything(broken_error_);
            if (life_.load() == Life::terminating) {
                broker_finished_.store(true);
                for (auto& worker : workers_) {
                    worker->life = Worker::Life::stopped;
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

            if (closed() && pending_.empty() && !has_submissions_.load() &&
                std::all_of(workers_.begin(), workers_.end(),
                            [](const auto& worker) { return worker->in_flight.empty(); })) {
                const TaskHeader stop{.kind = TaskKind::stop};
                for (auto& worker : workers_) {
                    worker->life = Worker::Life::stopped;
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
