// crew/detail/task_transport.hpp: where a Submitter's tasks go, and how their outcomes come back.
//
// A task is a message written with begin_task (task.hpp): a chunk of calls of one function. A
// TaskTransport takes it, has it run, and tells the task's TaskSink how each call ended. PoolCore
// (pool_core.hpp) runs tasks on its worker processes; a backend registered for crew::Parallel
// (crew/parallel_backend.hpp) wherever that backend runs crew::run_batch. The Submitter writes
// the tasks and does not know which.
//
// Sinks are called by one thread at a time (the transport's, or a caller's doing its work, see
// Driver), and must not block.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <span>
#include <thread>
#include <vector>

#include "crew/detail/spin.hpp"
#include "crew/detail/task.hpp"
#include "crew/timeout.hpp"

namespace crew::detail {

class TaskSink {
  public:
    virtual ~TaskSink() = default;
    // The task ran: one outcome per call, in order. first is the index the task's first call has
    // in its batch (a map's input position); busy, how long the calls kept the worker busy.
    virtual void completed(std::uint64_t first, const TaskResults& results,
                           std::chrono::nanoseconds busy) = 0;
    // The task failed as a whole: each of its count calls fails with error.
    virtual void failed(std::uint64_t first, std::uint32_t count, std::exception_ptr error) = 0;
    // The task is about to go to a worker; false drops it instead (it was cancelled).
    virtual bool starting() { return true; }
    // Whether the calls after a failed one are to fail unmade, so that the failure comes back
    // at once (crew::Parallel's rule).
    virtual bool stops_at_first_failure() const { return false; }
};

// A task as a transport keeps it until its sink has heard (src/pool/queued_task.hpp).
struct QueuedTask;

// How long a caller waiting for a result drives a transport while yielding its core (see Driver).
inline constexpr std::chrono::milliseconds longest_yielding_drive{2};

class TaskTransport {
  public:
    virtual ~TaskTransport() = default;

    // How many tasks run at once: a pool's processes, a backend's workers.
    virtual int processes() const noexcept = 0;

    // Queues a task message written with begin_task, taking its bytes (and the descriptors its
    // arguments attached); throws crew::Error once the transport is closed, or for a task it
    // cannot carry.
    void submit(Writer& task, std::uint64_t first, std::uint32_t count,
                std::shared_ptr<TaskSink> sink);

    // Many tasks submitted by one thread (a map's chunks), handed over together: a few dozen at
    // a time, so that the workers are woken once for all of them rather than at the first while
    // the rest are still being written. Tasks added since the last submit() are dropped by the
    // destructor (an exception left the submitting code: nobody waits for them).
    class Batch {
      public:
        explicit Batch(TaskTransport& transport);
        ~Batch();
        Batch(const Batch&) = delete;
        Batch& operator=(const Batch&) = delete;
        // As TaskTransport::submit; may hand the tasks added so far over.
        void add(Writer& task, std::uint64_t first, std::uint32_t count,
                 std::shared_ptr<TaskSink> sink);
        void submit();

      private:
        TaskTransport& transport_;
        std::vector<QueuedTask> tasks_;
    };

    // A thread that waits for a result and does the transport's work meanwhile, for a while: a
    // quick result then comes back with no thread woken on the way (for a pool, the worker's
    // reply is collected by the waiter itself). Construct it before submitting the task waited
    // for; destroy it before sleeping on the result.
    class Driver {
      public:
        explicit Driver(TaskTransport& transport) : transport_(transport) {
            transport_.driver_arrives();
        }
        ~Driver() { transport_.driver_leaves(); }
        Driver(const Driver&) = delete;
        Driver& operator=(const Driver&) = delete;
        // Drives until done() holds, for a while. When that takes no core a worker needs (see
        // worth_spinning), it spins for about 50 µs. Otherwise it gives its core away whenever
        // there is nothing to do, for at most longest_yielding_drive: a worker that wants the
        // core gets it at once, and the result is collected the moment it lands, with no
        // wake-up of another thread (40-70 µs each on the machines measured). A deadline ends
        // it sooner (a caller's timeout).
        template <class Done>
        void drive_until(Done&& done, Deadline deadline = {}) {
            const auto now = std::chrono::steady_clock::now();
            if (deadline && *deadline <= now) return;
            if (transport_.worth_spinning()) {
                for (int spin = 0; spin < spins_before_sleeping && !done(); ++spin) {
                    if (!transport_.step()) cpu_relax();
                    if (deadline && spin % 64 == 63 &&
                        std::chrono::steady_clock::now() >= *deadline) {
                        return;
                    }
                }
                return;
            }
            auto until = now + longest_yielding_drive;
            if (deadline) until = std::min(until, *deadline);
            while (!done() && std::chrono::steady_clock::now() < until) {
                if (!transport_.step()) std::this_thread::yield();
            }
        }

      private:
        TaskTransport& transport_;
    };

    // No more tasks; those queued still run.
    virtual void close() = 0;
    // Waits until every task queued has ended and the transport has let its workers go (after
    // close), or has failed them (after terminate).
    virtual void join() = 0;
    // Ends the workers now, or as soon as the transport can; queued and running tasks fail.
    virtual void terminate() = 0;
    // Whether it takes no more tasks: closed, terminated, or broken.
    virtual bool closed() const noexcept = 0;

  protected:
    // A task of the message's bytes and descriptors, checked: throws what submit throws.
    virtual QueuedTask make_task(Writer& task, std::uint64_t first, std::uint32_t count,
                                 std::shared_ptr<TaskSink> sink) const = 0;
    // Takes tasks made by make_task, moving them out.
    virtual void hand_over(std::span<QueuedTask> tasks) = 0;
    // One round of the transport's work on a driving caller's thread; whether it got anywhere.
    virtual bool step() { return false; }
    // Whether a driving caller may spin rather than yield: it then takes no core a worker needs.
    virtual bool worth_spinning() const { return false; }
    virtual void driver_arrives() {}
    virtual void driver_leaves() {}
};

}  // namespace crew::detail
