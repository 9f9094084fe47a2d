#include "crew/executor.hpp"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>

#include "crew/detail/futex.hpp"
#include "crew/detail/spin.hpp"
#include "crew/init.hpp"
#include "foundation/log.hpp"

namespace crew {

ThreadPoolExecutor::ThreadPoolExecutor(ThreadPoolExecutorOptions options)
    : thread_name_prefix_(std::move(options.thread_name_prefix)),
      initializer_(std::move(options.initializer)) {
    if (options.max_workers < 0) throw Error("crew: max_workers cannot be negative");
    static std::atomic<int> executors{0};
    const int number = ++executors;
    if (thread_name_prefix_.empty()) thread_name_prefix_ = "ThreadPool-" + std::to_string(number);
    int count = options.max_workers != 0 ? options.max_workers : std::min(32, cpu_count() + 4);
    no_spare_core_ = count >= cpu_count();
    sleeps_ = std::make_unique<Sleep[]>(static_cast<std::size_t>(count));
    threads_.reserve(static_cast<std::size_t>(count));
    for (std::size_t i = 0; i < static_cast<std::size_t>(count); ++i) {
        threads_.emplace_back([this, i] { work(i); });
    }
}

// A thread's name and initializer, before its first task.
void ThreadPoolExecutor::start_thread(std::size_t index) {
    const std::string name = (thread_name_prefix_ + "_" + std::to_string(index)).substr(0, 15);
    if (const int error = ::pthread_setname_np(::pthread_self(), name.c_str()); error != 0) {
        detail::log(LogLevel::warning, "cannot name a thread {}: {}", name, std::strerror(error));
    }
    if (!initializer_) return;
    try {
        initializer_();
    } catch (...) {
        break_with(detail::describe_current_exception());
    }
}

void ThreadPoolExecutor::break_with(const std::string& why) {
    std::call_once(broken_once_, [&] {
        broken_error_ = std::make_exception_ptr(
            BrokenPool("crew: a ThreadPoolExecutor thread's initializer threw " + why +
                       "; the executor is broken: its tasks fail, and it takes no more"));
        broken_.store(true, std::memory_order_release);
    });
}

namespace {
// A thread whose jobs run this quickly takes several at a time from the queue, so that it does
// not go to the queue for every tiny job; a slower job is taken alone, leaving the rest to other
// threads.
constexpr std::chrono::nanoseconds quick_job{2000};
constexpr std::size_t most_jobs_taken = 64;
// A thread looking for jobs looks at the queue every so many pauses: each look reads the count
// that every push writes, taking its cache line from the submitting thread.
constexpr int pauses_between_looks = 16;
}  // namespace

void ThreadPoolExecutor::enqueue(std::shared_ptr<detail::ThreadJob> job) {
    // A shutdown that sees no submit in progress finds every job pushed before it (see
    // wait_for_jobs), so none is left behind unrun.
    if (broken_.load(std::memory_order_acquire)) std::rethrow_exception(broken_error_);
    submitting_.fetch_add(1, std::memory_order_seq_cst);
    if (shutting_down_.load(std::memory_order_seq_cst)) {
        submitting_.fetch_sub(1, std::memory_order_release);
        throw Error("crew: the executor is shut down; it takes no new tasks");
    }
    jobs_.push(std::move(job));
    submitting_.fetch_sub(1, std::memory_order_release);
    wake_a_sleeper();
}

void ThreadPoolExecutor::wake_a_sleeper() {
    // Sequentially consistent, after the push: a thread that counted itself a sleeper before it
    // saw the queue empty is seen here.
    if (spinning_.load(std::memory_order_seq_cst) != 0 ||
        sleepers_.load(std::memory_order_seq_cst) == 0) {
        return;
    }
    // None may be found asleep: the sleepers counted may not have marked their state yet, and
    // then they see the queue's jobs themselves.
    for (std::size_t i = 0; i < threads_.size(); ++i) {
        if (wake(i)) return;
    }
}

bool ThreadPoolExecutor::wake(std::size_t index) {
    std::uint32_t expected = asleep;
    if (!sleeps_[index].state.compare_exchange_strong(expected, woken, std::memory_order_seq_cst)) {
        return false;
    }
    sleepers_.fetch_sub(1, std::memory_order_seq_cst);
    detail::futex_wake_private(sleeps_[index].state, 1);
    return true;
}

bool ThreadPoolExecutor::wait_for_jobs(std::size_t index) {
    spinning_.fetch_add(1, std::memory_order_seq_cst);
    for (int look = 0; look < detail::spins_before_sleeping / pauses_between_looks; ++look) {
        if (!jobs_.looks_empty() || shutting_down_.load(std::memory_order_relaxed)) break;
        if (no_spare_core_) {
            // Spinning, it would keep the submitting thread, or one with jobs, from its core.
            std::this_thread::yield();
        } else {
            for (int pause = 0; pause < pauses_between_looks; ++pause) detail::cpu_relax();
        }
    }
    spinning_.fetch_sub(1, std::memory_order_seq_cst);
    if (!jobs_.looks_empty()) return true;
    if (shutting_down_.load(std::memory_order_seq_cst)) {
        // A submit past its shutdown check pushes before it counts itself out.
        return submitting_.load(std::memory_order_seq_cst) != 0 || !jobs_.looks_empty();
    }
    // Asleep first, then counted, then a last look: a submit after that look sees the count and
    // finds this thread asleep; a shutdown after it finds it asleep too.
    std::atomic<std::uint32_t>& state = sleeps_[index].state;
    state.store(asleep, std::memory_order_seq_cst);
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    if (!jobs_.looks_empty() || shutting_down_.load(std::memory_order_seq_cst)) {
        std::uint32_t expected = asleep;
        if (state.compare_exchange_strong(expected, awake, std::memory_order_seq_cst)) {
            sleepers_.fetch_sub(1, std::memory_order_seq_cst);
            return true;
        }
        // Another thread woke it meanwhile, and took it off the sleepers.
    }
    while (state.load(std::memory_order_seq_cst) == asleep) {
        detail::futex_wait_private(state, asleep);
    }
    state.store(awake, std::memory_order_relaxed);
    return true;
}

void ThreadPoolExecutor::work(std::size_t index) {
    start_thread(index);
    std::vector<std::shared_ptr<detail::ThreadJob>> batch;
    batch.reserve(most_jobs_taken);
    bool quick = false;
    while (true) {
        std::size_t most = 1;
        if (quick)
            most = std::clamp<std::size_t>(jobs_.size() / threads_.size(), 1, most_jobs_taken);
        if (jobs_.take(batch, most) == 0) {
            if (!wait_for_jobs(index)) return;
            continue;
        }
        if (!jobs_.looks_empty()) wake_a_sleeper();  // the rest are for other threads
        const auto start = std::chrono::steady_clock::now();
        for (auto& job : batch) {
            if (cancelling_.load(std::memory_order_relaxed)) {
                job->cancel_job();
            } else if (broken_.load(std::memory_order_acquire)) {
                job->fail_job(broken_error_);
            } else {
                job->run();
            }
        }
        quick = (std::chrono::steady_clock::now() - start) / batch.size() < quick_job;
        batch.clear();
    }
}

void ThreadPoolExecutor::shutdown(bool wait, bool cancel_futures) {
    if (cancel_futures) cancelling_.store(true);
    shutting_down_.store(true, std::memory_order_seq_cst);
    for (std::size_t i = 0; i < threads_.size(); ++i) wake(i);
    if (cancel_futures) {
        // What no thread has taken is cancelled now, as Python's shutdown does; the threads
        // cancel what they took and have not started.
        std::vector<std::shared_ptr<detail::ThreadJob>> cancelled;
        cancelled.reserve(most_jobs_taken);
        while (!jobs_.looks_empty() || submitting_.load() != 0) {
            if (jobs_.take(cancelled, most_jobs_taken) == 0) std::this_thread::yield();
            for (auto& job : cancelled) job->cancel_job();
            cancelled.clear();
        }
    }
    if (!wait) return;
    for (std::thread& thread : threads_) {
        if (thread.joinable() && thread.get_id() != std::this_thread::get_id()) thread.join();
    }
}

}  // namespace crew
