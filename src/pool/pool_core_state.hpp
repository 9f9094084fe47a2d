// pool/pool_core_state.hpp: a PoolCore's tasks and workers as its broker keeps them, and the
// numbers the broker is tuned by. Shared by pool_core.cpp (making the pool, its workers and its
// tasks, the submitting and driving threads) and broker.cpp (the broker's loop).
#pragma once

#include <sys/types.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "crew/detail/byte_stream.hpp"
#include "crew/detail/message_ring.hpp"
#include "crew/detail/pool_core.hpp"
#include "crew/detail/ring_pair.hpp"
#include "crew/detail/unique_fd.hpp"
#include "crew/detail/worker_protocol.hpp"
#include "crew/process.hpp"
#include "pool/queued_task.hpp"

namespace crew::detail {

// Tasks written to a worker ahead of the one it runs, while its tasks are short (under
// queued_work each): at least one, so that it never waits for the broker, and up to about
// queued_work of them, so that a worker fed tiny tasks runs them back to back instead of sleeping
// between the broker's visits. A worker whose tasks take longer gets one at a time: a task
// queued behind a long one would wait there while another worker may sit idle.
inline constexpr std::size_t least_tasks_in_flight = 2;
inline constexpr std::size_t most_tasks_in_flight = 256;
inline constexpr std::chrono::nanoseconds queued_work = std::chrono::microseconds(200);
// Without a core to spare, a caller driving the pool (TaskTransport::Driver) spins only when its
// result is expected within about this long (else it yields its core between steps), and a
// broker with no task waiting for a worker (only replies to collect) spins only this many times
// before sleeping.
inline constexpr std::chrono::nanoseconds longest_spin = std::chrono::microseconds(50);
inline constexpr int broker_spins_without_spare_core = 50;
// Workers that die before they are ready, one after another, before the pool gives up.
inline constexpr int start_failures_tolerated = 3;

struct PoolCore::Worker {
    std::unique_ptr<Process> process;
    pid_t pid = 0;
    RingPair channel;
    UniqueFd descriptors;  // our end of the worker's descriptor socket
    UniqueFd tasks_wake;   // our end of the socket on which the worker sleeps for tasks
    std::optional<RingWriter> tasks;
    std::optional<RingReader> replies;
    const WorkerProgress* progress = nullptr;  // in channel
    std::deque<QueuedTask> in_flight;          // in the order sent; the first is the one running
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

}  // namespace crew::detail
