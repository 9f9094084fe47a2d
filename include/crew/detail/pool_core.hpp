// crew/detail/pool_core.hpp: the machinery under crew::Pool and ProcessPoolExecutor.
//
// A PoolCore owns worker processes and one broker thread. Each worker has a shared-memory channel:
// a ring of task messages in and a ring of replies out (message_ring.hpp). The broker is the only
// thread that touches workers: it takes submitted tasks, keeps a few in flight per worker,
// collects replies and hands them to each task's TaskSink, and watches the workers' pidfds. A
// worker that dies fails the task it was running (crew::WorkerDied, or TimeoutError when the pool
// killed it for running too long; or the task is tried again while retries remain); tasks queued
// behind it go to other workers, and a new worker takes its place.
//
// Sinks are called on the broker thread, or on a caller's thread doing the broker's work (see
// Driver), and must not block.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <variant>
#include <vector>

#include "crew/detail/spin.hpp"
#include "crew/detail/task.hpp"
#include "crew/detail/task_transport.hpp"
#include "crew/detail/unique_fd.hpp"
#include "crew/start_method.hpp"
#include "crew/timeout.hpp"

namespace crew {
class Process;
}

namespace crew::detail {

struct PoolCoreOptions {
    int processes = 1;
    EncodedCall initializer;      // a call each worker makes first; may be empty
    int max_tasks_per_child = 0;  // 0: no limit
    std::optional<StartMethod> start_method;
    std::chrono::nanoseconds task_timeout{0};  // 0: none
    int retries = 0;
};

class PoolCore final : public TaskTransport {
    using Task = QueuedTask;
    struct Worker;

  public:
    explicit PoolCore(PoolCoreOptions options);
    ~PoolCore();  // terminates, unless join() ran
    PoolCore(const PoolCore&) = delete;
    PoolCore& operator=(const PoolCore&) = delete;

    int processes() const noexcept override { return options_.processes; }

    // No more tasks; those queued still run.
    void close() override;
    // Waits until the broker has finished every task and stopped the workers (after close), or
    // has failed them (after terminate).
    void join() override;
    // Kills the workers now; queued and running tasks fail.
    void terminate() override;
    // Whether it takes no more tasks: closed, terminated, or broken (its workers cannot start).
    bool closed() const noexcept override { return life_.load() != Life::open; }

  private:
    // Only moves forward: open, closed (close(): no new tasks, those queued run), terminating
    // (terminate(): the workers are killed and every task fails), ended (the broker has stopped
    // the workers and is gone, under BrokerWork: a task that comes now fails at once).
    enum class Life : std::uint8_t { open, closed, terminating, ended };

    // Holds the broker's state (pending tasks, the workers and their rings) for one thread at a
    // time: the broker thread, or a caller doing its work (Driver, submit).
    class BrokerWork {
      public:
        enum Mode { try_once, wait };
        explicit BrokerWork(PoolCore& core, Mode mode = try_once) : core_(core) {
            held_ = !core_.broker_work_.test_and_set(std::memory_order_acquire);
            while (!held_ && mode == wait) {
                cpu_relax();
                held_ = !core_.broker_work_.test_and_set(std::memory_order_acquire);
            }
        }
        ~BrokerWork() {
            if (held_) core_.broker_work_.clear(std::memory_order_release);
        }
        BrokerWork(const BrokerWork&) = delete;
        BrokerWork& operator=(const BrokerWork&) = delete;
        bool held() const noexcept { return held_; }

      private:
        PoolCore& core_;
        bool held_ = false;
    };

    Task make_task(Writer& task, std::uint64_t first, std::uint32_t count,
                   std::shared_ptr<TaskSink> sink) const override;
    void hand_over(std::span<Task> tasks) override;
    // A driving caller collects replies and hands tasks to workers, as the broker does.
    bool step() override;
    bool worth_spinning() const override;
    void driver_arrives() override;
    void driver_leaves() override;
    void broker();
    bool take_submissions();
    void fail_late_tasks();
    bool check_workers();
    void wake_broker();
    void have_replies_wake_broker();
    bool ask_workers_to_signal_replies();
    void start_worker(std::size_t index);
    bool collect(Worker& worker);
    void handle_reply(Worker& worker, std::span<const std::byte> reply);
    struct Completed {
        const TaskResults& results;
        std::chrono::nanoseconds busy;
    };
    struct Dropped {};  // cancelled before it went to a worker: the sink has heard already
    using Ending = std::variant<Completed, std::exception_ptr, Dropped>;
    void finish(Task& task, const Ending& ending);
    Task split_off(const Task& task, std::uint32_t begin_call, std::uint32_t end_call);
    void advance(Life to);
    void handle_end(std::size_t index);
    void blame_running_call(const Worker& worker, std::deque<Task>& orphans, int exitcode);
    std::string start_failure(int exitcode) const;
    void run_broker();
    void end_terminated();
    void end_closed();
    void break_down(const std::exception_ptr& cause);
    void end_left_behind(const Worker& worker);
    int milliseconds_to_next_timeout() const;
    void dispatch();
    bool wants_task(const Worker& worker) const;
    void give(Worker& worker);
    void fail_everything(const std::exception_ptr& error);
    void sleep_until_woken();

    PoolCoreOptions options_;
    std::vector<std::unique_ptr<Worker>> workers_;
    std::deque<Task> pending_;  // broker only

    std::mutex submissions_mutex_;
    std::vector<Task> submissions_;  // from callers, for the broker
    std::atomic<bool> has_submissions_{false};
    std::atomic<Life> life_{Life::open};
    std::atomic<bool> broker_sleeping_{false};
    std::atomic_flag broker_work_;            // see BrokerWork
    std::atomic<int> drivers_{0};             // threads inside a Driver
    std::atomic<std::int64_t> tasks_out_{0};  // submitted, not yet handed to their sink
    std::atomic<std::int64_t> task_cost_ns_;  // how long a task kept a worker busy, recently
    bool spare_core_ = false;  // fewer workers than cores: spinning takes no core from them
    UniqueFd wake_;            // eventfd: wakes the broker from epoll
    UniqueFd epoll_;           // the wake eventfd and the workers' pidfds
    std::uint64_t next_task_id_ = 1;
    std::uint64_t workers_started_ = 0;  // numbers them, as Python does: crew-worker-N in ps
    int failed_starts_in_a_row_ = 0;
    // Set once, by the broker, before the pool is closed: what every task gets once the pool is
    // broken (its workers cannot start, or the broker cannot go on); none is replaced any more.
    std::exception_ptr broken_error_;
    std::exception_ptr last_start_error_;  // the exception the last failed initializer threw
    std::thread broker_;
    std::once_flag joined_;
};

}  // namespace crew::detail
