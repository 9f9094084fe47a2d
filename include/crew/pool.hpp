// crew/pool.hpp: crew::Pool, Python's multiprocessing.Pool.
//
//     int square(int x) { return x * x; }
//
//     int main(int argc, char** argv) {
//         crew::init(argc, argv);
//         crew::Pool pool(4);  // or crew::Pool pool; for one worker a CPU
//         std::vector<int> squares = pool.map(square, crew::range(10));  // 0, 1, 4, ..., 81
//         crew::AsyncResult<int> later = pool.apply_async(square, 12);
//         for (int s : pool.imap_unordered(square, crew::range(100), {.progress = true})) {}
//         std::cout << later.get() << '\n';  // 144
//     }
//
// Functions and arguments cross to the workers as crew/process.hpp and crew/serialization.hpp
// describe (a lambda with captures is refused at compile time); results come back the same way.
// map, starmap and imap give results in input order; imap_unordered as they arrive.
//
// Faults fail one task, never the pool: a task whose worker crashes fails with crew::WorkerDied
// (and the worker is replaced), one that runs past task_timeout with crew::TimeoutError (its
// worker is killed and replaced), one that throws with what it threw, rebuilt as its own type
// where crew can (crew/remote_exception.hpp), else as crew::RemoteError, which carries the
// exception's type name, what() and the worker's pid. With retries = n, a task whose worker died
// is run again up to n times first. A worker's death fails only the call it was running: the
// calls of its chunk that had not begun run elsewhere, and so may those that had returned but
// whose results were not sent (a call may then run twice; its result is delivered once).
// task_timeout counts a call's own run, not the sending of its result. The error comes out of
// get(), map(), or the imap iterator at that task's place.
//
// Blocking: map, starmap and apply wait for their results; the _async forms and imap return at
// once (imap with a crew::ImapResults, crew/detail/imap_results.hpp). imap keeps a bounded window
// of work in flight and reads its input only as results are consumed, so an endless input is
// fine; the input must outlive the iteration, and the results of imap must not outlive the pool.
// Ctrl-C while a thread waits for results makes the wait throw crew::Interrupted, after stopping
// the workers of every pool.
//
// Lifetime: close() stops new work, join() (after close or terminate) waits for the workers to
// finish what was submitted and end; terminate() kills them at once and fails what was not done.
// The destructor closes and joins. Submitting to a closed pool throws crew::Error.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <ranges>
#include <type_traits>
#include <utility>
#include <vector>

#include "crew/detail/pool_core.hpp"
#include "crew/detail/submitter.hpp"
#include "crew/detail/task.hpp"
#include "crew/error.hpp"
#include "crew/future.hpp"
#include "crew/map_options.hpp"
#include "crew/start_method.hpp"
#include "crew/timeout.hpp"

namespace crew {

// A call each pool worker makes once, before its first task: Python's initializer and initargs.
//     crew::Pool pool({.initializer = load_model});                    // no arguments
//     crew::Pool pool({.initializer = crew::Initializer(connect, "db")});
class Initializer {
  public:
    Initializer() = default;
    template <class Function, class... Arguments>
    requires(!std::same_as<std::remove_cvref_t<Function>, Initializer>)
        Initializer(Function&& function, Arguments&&... arguments) {
        detail::Writer call;
        detail::encode_call(call, std::decay_t<Function>(std::forward<Function>(function)),
                            std::forward<Arguments>(arguments)...);
        call_.bytes.assign(call.bytes().begin(), call.bytes().end());
        call_.fds = std::make_shared<std::vector<detail::UniqueFd>>(call.take_fds());
    }
    const detail::EncodedCall& call() const noexcept { return call_; }

  private:
    detail::EncodedCall call_;
};

// Every member has an initializer, so designated initializers may leave any out.
struct PoolOptions {
    int processes = 0;                             // 0: crew::cpu_count()
    Initializer initializer = {};                  // run by each worker before its first task
    int maxtasksperchild = 0;                      // tasks before a worker is replaced; 0: never
    std::optional<StartMethod> start_method = {};  // default crew::get_start_method()
    std::chrono::nanoseconds task_timeout{0};      // longer calls fail with TimeoutError; 0: none
    int retries = 0;                               // runs again of a task whose worker died
};

namespace detail {
// The workers and broker that options describe; throws crew::Error for options out of range.
std::shared_ptr<PoolCore> make_pool_core(const PoolOptions& options);
}  // namespace detail

// Python's callback= and error_callback= of apply_async, map_async and starmap_async, given after
// the task's own arguments:
//     pool.apply_async(square, 12, crew::callback([](int squared) { ... }),
//                      crew::error_callback([](std::exception_ptr error) { ... }));
// The callback gets the result (const R&; nothing for a void task), the error callback the
// exception of a task that failed. Either runs once, before get() returns (as in Python), in the
// thread that completes the result: the pool's broker, or a thread waiting on the same pool. It
// must be quick and must not block, as in Python, where it holds up the pool's result-handler
// thread. One that throws is logged (crew::log_to_stderr shows it) and ignored.
template <class F>
struct Callback {
    F function;
};
template <class F>
struct ErrorCallback {
    F function;
};
template <class F>
Callback<std::decay_t<F>> callback(F&& function) {
    return {std::forward<F>(function)};
}
template <class F>
ErrorCallback<std::decay_t<F>> error_callback(F&& function) {
    return {std::forward<F>(function)};
}

namespace detail {

template <class T>
inline constexpr bool is_result_callback = false;
template <class F>
inline constexpr bool is_result_callback<Callback<F>> = true;
template <class F>
inline constexpr bool is_result_callback<ErrorCallback<F>> = true;
template <class T>
concept ResultCallback = is_result_callback<std::remove_cvref_t<T>>;

// How many of the last arguments are callbacks.
template <class... Arguments>
constexpr std::size_t trailing_callbacks() {
    constexpr bool is_callback[] = {false, ResultCallback<Arguments>...};
    std::size_t count = 0;
    for (std::size_t i = sizeof...(Arguments); i > 0 && is_callback[i]; --i) ++count;
    return count;
}

template <class T, class F>
void deliver(const T* value, const std::exception_ptr& error, const Callback<F>& callback) {
    if (error) return;
    if constexpr (std::is_same_v<T, std::monostate>) {
        static_assert(std::is_invocable_v<const F&>,
                      "crew: callback(f) of a task that returns nothing: f takes no arguments");
        callback.function();
    } else {
        static_assert(std::is_invocable_v<const F&, const T&>,
                      "crew: callback(f): f must take the task's result, as const R&");
        callback.function(*value);
    }
}
template <class T, class F>
void deliver(const T*, const std::exception_ptr& error, const ErrorCallback<F>& callback) {
    static_assert(
        std::is_invocable_v<const F&, std::exception_ptr>,
        "crew: error_callback(f): f must take the task's exception, a std::exception_ptr");
    if (error) callback.function(error);
}

// Prepares a pool's result state before its task is submitted: gives it the call's callbacks.
template <class... Callbacks>
auto callbacks_preparation(Callbacks&&... callbacks) {
    return [&](auto& state) {
        if constexpr (sizeof...(Callbacks) > 0) {
            state.call_when_ready([... callbacks = std::forward<Callbacks>(callbacks)](
                                      const auto* value, const std::exception_ptr& error) {
                (deliver(value, error, callbacks), ...);
            });
        }
    };
}

}  // namespace detail

// The result of an _async call, as Python's AsyncResult.
template <class T>
class AsyncResult {
  public:
    explicit AsyncResult(std::shared_ptr<detail::FutureState<T>> state)
        : future_(std::move(state)) {}

    // Waits for the result; throws what the task threw (its own type, crew::RemoteError,
    // WorkerDied, ...).
    T get() const { return future_.result(); }
    // As get(), but throws crew::TimeoutError after timeout.
    template <class Rep, class Period>
    T get(std::chrono::duration<Rep, Period> timeout) const {
        return future_.result(timeout);
    }
    void wait() const { future_.wait(); }
    // Returns whether the result is ready.
    template <class Rep, class Period>
    bool wait(std::chrono::duration<Rep, Period> timeout) const {
        return future_.wait(timeout);
    }
    bool ready() const { return future_.done(); }
    // Whether the task completed without an exception; throws crew::Error if it is not ready.
    bool successful() const {
        if (!ready()) throw Error("crew: successful() called before the result is ready");
        return future_.exception() == nullptr;
    }

  private:
    Future<T> future_;  // Python's AsyncResult is a Future without cancel and callbacks
};

class Pool {
  public:
    Pool() : Pool(PoolOptions{}) {}
    explicit Pool(int processes) : Pool(PoolOptions{.processes = processes}) {}
    explicit Pool(PoolOptions options);
    ~Pool();
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;

    int processes() const noexcept { return submitter_.processes(); }

    // f(item) for every item, in input order. chunksize 0: automatic.
    template <class Function, std::ranges::input_range Range>
    auto map(Function&& function, Range&& items, std::size_t chunksize = 0) {
        return map(std::forward<Function>(function), std::forward<Range>(items),
                   MapOptions{.chunksize = chunksize});
    }
    // pool.map(f, items, {.chunksize = 100, .timeout = 5s, .progress = true})
    template <class Function, std::ranges::input_range Range>
    auto map(Function&& function, Range&& items, MapOptions options) {
        return submitter_.wait_for(
            [&] {
                return submitter_.submit_all<false>(
                    std::decay_t<Function>(std::forward<Function>(function)),
                    std::forward<Range>(items), options, "map");
            },
            options.timeout);
    }

    // As map, returning at once; callbacks (crew::callback, crew::error_callback) get the whole
    // result vector, or the first error.
    template <class Function, std::ranges::input_range Range, detail::ResultCallback... Callbacks>
    auto map_async(Function&& function, Range&& items, std::size_t chunksize,
                   Callbacks&&... callbacks) {
        return async_all<false>(std::forward<Function>(function), std::forward<Range>(items),
                                chunksize, std::forward<Callbacks>(callbacks)...);
    }
    template <class Function, std::ranges::input_range Range, detail::ResultCallback... Callbacks>
    auto map_async(Function&& function, Range&& items, Callbacks&&... callbacks) {
        return map_async(std::forward<Function>(function), std::forward<Range>(items), 0,
                         std::forward<Callbacks>(callbacks)...);
    }

    // f(a, b, ...) for every tuple (a, b, ...), in input order.
    template <class Function, std::ranges::input_range Range>
    auto starmap(Function&& function, Range&& items, std::size_t chunksize = 0) {
        return starmap(std::forward<Function>(function), std::forward<Range>(items),
                       MapOptions{.chunksize = chunksize});
    }
    template <class Function, std::ranges::input_range Range>
    auto starmap(Function&& function, Range&& items, MapOptions options) {
        return submitter_.wait_for(
            [&] {
                return submitter_.submit_all<true>(
                    std::decay_t<Function>(std::forward<Function>(function)),
                    std::forward<Range>(items), options, "starmap");
            },
            options.timeout);
    }

    template <class Function, std::ranges::input_range Range, detail::ResultCallback... Callbacks>
    auto starmap_async(Function&& function, Range&& items, std::size_t chunksize,
                       Callbacks&&... callbacks) {
        return async_all<true>(std::forward<Function>(function), std::forward<Range>(items),
                               chunksize, std::forward<Callbacks>(callbacks)...);
    }
    template <class Function, std::ranges::input_range Range, detail::ResultCallback... Callbacks>
    auto starmap_async(Function&& function, Range&& items, Callbacks&&... callbacks) {
        return starmap_async(std::forward<Function>(function), std::forward<Range>(items), 0,
                             std::forward<Callbacks>(callbacks)...);
    }

    // function(arguments...) in a worker, waiting for the result.
    template <class Function, class... Arguments>
    auto apply(Function&& function, Arguments&&... arguments) {
        auto state =
            submitter_.submit_call(detail::nothing_to_prepare, std::forward<Function>(function),
                                   std::forward<Arguments>(arguments)...);
        if constexpr (detail::refused<decltype(state)>) {
            return state;
        } else {
            return state->take_value();
        }
    }

    // As apply, returning at once; crew::callback and crew::error_callback may follow the
    // arguments.
    template <class Function, class... Arguments>
    auto apply_async(Function&& function, Arguments&&... arguments) {
        constexpr std::size_t callbacks = detail::trailing_callbacks<Arguments...>();
        static_assert(
            callbacks == (0 + ... + detail::ResultCallback<Arguments>),
            "crew: crew::callback and crew::error_callback go after the task's arguments");
        auto all = std::forward_as_tuple(std::forward<Arguments>(arguments)...);
        return [&]<std::size_t... Argument, std::size_t... Callback>(
            std::index_sequence<Argument...>, std::index_sequence<Callback...>) {
            auto state = submitter_.submit_call(
                detail::callbacks_preparation(
                    std::get<sizeof...(Argument) + Callback>(std::move(all))...),
                std::forward<Function>(function), std::get<Argument>(std::move(all))...);
            return as_async_result(std::move(state));
        }
        (std::make_index_sequence<sizeof...(Arguments) - callbacks>{},
         std::make_index_sequence<callbacks>{});
    }

    // Results in input order, computed a bounded window ahead of the consumer; chunksize 0:
    // automatic (chunks grow until one costs a few hundred microseconds). With options, a
    // timeout counts from the call for every result.
    template <class Function, std::ranges::input_range Range>
    auto imap(Function&& function, Range&& items, std::size_t chunksize = 0) {
        return imap(std::forward<Function>(function), std::forward<Range>(items),
                    MapOptions{.chunksize = chunksize});
    }
    template <class Function, std::ranges::input_range Range>
    auto imap(Function&& function, Range&& items, MapOptions options) {
        return submitter_.lazy<false>(std::decay_t<Function>(std::forward<Function>(function)),
                                      std::forward<Range>(items), options, true, "imap");
    }

    // As imap, in the order results arrive.
    template <class Function, std::ranges::input_range Range>
    auto imap_unordered(Function&& function, Range&& items, std::size_t chunksize = 0) {
        return imap_unordered(std::forward<Function>(function), std::forward<Range>(items),
                              MapOptions{.chunksize = chunksize});
    }
    template <class Function, std::ranges::input_range Range>
    auto imap_unordered(Function&& function, Range&& items, MapOptions options) {
        return submitter_.lazy<false>(std::decay_t<Function>(std::forward<Function>(function)),
                                      std::forward<Range>(items), options, false, "imap_unordered");
    }

    void close();
    void join();
    void terminate();

  private:
    // map_async and starmap_async.
    template <bool Star, class Function, class Range, class... Callbacks>
    auto async_all(Function&& function, Range&& items, std::size_t chunksize,
                   Callbacks&&... callbacks) {
        return as_async_result(submitter_.submit_all<Star>(
            std::decay_t<Function>(std::forward<Function>(function)), std::forward<Range>(items),
            MapOptions{.chunksize = chunksize}, "",
            detail::callbacks_preparation(std::forward<Callbacks>(callbacks)...)));
    }
    // The AsyncResult of a submitted state, or what a call refused at compile time returns.
    template <class State>
    static auto as_async_result(State state) {
        if constexpr (detail::refused<State>) {
            return state;
        } else {
            return AsyncResult(std::move(state));
        }
    }

    detail::Submitter submitter_;
};

}  // namespace crew
