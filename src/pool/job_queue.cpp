#include "crew/detail/job_queue.hpp"

namespace crew::detail {

JobQueue::JobQueue() : tail_(&stub_), head_(&stub_) {}

JobQueue::~JobQueue() {
    while (ThreadJob* job = pop()) job->queued_.reset();
}

void JobQueue::push(std::shared_ptr<ThreadJob> job) {
    ThreadJob* raw = job.get();
    raw->queued_ = std::move(job);
    // Counted before it is linked, so that taken_ never passes pushed_, and sequentially
    // consistent: see looks_empty.
    pushed_.fetch_add(1, std::memory_order_seq_cst);
    link(raw);
}

void JobQueue::link(ThreadJob* job) {
    job->next_.store(nullptr, std::memory_order_relaxed);
    ThreadJob* previous = tail_.exchange(job, std::memory_order_acq_rel);
    previous->next_.store(job, std::memory_order_release);
}

// The oldest linked job, if any. The stub stands in the queue whenever it would be empty, so that
// pushers always have a job to link to and the taker never takes the job a pusher links to.
ThreadJob* JobQueue::pop() {
    ThreadJob* head = head_;
    ThreadJob* next = head->next_.load(std::memory_order_acquire);
    if (head == &stub_) {
        if (next == nullptr) return nullptr;
        head_ = next;
        head = next;
        next = next->next_.load(std::memory_order_acquire);
    }
    if (next != nullptr) {
        head_ = next;
        return head;
    }
    if (head != tail_.load(std::memory_order_acquire)) return nullptr;  // a push is half done
    link(&stub_);
    next = head->next_.load(std::memory_order_acquire);
    if (next == nullptr) return nullptr;  // another push came between: its link is half done
    head_ = next;
    return head;
}

std::size_t JobQueue::take(std::vector<std::shared_ptr<ThreadJob>>& batch, std::size_t most) {
    if (taking_.load(std::memory_order_relaxed) ||
        taking_.exchange(true, std::memory_order_acquire)) {
        return 0;
    }
    std::size_t count = 0;
    for (; count < most; ++count) {
        ThreadJob* job = pop();
        if (job == nullptr) break;
        std::shared_ptr<ThreadJob> taken = std::move(job->queued_);
        batch.push_back(std::move(taken));  // the caller reserved room: this does not throw
    }
    taken_.store(taken_.load(std::memory_order_relaxed) + count, std::memory_order_release);
    taking_.store(false, std::memory_order_release);
    return count;
}

// Not from the links: the stub may stand at the tail with jobs before it (a push that came while
// the taker put the stub back). Taken first: when the two are equal, every job pushed by the time
// pushed_ is read had been taken.
bool JobQueue::looks_empty() const noexcept {
    const std::uint64_t taken = taken_.load(std::memory_order_seq_cst);
    return pushed_.load(std::memory_order_seq_cst) == taken;
}

std::size_t JobQueue::size() const noexcept {
    const std::uint64_t taken = taken_.load(std::memory_order_acquire);
    return static_cast<std::size_t>(pushed_.load(std::memory_order_acquire) - taken);
}

}  // namespace crew::detail
