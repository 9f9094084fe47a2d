// crew/parallel.hpp: crew::Parallel and crew::delayed, joblib's Parallel(n_jobs=2)(delayed(f)(x)
// for x in xs).
//
//     double root(int x) { return std::sqrt(x); }
//
//     int main(int argc, char** argv) {
//         crew::init(argc, argv);
//         crew::Parallel parallel({.n_jobs = 2});
//         std::vector<double> roots = parallel(crew::range(10) | std::views::transform([](int i) {
//             return crew::delayed(root)(i * i);
//         }));                                                    // 0, 1, 2, ..., 9
//         std::vector<double> same = parallel(crew::delayed(root), squares);  // the shortcut
//     }
//
// A Parallel runs calls on n_jobs workers and returns their results in input order, as a
// std::vector. joblib's n_jobs: none is 1, -1 every core, -2 all but one, n < -1 cpu_count + 1 + n;
// 0 throws crew::Error. With n_jobs 1 (or the serial backend) the calls run one by one in the
// calling thread, with no worker, which is what a debugger wants. The processes backend (the
// default) runs them in a crew pool, as Pool::map does, with the same chunking and the same rules
// for what may cross to a worker (compile-time errors name what may not); the threads backend
// runs them on a crew::ThreadPoolExecutor. The same code runs on every backend.
//
// The calls of one Parallel call are calls of one function (joblib allows several; crew sends the
// function once for a chunk of calls): a delayed call of another function throws crew::Error.
// A function object with state must then be comparable (operator==) to be delayed in joblib's
// form; the shortcut takes any. The shortcut parallel(crew::delayed(f), xs, ys, ...) calls
// f(x, y, ...) for the items side by side, up to the end of the shortest range.
//
// Blocking: a call returns once every result is in; a failed call throws what it threw (its own
// type where crew can rebuild it, crew/remote_exception.hpp), a crashed worker crew::WorkerDied,
// and options.timeout crew::TimeoutError. Workers are started at the first call and kept for the
// next calls of the same Parallel, which ends them when it is destroyed. One Parallel is used by
// one thread at a time.
#pragma once

#include <concepts>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "crew/detail/callable.hpp"
#include "crew/detail/submitter.hpp"
#include "crew/detail/task.hpp"
#include "crew/detail/zip.hpp"
#include "crew/error.hpp"
#include "crew/executor.hpp"
#include "crew/map_options.hpp"
#include "crew/pool.hpp"
#include "crew/timeout.hpp"

namespace crew {

// Where a Parallel runs its calls: joblib's "loky" (processes), "threading" and "sequential".
enum class ParallelBackend { processes, threads, serial };

// joblib's options, by its names. Every member has an initializer, so designated initializers may
// leave any out.
struct ParallelOptions {
    std::optional<int> n_jobs = {};  // none: 1; -1: every core; -2: all but one; 0 is an error
    ParallelBackend backend = ParallelBackend::processes;
    std::size_t batch_size = 0;  // calls a worker is sent at a time; 0: automatic
    Timeout timeout = {};        // for all the results, from the call: crew::TimeoutError past it
    bool progress = false;       // the pools' progress bar on stderr
};

// function(arguments...), to be run by a Parallel: what crew::delayed(function)(arguments...)
// makes. The arguments are kept as values, as they will travel.
template <class F, class... Arguments>
struct DelayedCall {
    F function;
    std::tuple<Arguments...> arguments;
};

template <class F>
class Delayed {
  public:
    explicit Delayed(F function) : function_(std::move(function)) {}
    template <class... Arguments>
    DelayedCall<F, std::decay_t<Arguments>...> operator()(Arguments&&... arguments) const {
        return {function_,
                std::tuple<std::decay_t<Arguments>...>(std::forward<Arguments>(arguments)...)};
    }
    const F& function() const noexcept { return function_; }

  private:
    F function_;
};

// joblib's delayed(f): f's calls, made later by a Parallel.
template <class Function>
Delayed<std::decay_t<Function>> delayed(Function&& function) {
    return Delayed<std::decay_t<Function>>(std::forward<Function>(function));
}

namespace detail {

template <class T>
inline constexpr bool is_delayed_call = false;
template <class F, class... Arguments>
inline constexpr bool is_delayed_call<DelayedCall<F, Arguments...>> = true;

// n_jobs as joblib reads it, against this machine's cores; throws crew::Error for 0.
int resolve_n_jobs(std::optional<int> n_jobs);

// Whether the delayed calls of one Parallel call can be checked to call one function: function
// pointers and comparable objects are compared, copies of a stateless object are all the same.
template <class F>
inline constexpr bool comparable_function = std::equality_comparable<F> || std::is_empty_v<F>;

template <class F>
bool same_function(const F& first, const F& other) {
    if constexpr (std::equality_comparable<F>) {
        return first == other;
    } else {
        return true;  // stateless: every copy is the same
    }
}

}  // namespace detail

class Parallel {
  public:
    Parallel() : Parallel(ParallelOptions{}) {}
    explicit Parallel(ParallelOptions options);
    ~Parallel();
    Parallel(const Parallel&) = delete;
    Parallel& operator=(const Parallel&) = delete;

    // The workers it runs calls on: n_jobs as resolved.
    int n_jobs() const noexcept { return n_jobs_; }

    // joblib's form: the results of a range of delayed calls, in input order.
    template <std::ranges::input_range Calls>
    requires detail::is_delayed_call<std::remove_cvref_t<std::ranges::range_reference_t<Calls>>>
    auto operator()(Calls&& calls) {
        using Call = std::remove_cvref_t<std::ranges::range_reference_t<Calls>>;
        return run_calls(static_cast<Call*>(nullptr), std::forward<Calls>(calls));
    }

    // The shortcut: function(item, ...) for the items of the ranges side by side.
    template <class F, std::ranges::input_range First, std::ranges::input_range... Rest>
    auto operator()(const Delayed<F>& function, First&& first, Rest&&... rest) {
        if constexpr (sizeof...(Rest) == 0) {
            return run<false>(function.function(), std::forward<First>(first));
        } else {
            return run<true>(function.function(),
                             detail::zip(std::forward<First>(first), std::forward<Rest>(rest)...));
        }
    }

  private:
    template <class F, class... Arguments, class Calls>
    auto run_calls(DelayedCall<F, Arguments...>*, Calls&& calls) {
        if constexpr (!detail::check_call<F, Arguments...>()) {
            return detail::Refused{};
        } else if constexpr (!detail::comparable_function<F>) {
            static_assert(detail::comparable_function<F>,
                          "crew::Parallel: delayed calls of a function object with state must be "
                          "told apart: give it an operator==, or use the shortcut "
                          "parallel(crew::delayed(f), items)");
            return detail::Refused{};
        } else {
            std::optional<F> function;
            std::vector<std::tuple<Arguments...>> arguments;
            if constexpr (std::ranges::sized_range<Calls>) {
                arguments.reserve(static_cast<std::size_t>(std::ranges::size(calls)));
            }
            for (auto&& call : calls) {
                if (!function) {
                    function.emplace(call.function);
                } else if (!detail::same_function(*function, call.function)) {
                    throw Error(
                        "crew::Parallel: the delayed calls of one call must call one function; "
                        "make a Parallel call for each function");
                }
                arguments.push_back(std::forward<decltype(call)>(call).arguments);
            }
            using R = detail::call_result_t<F, detail::carried_arguments_t<F, Arguments...>>;
            if (!function) return std::vector<R>{};
            return run<true>(std::move(*function), std::move(arguments));
        }
    }

    // Every item's call on the backend, the results in input order; Star: each item is a tuple
    // of its call's arguments.
    template <bool Star, class F, class Range>
    auto run(F function, Range&& items) {
        using Call = detail::MapCall<F, std::ranges::range_reference_t<Range>, Star>;
        if constexpr (!Call::valid) {
            return detail::Refused{};
        } else {
            using R = detail::call_result_t<F, typename Call::Carried>;
            if constexpr (std::is_void_v<R>) {
                static_assert(!std::is_void_v<R>,
                              "crew::Parallel collects results, and this function returns void; "
                              "return a value");
                return detail::Refused{};
            } else if (n_jobs_ == 1 || options_.backend == ParallelBackend::serial) {
                return run_here<Star, R>(function, items);
            } else if (options_.backend == ParallelBackend::threads) {
                return run_on_threads<Star, R>(function, items);
            } else {
                detail::Submitter& pool = processes();
                const MapOptions map_options{.chunksize = options_.batch_size,
                                             .timeout = options_.timeout,
                                             .progress = options_.progress,
                                             .label = "Parallel"};
                return pool.wait_for(
                    [&] {
                        return pool.submit_all<Star>(std::move(function),
                                                     std::forward<Range>(items), map_options,
                                                     "Parallel");
                    },
                    options_.timeout);
            }
        }
    }

    template <bool Star, class F, class Item>
    static auto call(const F& function, Item&& item) {
        if constexpr (Star) {
            return std::apply(function, std::forward<Item>(item));
        } else {
            return std::invoke(function, std::forward<Item>(item));
        }
    }

    template <bool Star, class R, class F, class Range>
    std::vector<R> run_here(const F& function, Range& items) {
        std::vector<R> results;
        if constexpr (std::ranges::sized_range<Range>) {
            results.reserve(static_cast<std::size_t>(std::ranges::size(items)));
        }
        for (auto&& item : items) results.push_back(R(call<Star>(function, item)));
        return results;
    }

    // Each call a task of its own, with its own copy of the function: a call still running when
    // an earlier one's error is thrown must not use this frame's.
    template <bool Star, class R, class F, class Range>
    std::vector<R> run_on_threads(const F& function, Range& items) {
        using Item = std::remove_cvref_t<std::ranges::range_reference_t<Range>>;
        ThreadPoolExecutor& executor = threads();
        std::vector<Future<R>> futures;
        for (auto&& item : items) {
            futures.push_back(
                executor.submit([function](Item item) { return R(call<Star>(function, item)); },
                                Item(std::forward<decltype(item)>(item))));
        }
        const detail::Deadline deadline = detail::deadline_for(options_.timeout);
        std::vector<R> results;
        results.reserve(futures.size());
        for (const Future<R>& future : futures) {
            results.push_back(deadline ? future.result(std::max(*detail::time_left(deadline),
                                                                std::chrono::nanoseconds(0)))
                                       : future.result());
        }
        return results;
    }

    detail::Submitter& processes();
    ThreadPoolExecutor& threads();

    ParallelOptions options_;
    int n_jobs_;
    std::unique_ptr<detail::Submitter> processes_;  // started at the first call, then kept
    std::unique_ptr<ThreadPoolExecutor> threads_;
};

}  // namespace crew
