// crew/detail/worker_protocol.hpp: what a pool and its worker processes say to each other.
//
// Each worker has a channel in shared memory: a ring of task messages from the pool, a ring of
// replies back (message_ring.hpp) and a WorkerProgress, which the worker keeps up to date as it
// runs. A task message is a TaskHeader, then a chunk of calls (task.hpp); a reply is a
// ReplyHeader, then the task's results or the exception that kept it from running. The pool
// reads the progress when a worker has died or a call may have run too long: it tells which call
// of which task was running, so that only that call fails and the rest of its chunk runs again.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>

namespace crew::detail {

enum class TaskKind : std::uint32_t {
    run,   // a chunk of calls follows
    stop,  // nothing follows: the worker ends its tasks' children and exits
};

// Written in place at the start of a task message once the pool sends it (the submitter leaves
// room for it): the id and the calls are known only then.
struct TaskHeader {
    std::uint64_t id = 0;  // never 0: the pool numbers tasks from 1 as it sends them
    TaskKind kind = TaskKind::run;
    // The calls of the chunk to make, [begin_call, end_call): all of them at first, fewer when
    // the task runs again after its worker died in the middle of it.
    std::uint32_t begin_call = 0;
    std::uint32_t end_call = 0;
    std::uint32_t descriptors = 0;  // how many wait on the worker's descriptor socket
    bool stop_at_failure = false;   // the calls after a failed one fail unmade (crew::Parallel)
};

enum class ReplyKind : std::uint32_t {
    ran,       // the task's results follow
    failed,    // the task could not run (its message could not be read): an exception follows
    ready,     // the worker's initializer ran; it takes tasks now
    retiring,  // it made max_tasks_per_child tasks and ends after this
    initializer_failed,  // the initializer threw: an exception follows, and the worker ends
};

struct ReplyHeader {
    std::uint64_t task_id = 0;  // 0 for ready and retiring
    std::uint64_t busy_ns = 0;  // how long the task kept the worker busy
    ReplyKind kind = ReplyKind::ran;
};

// Headers travel as their bytes, at the start of their message.
template <class Header>
Header read_header(std::span<const std::byte> message) {
    Header header;
    std::memcpy(&header, message.data(), sizeof header);
    return header;
}
template <class Header>
void write_header(std::span<std::byte> message, const Header& header) {
    std::memcpy(message.data(), &header, sizeof header);
}

// Written by the worker only, read by the pool: what the worker is running.
struct WorkerProgress {
    // call's value once every call of the task was made and the results are being sent.
    static constexpr std::uint32_t sending = ~std::uint32_t{0};
    std::atomic<std::uint64_t> task{0};  // the id of the task begun last
    std::atomic<std::uint32_t> call{0};  // the index in its chunk of the call running, or sending
    // call_began_ns's value once the call has returned and its result is being written.
    static constexpr std::int64_t returned = std::numeric_limits<std::int64_t>::max();
    // When that call began (steady clock, in nanoseconds): kept only under a task_timeout.
    std::atomic<std::int64_t> call_began_ns{0};
};

// What the task a pool worker is running tells the chunk it runs: which of its calls to make, and
// where to say which one is running. Set by the worker around each task (by crew::run_batch around
// a registered backend's batch, on the thread that runs it); outside them, a chunk makes all its
// calls and says nothing.
struct RunningTask {
    std::uint32_t begin_call = 0;
    std::uint32_t end_call = 0;
    WorkerProgress* progress = nullptr;  // null outside a pool worker
    bool timed = false;                  // the pool has a task_timeout: calls are timed
    bool stop_at_failure = false;        // as the task's header says
};
inline thread_local RunningTask running_task;

// Set in a pool worker process (and so in a process one's task forks).
inline bool pool_worker_process = false;

// Whether the calling code runs in a pool worker, or in a registered backend's batch.
inline bool in_pool_worker() noexcept {
    return pool_worker_process || running_task.progress != nullptr;
}

inline std::int64_t steady_now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// Says that call is running. The time goes first: a pool that sees the call sees when it began.
inline void note_call_began(const RunningTask& task, std::uint32_t call) noexcept {
    if (task.progress == nullptr) return;
    if (task.timed) task.progress->call_began_ns.store(steady_now_ns(), std::memory_order_relaxed);
    task.progress->call.store(call, std::memory_order_release);
}

// Says that the running call has returned: what follows, writing its result, is not timed.
inline void note_call_returned() noexcept {
    if (running_task.timed) {
        running_task.progress->call_began_ns.store(WorkerProgress::returned,
                                                   std::memory_order_relaxed);
    }
}

}  // namespace crew::detail
