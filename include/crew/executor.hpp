// crew/executor.hpp: crew::ProcessPoolExecutor and crew::ThreadPoolExecutor, as in
// concurrent.futures.
//
//     int compute_square(int n) { return n * n; }
//
//     crew::ProcessPoolExecutor executor({.max_workers = 4});
//     std::vector<crew::Future<int>> futures;
//     for (int i = 0; i < 10; ++i) futures.push_back(executor.submit(compute_square, i));
//     for (const auto& future : crew::as_completed(futures)) std::cout << future.result() << '\n';
//     for (int square : executor.map(compute_square, crew::range(10))) ...   // in input order
//
// submit returns at once with a crew::Future (crew/future.hpp). map is lazy and ordered: it reads
// its input as results are consumed, a bounded window ahead; with a timeout, a result not ready
// that long after the call throws crew::TimeoutError where it is read.
//
// The process executor runs tasks in worker processes, with everything crew::Pool guarantees
// (crew/pool.hpp): what may be sent, and faults that fail one task, never the executor. The
// thread executor runs any callable (capturing lambdas too) on threads of this process.
//
// shutdown(wait = true, cancel_futures = false): no more submissions (they throw crew::Error);
// cancel_futures cancels what has not started; wait waits for the rest. The destructor shuts down
// and waits.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "crew/detail/job_queue.hpp"
#include "crew/detail/zip.hpp"
#include "crew/future.hpp"
#include "crew/pool.hpp"
#include "crew/timeout.hpp"

namespace crew {

namespace detail {

// map(f, xs, ys[, options]): the ranges zipped, and the options that may follow them.
template <class... Arguments>
auto zip_with_options(Arguments&&... arguments) {
    constexpr std::size_t count = sizeof...(Arguments);
    constexpr bool has_options = std::is_same_v<
        std::remove_cvref_t<std::tuple_element_t<count - 1, std::tuple<Arguments...>>>, MapOptions>;
    auto all = std::forward_as_tuple(std::forward<Arguments>(arguments)...);
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
        MapOptions options{};
        if constexpr (has_options) options = std::get<count - 1>(all);
        return std::pair(zip(std::get<I>(std::move(all))...), options);
    }
    (std::make_index_sequence<count - (has_options ? 1 : 0)>{});
}

// What f returns called with a tuple's elements.
template <class F, class Tuple>
struct apply_result;
template <class F, class... Elements>
struct apply_result<F, std::tuple<Elements...>> {
    using type = std::invoke_result_t<F&, Elements&&...>;
};

}  // namespace detail

struct ProcessPoolExecutorOptions {
    int max_workers = 0;  // 0: crew::cpu_count()
    Initializer initializer = {};
    int max_tasks_per_child = 0;  // 0: never replaced
    std::optional<StartMethod> start_method = {};
    std::chrono::nanoseconds task_timeout{0};  // 0: none
    int retries = 0;                           // runs again of a task whose worker died
};

class ProcessPoolExecutor {
  public:
    ProcessPoolExecutor() : ProcessPoolExecutor(ProcessPoolExecutorOptions{}) {}
    explicit ProcessPoolExecutor(ProcessPoolExecutorOptions options)
        : submitter_(
              detail::make_pool_core(PoolOptions{.processes = options.max_workers,
                                                 .initializer = std::move(options.initializer),
                                                 .maxtasksperchild = options.max_tasks_per_child,
                                                 .start_method = options.start_method,
                                                 .task_timeout = options.task_timeout,
                                                 .retries = options.retries})) {}
    ~ProcessPoolExecutor() { shutdown(); }
    ProcessPoolExecutor(const ProcessPoolExecutor&) = delete;
    ProcessPoolExecutor& operator=(const ProcessPoolExecutor&) = delete;

    template <class Function, class... Arguments>
    auto submit(Function&& function, Arguments&&... arguments) {
        auto state =
            submitter_.submit_call(detail::nothing_to_prepare, std::forward<Function>(function),
                                   std::forward<Arguments>(arguments)...);
        if constexpr (detail::refused<decltype(state)>) {
            return state;
        } else {
            remember(state);
            return Future(std::move(state));
        }
    }

    template <class Function, std::ranges::input_range Range>
    auto map(Function&& function, Range&& items, MapOptions options = {}) {
        return submitter_.lazy<false>(std::decay_t<Function>(std::forward<Function>(function)),
                                      std::forward<Range>(items), options, true, "map");
    }
    // Python's executor.map(f, xs, ys): f(x, y) for the items side by side, up to the end of the
    // shortest range; crew::MapOptions{...} may follow the ranges.
    template <class Function, std::ranges::input_range First, std::ranges::input_range Second,
              class... Rest>
    auto map(Function&& function, First&& first, Second&& second, Rest&&... rest) {
        auto [items, options] = detail::zip_with_options(
            std::forward<First>(first), std::forward<Second>(second), std::forward<Rest>(rest)...);
        return submitter_.lazy<true>(std::decay_t<Function>(std::forward<Function>(function)),
                                     std::move(items), options, true, "map");
    }

    void shutdown(bool wait = true, bool cancel_futures = false) {
        submitter_.transport().close();
        if (cancel_futures) {
            std::lock_guard lock(mutex_);
            for (auto& weak : futures_) {
                if (auto future = weak.lock()) future->cancel();
            }
            futures_.clear();
        }
        if (wait) submitter_.transport().join();
    }

  private:
    // Keeps each future that may not have started yet, for shutdown(cancel_futures). Futures
    // nobody holds any more are dropped now and then, so that the list stays as long as the
    // futures alive, at a constant cost a submit.
    void remember(std::weak_ptr<detail::Cancellable> future) {
        std::lock_guard lock(mutex_);
        if (futures_.size() >= prune_at_) {
            std::erase_if(futures_, [](const auto& weak) { return weak.expired(); });
            prune_at_ = std::max<std::size_t>(64, 2 * futures_.size());
        }
        futures_.push_back(std::move(future));
    }

    detail::Submitter submitter_;
    std::mutex mutex_;
    std::vector<std::weak_ptr<detail::Cancellable>> futures_;
    std::size_t prune_at_ = 64;
};

namespace detail {

template <class R, class Call>
class ThreadTask final : public FutureState<R>, public ThreadJob {
  public:
    explicit ThreadTask(Call call) : call_(std::move(call)) {}
    void run() override {
        if (!this->set_running()) return;  // cancelled
        try {
            if constexpr (std::is_void_v<R>) {
                call_();
                this->set_value({});
            } else {
                this->set_value(call_());
            }
        } catch (...) {
            this->set_error(std::current_exception());
        }
    }
    void cancel_job() override { this->cancel(); }
    void fail_job(std::exception_ptr error) override {
        if (this->set_running()) this->set_error(std::move(error));
    }

  private:
    Call call_;
};

}  // namespace detail

struct ThreadPoolExecutorOptions {
    int max_workers = 0;  // 0: crew::cpu_count() + 4, as Python (at most 32)
    // Threads are named prefix_0, prefix_1, ... (as the system shows them: 15 bytes at most);
    // empty: "ThreadPool-N", N counting executors from 1.
    std::string thread_name_prefix = {};
    // Run by each thread before its first task. Should it throw, the executor is broken: its
    // tasks and later submits fail with crew::BrokenPool (Python's BrokenThreadPool).
    std::function<void()> initializer = {};
};

class ThreadPoolExecutor {
  public:
    ThreadPoolExecutor() : ThreadPoolExecutor(ThreadPoolExecutorOptions{}) {}
    explicit ThreadPoolExecutor(ThreadPoolExecutorOptions options);
    ~ThreadPoolExecutor() { shutdown(); }
    ThreadPoolExecutor(const ThreadPoolExecutor&) = delete;
    ThreadPoolExecutor& operator=(const ThreadPoolExecutor&) = delete;

    int max_workers() const noexcept { return static_cast<int>(threads_.size()); }

    template <class Function, class... Arguments>
    auto submit(Function&& function, Arguments&&... arguments) {
        using R = std::invoke_result_t<std::decay_t<Function>, std::decay_t<Arguments>...>;
        auto call = [function = std::forward<Function>(function),
                     ... arguments = std::forward<Arguments>(arguments)]() mutable -> R {
            return std::invoke(std::move(function), std::move(arguments)...);
        };
        auto task = std::make_shared<detail::ThreadTask<R, decltype(call)>>(std::move(call));
        enqueue(task);
        return Future<R>(std::move(task));
    }

    // Lazy and ordered; keeps twice max_workers() calls in flight. options.chunksize is for the
    // process executor only: threads take items one by one.
    template <class Function, std::ranges::input_range Range>
    auto map(Function&& function, Range&& items, MapOptions options = {}) {
        using Item = std::ranges::range_reference_t<Range>;
        using R = std::invoke_result_t<std::decay_t<Function>&, Item>;
        auto progress = detail::progress_for(options, items, "map");
        return ThreadMapResults<false, std::decay_t<Function>, std::views::all_t<Range>, R>(
            *this, std::forward<Function>(function), std::views::all(std::forward<Range>(items)),
            options.timeout, std::move(progress));
    }
    // f(x, y) for the items of the ranges side by side, as the process executor's.
    template <class Function, std::ranges::input_range First, std::ranges::input_range Second,
              class... Rest>
    auto map(Function&& function, First&& first, Second&& second, Rest&&... rest) {
        auto [items, options] = detail::zip_with_options(
            std::forward<First>(first), std::forward<Second>(second), std::forward<Rest>(rest)...);
        using Items = decltype(items);
        using R = typename detail::apply_result<std::decay_t<Function>,
                                                std::ranges::range_value_t<Items>>::type;
        auto progress = detail::progress_for(options, items, "map");
        return ThreadMapResults<true, std::decay_t<Function>, Items, R>(
            *this, std::forward<Function>(function), std::move(items), options.timeout,
            std::move(progress));
    }

    void shutdown(bool wait = true, bool cancel_futures = false);

  private:
    // Star: each item is a tuple of the call's arguments.
    template <bool Star, class F, class View, class R>
    class [[nodiscard]] ThreadMapResults {
      public:
        ThreadMapResults(ThreadPoolExecutor& executor, F function, View view, Timeout timeout,
                         std::shared_ptr<detail::ProgressReport> progress)
            : executor_(&executor),
              function_(std::move(function)),
              view_(std::move(view)),
              next_(std::ranges::begin(view_)),
              progress_(std::move(progress)) {
            deadline_ = detail::deadline_for(timeout);
        }

        using iterator = detail::PullIterator<ThreadMapResults, R>;

        iterator begin() {
            fill();
            return iterator(this);
        }
        std::default_sentinel_t end() const { return {}; }

      private:
        friend iterator;
        R current() const {
            const Future<R>& front = in_flight_.front();
            if (deadline_) return front.result(*deadline_ - std::chrono::steady_clock::now());
            return front.result();
        }
        void advance() {
            in_flight_.pop_front();
            if (progress_) progress_->advance(1);
            fill();
            if (progress_ && in_flight_.empty()) progress_->finish();
        }
        bool at_end() const { return in_flight_.empty(); }
        void fill() {
            const std::size_t window = 2 * static_cast<std::size_t>(executor_->max_workers());
            for (; in_flight_.size() < window && next_ != std::ranges::end(view_); ++next_) {
                if constexpr (Star) {
                    in_flight_.push_back(std::apply(
                        [&](auto&&... arguments) {
                            return executor_->submit(
                                function_, std::forward<decltype(arguments)>(arguments)...);
                        },
                        *next_));
                } else {
                    in_flight_.push_back(executor_->submit(function_, *next_));
                }
            }
        }

        ThreadPoolExecutor* executor_;
        F function_;
        View view_;
        std::ranges::iterator_t<View> next_;
        std::deque<Future<R>> in_flight_;
        detail::Deadline deadline_;
        std::shared_ptr<detail::ProgressReport> progress_;  // null without .progress
    };

    void enqueue(std::shared_ptr<detail::ThreadJob> job);
    void work(std::size_t index);
    void start_thread(std::size_t index);
    void break_with(const std::string& why);
    // Spins, then sleeps, until jobs may be queued; false once shut down with none left.
    bool wait_for_jobs(std::size_t index);
    // Wakes one sleeping thread for the jobs queued, unless a thread looks for jobs already. The
    // thread woken is taken off the sleepers at once, so that the next submits do not wake it
    // again: a wake-up costs the waking thread a system call.
    void wake_a_sleeper();
    // Takes a sleeping thread off the sleepers (false if it is not asleep) and wakes it.
    bool wake(std::size_t index);

    // Each thread's sleep, on a line of its own: awake, asleep (or about to be), or woken by
    // another thread (which took it off the sleepers).
    enum : std::uint32_t { awake, asleep, woken };
    struct alignas(64) Sleep {
        std::atomic<std::uint32_t> state{awake};
    };

    detail::JobQueue jobs_;
    // Written by the threads as they change state, read at every submit.
    alignas(64) std::atomic<int> spinning_{0};    // threads looking for a job without sleeping
    std::atomic<int> sleepers_{0};                // threads asleep or about to be, not yet woken
    std::unique_ptr<Sleep[]> sleeps_;             // one a thread
    alignas(64) std::atomic<int> submitting_{0};  // submits past the shutdown check
    std::atomic<bool> shutting_down_{false};
    std::atomic<bool> cancelling_{false};  // shutdown(cancel_futures): taken jobs are cancelled
    bool no_spare_core_ = false;           // as many threads as cores, or more
    std::string thread_name_prefix_;
    std::function<void()> initializer_;
    // Set once, before broken_: the error of every task once an initializer threw.
    std::once_flag broken_once_;
    std::exception_ptr broken_error_;
    std::atomic<bool> broken_{false};
    std::vector<std::thread> threads_;
};

}  // namespace crew
