// crew/detail/job_queue.hpp: the queue between a ThreadPoolExecutor's submitters and its threads.
//
// Any thread pushes without a lock and without waiting: one atomic exchange (Vyukov's intrusive
// multi-producer queue; the links live in the jobs). Taking is for one thread at a time: a taker
// that finds another taking gets nothing and looks again later, so a submitter never waits for a
// taker nor a taker for a submitter. Jobs come out in the order they went in. A job pushed and
// not yet linked (its pusher was preempted between two instructions) stays invisible until the
// pusher goes on; looks_empty() is false meanwhile (it counts, rather than looks at the links),
// so nobody sleeps on it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <vector>

namespace crew::detail {

// A ThreadPoolExecutor job: the call and the future it completes, in one allocation.
class ThreadJob {
  public:
    virtual ~ThreadJob() = default;
    virtual void run() = 0;
    virtual void cancel_job() = 0;
    // Ends the job with error instead of running it (its executor is broken).
    virtual void fail_job(std::exception_ptr error) = 0;

  private:
    friend class JobQueue;
    std::atomic<ThreadJob*> next_{nullptr};
    std::shared_ptr<ThreadJob> queued_;  // the job itself, while the queue holds it
};

class JobQueue {
  public:
    JobQueue();
    ~JobQueue();  // lets go of the jobs left
    JobQueue(const JobQueue&) = delete;
    JobQueue& operator=(const JobQueue&) = delete;

    void push(std::shared_ptr<ThreadJob> job);

    // Moves up to most jobs, oldest first, to the end of batch; returns how many. None while
    // another thread takes, or while the next job is being pushed.
    std::size_t take(std::vector<std::shared_ptr<ThreadJob>>& batch, std::size_t most);

    // Whether nothing is queued or being pushed; a take in progress may make it say no a little
    // longer. Sequentially consistent with push: a thread that announces it will sleep and then
    // sees the queue empty is seen by the announcement's readers after any later push.
    bool looks_empty() const noexcept;
    // Jobs pushed and not yet taken, about: a push counts just before it links its job, and a
    // take after it has unlinked its jobs.
    std::size_t size() const noexcept;

  private:
    class Stub final : public ThreadJob {
        void run() override {}
        void cancel_job() override {}
        void fail_job(std::exception_ptr) override {}
    };

    ThreadJob* pop();  // by the taker
    void link(ThreadJob* job);

    // The pushers' line, then the taker's: each side writes only its own.
    alignas(64) std::atomic<ThreadJob*> tail_;
    std::atomic<std::uint64_t> pushed_{0};
    alignas(64) ThreadJob* head_;
    std::atomic<std::uint64_t> taken_{0};
    std::atomic<bool> taking_{false};
    Stub stub_;
};

}  // namespace crew::detail
