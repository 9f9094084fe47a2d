#include "crew/detail/pool_core.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <fmt/format.h>

#include "crew/detail/interrupt.hpp"
#include "crew/detail/ring_pair.hpp"
#include "crew/detail/spin.hpp"
#include "crew/error.hpp"
#include "crew/init.hpp"
#include "crew/process.hpp"
#include "foundation/descriptor_passing.hpp"
#include "pool/pool_core_state.hpp"
#include "pool/worker.hpp"

namespace crew::detail {

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

void PoolCore::hand_over(std::span<Task> tasks) {
    tasks_out_.fetch_add(static_cast<std::int64_t>(tasks.size()));
    if (BrokerWork work(*this); work.held()) {
        // The caller does the broker's work itself: no hand-over to another thread.
        take_submissions();
        for (Task& task : tasks) pending_.push_back(std::move(task));
        if (life_.load() == Life::ended) {
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
    if (life_.load() == Life::ended) {
        BrokerWork work(*this, BrokerWork::wait);
        fail_late_tasks();
        return;
    }
    if (broker_sleeping_.load()) wake_broker();
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

void PoolCore::driver_arrives() {
    if (drivers_.fetch_add(1) == 0 && broker_sleeping_.load()) {
        // The replies are this thread's to collect now: a worker need not wake the broker
        // (which would take a core) for them. It slept before drivers_ rose, or it saw them.
        BrokerWork work(*this, BrokerWork::wait);
        for (auto& worker : workers_) worker->replies->cancel_sleep();
    }
}

void PoolCore::driver_leaves() {
    // The broker may be asleep without watching the workers' replies, left to the drivers.
    if (drivers_.fetch_sub(1) == 1 && tasks_out_.load() > 0 && broker_sleeping_.load()) {
        wake_broker();
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

bool PoolCore::step() {
    BrokerWork work(*this);
    if (!work.held()) return false;
    if (life_.load() == Life::ended) {
        fail_late_tasks();
        return true;
    }
    bool progress = take_submissions();
    for (auto& worker : workers_) progress |= collect(*worker);
    dispatch();
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
}  // namespace crew::detail
