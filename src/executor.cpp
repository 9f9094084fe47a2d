#include "crew/executor.hpp"

#include <algorithm>

#include "crew/init.hpp"

namespace crew {

ThreadPoolExecutor::ThreadPoolExecutor(ThreadPoolExecutorOptions options) {
    if (options.max_workers < 0) throw Error("crew: max_workers cannot be negative");
    int count = options.max_workers != 0 ? options.max_workers : std::min(32, cpu_count() + 4);
    threads_.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) threads_.emplace_back([this] { work(); });
}

void ThreadPoolExecutor::enqueue(std::function<void()> cancel, std::function<void()> run) {
    {
        std::lock_guard lock(mutex_);
        if (shutting_down_) {
            throw Error("crew: the executor is shut down; it takes no new tasks");
        }
        jobs_.push_back({std::move(cancel), std::move(run)});
    }
    wake_.notify_one();
}

void ThreadPoolExecutor::work() {
    while (true) {
        Job job;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [&] { return shutting_down_ || !jobs_.empty(); });
            if (jobs_.empty()) return;
            job = std::move(jobs_.front());
            jobs_.pop_front();
        }
        job.run();
    }
}

void ThreadPoolExecutor::shutdown(bool wait, bool cancel_futures) {
    std::deque<Job> cancelled;
    {
        std::lock_guard lock(mutex_);
        shutting_down_ = true;
        if (cancel_futures) cancelled.swap(jobs_);
    }
    wake_.notify_all();
    for (Job& job : cancelled) job.cancel();
    if (!wait) return;
    for (std::thread& thread : threads_) {
        if (thread.joinable() && thread.get_id() != std::this_thread::get_id()) thread.join();
    }
}

}  // namespace crew
