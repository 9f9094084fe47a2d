// The broker: the one loop that moves a pool's tasks to its workers and their replies to the
// tasks' sinks, and replaces the workers that end (see crew/detail/pool_core.hpp). The rest of
// PoolCore (making it, its workers and tasks, and the threads that submit and drive) is in
// pool_core.cpp.
#include "crew/detail/pool_core.hpp"

#include <sys/epoll.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "crew/error.hpp"
#include "foundation/descriptor_passing.hpp"
#include "foundation/log.hpp"
#include "pool/pool_core_state.hpp"
#include "pool/worker.hpp"

namespace crew::detail {
namespace {

bool send_task_fds(int socket, std::span<const UniqueFd> fds) {
    std::vector<int> numbers;
    for (const UniqueFd& fd : fds) numbers.push_back(fd.get());
    const auto count = static_cast<std::uint32_t>(numbers.size());
    return send_with_fds(socket, &count, sizeof count, numbers);
}

}  // namespace

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
        // SIGKILL and SIGTERM come from outside (a user, a supervisor, the OOM killer), never
        // from a program's own crash: a worker they end as it starts is replaced like any
        // other, and only starts that fail of themselves break the pool.
        const bool killed_from_outside = exitcode == -SIGKILL || exitcode == -SIGTERM;
        if (!killed_from_outside && ++failed_starts_in_a_row_ >= start_failures_tolerated) {
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
                      .descriptors = 0,
                      .stop_at_failure = task.sink->stops_at_first_failure()};
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
    advance(Life::ended);  // after broken_error_, which callers read once they see it
    fail_late_tasks();     // with broken_error_, also what came before callers saw it closed
}

// terminate(): the workers are killed, every task fails.
void PoolCore::end_terminated() {
    advance(Life::ended);
    for (auto& worker : workers_) {
        worker->life = Worker::Life::stopped;
        worker->process->kill();
    }
    fail_everything(
        std::make_exception_ptr(Error("crew: the pool was terminated before this task finished")));
    for (auto& worker : workers_) {
        worker->process->join();
        end_left_behind(*worker);
    }
}

// Closed, and every task done: the workers are asked to end, and waited for.
void PoolCore::end_closed() {
    const TaskHeader stop{.kind = TaskKind::stop};
    for (auto& worker : workers_) {
        worker->life = Worker::Life::stopped;
        worker->tasks->write(std::as_bytes(std::span(&stop, 1)));
    }
    for (auto& worker : workers_) {
        worker->process->join();
        end_left_behind(*worker);
    }
    advance(Life::ended);
    fail_late_tasks();
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
                end_terminated();
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
                end_closed();
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
