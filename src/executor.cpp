#include "crew/executor.hpp"

#include <algorithm>
#include <chrono>

#include "crew/detail/spin.hpp"
#include "crew/init.hpp"

namespace crew {

ThreadPoolExecutor::ThreadPoolExecutor(ThreadPoolExecutorOptions options) {
    if (options.max_workers < 0) throw Error("crew: max_workers cannot be negative");
    int count = options.max_workers != 0 ? options.max_workers : std::min(32, cpu_count() + 4);
    threads_.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) threads_.emplace_back([this] { work(); });
}

namespace {
// A thread whose jobs run this quickly takes several at a time from the queue, so that the lock
// is not taken for every tiny job; a slower job is taken alone, leaving the rest to other threads.
constexpr std::chrono::nanoseconds quick_job{2000};
constexpr std::size_t most_jobs_taken = 64;
}  // namespace

void ThreadPoolExecutor::enqueue(std::shared_ptr<detail::ThreadJob> job) {
    bool wake = false;
    {
        std::lock_guard lock(mutex_);
        if (shutting_down_) {
            throw Error("crew: the executor is shut down; it takes no new tasks");
        }
        jobs_.push_back(std::move(job));
        queued_.store(queued(), std::memory_order_release);
        // A spinning thread will take it (and wake another if more are queued): a wake-up costs
        // the submitting thread more than a small job does.
        wake = wants_wake();
    }
    if (wake) wake_.notify_one();
}

// Under the lock, with jobs queued: whether to wake a sleeping thread for them (and count it).
bool ThreadPoolExecutor::wants_wake() {
    if (sleeping_ <= wakes_sent_ || spinning_.load() != 0) return false;
    ++wakes_sent_;
    return true;
}

bool ThreadPoolExecutor::take_jobs(std::vector<std::shared_ptr<detail::ThreadJob>>& batch,
                                   bool quick) {
    // Spin a little before sleeping (see detail/spin.hpp): a stream of small jobs then flows
    // without a wake-up for each.
    spinning_.fetch_add(1);
    for (int spin = 0;
         spin < detail::spins_before_sleeping && queued_.load(std::memory_order_acquire) == 0;
         ++spin) {
        detail::cpu_relax();
    }
    spinning_.fetch_sub(1);
    std::unique_lock lock(mutex_);
    ++sleeping_;
    wake_.wait(lock, [&] { return shutting_down_ || queued() != 0; });
    --sleeping_;
    if (wakes_sent_ > 0) --wakes_sent_;
    if (queued() == 0) return false;
    std::size_t count = 1;
    if (quick) count = std::clamp<std::size_t>(queued() / threads_.size(), 1, most_jobs_taken);
    for (std::size_t i = 0; i < count; ++i) batch.push_back(std::move(jobs_[first_job_++]));
    if (first_job_ == jobs_.size()) {
        jobs_.clear();
        first_job_ = 0;
    } else if (first_job_ >= 1024 && first_job_ >= jobs_.size() / 2) {
        jobs_.erase(jobs_.begin(), jobs_.begin() + static_cast<std::ptrdiff_t>(first_job_));
        first_job_ = 0;
    }
    queued_.store(queued(), std::memory_order_release);
    const bool wake_another = queued() != 0 && wants_wake();
    lock.unlock();
    if (wake_another) wake_.notify_one();
    return true;
}

void ThreadPoolExecutor::work() {
    std::vector<std::shared_ptr<detail::ThreadJob>> batch;
    bool quick = false;
    while (take_jobs(batch, quick)) {
        const auto start = std::chrono::steady_clock::now();
        for (auto& job : batch) {
            if (cancelling_.load(std::memory_order_relaxed)) {
                job->cancel_job();
            } else {
                job->run();
            }
        }
        quick = (std::chrono::steady_clock::now() - start) / batch.size() < quick_job;
        batch.clear();
    }
}

void ThreadPoolExecutor::shutdown(bool wait, bool cancel_futures) {
    std::vector<std::shared_ptr<detail::ThreadJob>> cancelled;
    {
        std::lock_guard lock(mutex_);
        shutting_down_ = true;
        if (cancel_futures) {
            cancelling_.store(true);
            cancelled.assign(
                std::make_move_iterator(jobs_.begin() + static_cast<std::ptrdiff_t>(first_job_)),
                std::make_move_iterator(jobs_.end()));
            jobs_.clear();
            first_job_ = 0;
            queued_.store(0);
        }
    }
    wake_.notify_all();
    for (auto& job : cancelled) job->cancel_job();
    if (!wait) return;
    for (std::thread& thread : threads_) {
        if (thread.joinable() && thread.get_id() != std::this_thread::get_id()) thread.join();
    }
}

}  // namespace crew
