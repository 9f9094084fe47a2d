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
// once. imap keeps a bounded window of work in flight and reads its input only as results are
// consumed, so an endless input is fine; the input must outlive the iteration, and the results
// of imap must not outlive the pool. Ctrl-C while a thread waits for results makes the wait
// throw crew::Interrupted, after stopping the workers of every pool.
//
// Lifetime: close() stops new work, join() (after close or terminate) waits for the workers to
// finish what was submitted and end; terminate() kills them at once and fails what was not done.
// The destructor closes and joins. Submitting to a closed pool throws crew::Error.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "crew/detail/chunking.hpp"
#include "crew/detail/pool_core.hpp"
#include "crew/detail/progress.hpp"
#include "crew/detail/pull_iterator.hpp"
#include "crew/detail/task.hpp"
#include "crew/error.hpp"
#include "crew/future.hpp"
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

// Options of map, starmap, imap and imap_unordered (and of the executors' map). Every member has
// an initializer, so designated initializers may leave any out.
struct MapOptions {
    std::size_t chunksize = 0;  // 0: automatic
    Timeout timeout = {};       // for the results, from the call
    bool progress = false;      // a progress bar on stderr (plain lines when it is not a terminal)
    std::string label = {};     // the bar's name (tqdm's desc); empty: the call's, "map", "imap"...
};

namespace detail {
// The progress bar options ask for, if any, counting to the size of items when it is known.
template <class Range>
std::shared_ptr<Progress> progress_for(const MapOptions& options, Range& items, const char* label) {
    if (!options.progress) return nullptr;
    std::optional<std::uint64_t> total;
    if constexpr (std::ranges::sized_range<Range>) total = std::ranges::size(items);
    return std::make_shared<Progress>(options.label.empty() ? label : options.label, total);
}
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

namespace detail {
struct NothingToPrepare {
    void operator()(const auto&) const noexcept {}
};
inline constexpr NothingToPrepare nothing_to_prepare;
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

namespace detail {

// apply_async and submit: one call, one result. The future's state is the task's sink itself:
// one allocation a task, and the thread that finishes it frees nothing (the caller's futures
// hold the state).
template <class R>
class SingleSink final : public FutureState<R>, public TaskSink {
  public:
    explicit SingleSink(std::weak_ptr<PoolCore> core) : core_(std::move(core)) {}
    void completed(std::uint64_t, const TaskResults& results, std::chrono::nanoseconds) override {
        decode_results<R>(
            results,
            [&](std::uint32_t, auto&&... value) {
                if constexpr (std::is_void_v<R>) {
                    this->set_value({});
                } else {
                    this->set_value(std::forward<decltype(value)>(value)...);
                }
            },
            [&](std::uint32_t, std::exception_ptr error) { this->set_error(std::move(error)); });
    }
    void failed(std::uint64_t, std::uint32_t, std::exception_ptr error) override {
        this->set_error(std::move(error));
    }
    bool starting() override { return this->set_running(); }

  private:
    // A waiter collects the reply itself, as Pool::apply does: no broker wake-up, no futex
    // wake-up. The pool may be gone (its tasks are then all done or failed).
    void work_toward_done(detail::Deadline deadline) const override {
        if (const std::shared_ptr<PoolCore> core = core_.lock()) {
            PoolCore::Driver driver(*core);
            driver.drive_until([&] { return this->is_done(); }, deadline);
        }
    }

    std::weak_ptr<PoolCore> core_;
};

// map_async: results in input order once all are in; the error of the first failed input wins.
// Results go straight to their place in the vector map returns (packed ones in one copy); its
// memory is first touched when the first arrive, while the caller is still sending input.
template <class R>
class MapSink final : public TaskSink {
  public:
    MapSink(std::shared_ptr<FutureState<std::vector<R>>> state, std::size_t count,
            std::shared_ptr<Progress> progress)
        : state_(std::move(state)),
          count_(count),
          remaining_(count),
          progress_(std::move(progress)) {
        // Allocated by the caller's thread, as its own loop would (from its malloc arena, often
        // warm); filled in by the broker.
        results_.reserve(count);
        prefer_huge_pages(results_.data(), count * sizeof(results_[0]));
        if (count == 0) state_->set_value({});
    }
    // Sizes the result vector (its first touch): on the caller's thread once every chunk is
    // submitted, while the workers wake up, or at the first result, whichever comes first.
    void size_results() {
        std::call_once(sized_, [&] { results_.resize(count_); });
    }
    void completed(std::uint64_t first, const TaskResults& results,
                   std::chrono::nanoseconds) override {
        size_results();
        if constexpr (direct && packable_result<R>) {
            if (results.packed_as(sizeof(R))) {
                std::memcpy(static_cast<void*>(results_.data() + first),
                            results.packed_values().data(), results.packed_values().size());
                arrived(results.size());
                return;
            }
        }
        decode_results<R>(
            results,
            [&](std::uint32_t i, R&& value) {
                if constexpr (direct) {
                    results_[first + i] = std::move(value);
                } else {
                    results_[first + i].emplace(std::move(value));
                }
            },
            [&](std::uint32_t i, std::exception_ptr error) {
                note_error(first + i, std::move(error));
            });
        arrived(results.size());
    }
    void failed(std::uint64_t first, std::uint32_t count, std::exception_ptr error) override {
        note_error(first, std::move(error));
        arrived(count);
    }

  private:
    // Default-constructible results are stored in place; others wait in optionals.
    static constexpr bool direct =
        std::is_default_constructible_v<R> && std::is_move_assignable_v<R>;

    void note_error(std::uint64_t index, std::exception_ptr error) {
        if (index < error_index_) {
            error_index_ = index;
            error_ = std::move(error);
        }
    }
    void arrived(std::size_t count) {
        remaining_ -= count;
        if (progress_) progress_->advance(count);
        if (remaining_ != 0) return;
        if (error_) {
            state_->set_error(error_);
            return;
        }
        if constexpr (direct) {
            state_->set_value(std::move(results_));
        } else {
            std::vector<R> results;
            results.reserve(results_.size());
            for (auto& result : results_) results.push_back(std::move(*result));
            state_->set_value(std::move(results));
        }
    }

    std::shared_ptr<FutureState<std::vector<R>>> state_;
    std::size_t count_;
    std::once_flag sized_;
    std::conditional_t<direct, std::vector<R>, std::vector<std::optional<R>>> results_;
    std::size_t remaining_;
    std::uint64_t error_index_ = ~std::uint64_t{0};
    std::exception_ptr error_;
    std::shared_ptr<Progress> progress_;  // null without .progress
};

// imap: results wait here, by input position, until the consumer takes them.
template <class R>
class ImapSink final : public TaskSink {
  public:
    struct Arrived {
        std::optional<R> value;
        std::exception_ptr error;
    };

    void completed(std::uint64_t first, const TaskResults& results,
                   std::chrono::nanoseconds busy) override {
        {
            std::lock_guard lock(mutex_);
            decode_results<R>(
                results,
                [&](std::uint32_t i, R&& value) {
                    arrived_[first + i].value.emplace(std::move(value));
                },
                [&](std::uint32_t i, std::exception_ptr error) {
                    arrived_[first + i].error = std::move(error);
                });
            if (results.size() != 0) {
                cost_per_call_ = std::max(busy / results.size(), std::chrono::nanoseconds(1));
            }
        }
        changed_.notify_all();
    }
    void failed(std::uint64_t first, std::uint32_t count, std::exception_ptr error) override {
        {
            std::lock_guard lock(mutex_);
            for (std::uint32_t i = 0; i < count; ++i) arrived_[first + i].error = error;
        }
        changed_.notify_all();
    }

    // Takes the result at index (ordered) or any (unordered), waiting for it until deadline.
    Arrived take(std::optional<std::uint64_t> index, detail::Deadline deadline) {
        std::unique_lock lock(mutex_);
        typename std::map<std::uint64_t, Arrived>::iterator found;
        auto there = [&] {
            found = index ? arrived_.find(*index) : arrived_.begin();
            return found != arrived_.end();
        };
        if (!wait_interruptibly(changed_, lock, deadline, there)) {
            throw TimeoutError("crew: map: a result was not ready within the timeout");
        }
        Arrived result = std::move(found->second);
        arrived_.erase(found);
        return result;
    }

    // How long one call kept a worker busy, as last seen; nothing before the first result.
    std::optional<std::chrono::nanoseconds> cost_per_call() {
        std::lock_guard lock(mutex_);
        return cost_per_call_;
    }

  private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::map<std::uint64_t, Arrived> arrived_;

    std::optional<std::chrono::nanoseconds> cost_per_call_;
};

}  // namespace detail

// The lazy results of imap and imap_unordered: an input range, read once. A call that failed
// throws its error where its result is read (*it); ++it then moves on to the next result, so
// the other results can still be had, as with Python's next().
// [[nodiscard]]: the calls run only as the results are read, so results dropped unread are work
// never done.
template <class R>
class [[nodiscard]] ImapResults {
  public:
    // Submits the next chunk, within limits, its first call numbered first; returns how many
    // calls it holds, or nothing when the input is exhausted.
    using Feeder = std::function<std::optional<std::uint32_t>(std::uint64_t first,
                                                              detail::ChunkLimits limits)>;

    ImapResults(std::shared_ptr<detail::ImapSink<R>> sink, Feeder feeder, bool ordered,
                std::size_t chunksize, std::size_t window_chunks, detail::Deadline deadline,
                std::shared_ptr<detail::Progress> progress)
        : sink_(std::move(sink)),
          feeder_(std::move(feeder)),
          ordered_(ordered),
          chunksize_(chunksize),
          window_chunks_(window_chunks),
          deadline_(deadline),
          progress_(std::move(progress)) {}

    using iterator = detail::PullIterator<ImapResults, R&>;

    // Starts the iteration: the first result is waited for here.
    iterator begin() {
        advance();
        return iterator(this);
    }
    std::default_sentinel_t end() const { return {}; }

  private:
    friend iterator;
    R& current() {
        if (current_->error) std::rethrow_exception(current_->error);
        return *current_->value;
    }
    bool at_end() const { return !current_; }
    void fill_window() {
        while (!input_done_ && chunks_out_ < window_chunks_) {
            std::optional<std::uint32_t> count = feeder_(
                submitted_,
                detail::imap_chunk_limits<R>(chunksize_, sink_->cost_per_call(), last_chunk_));
            if (!count) {
                input_done_ = true;
                break;
            }
            last_chunk_ = *count;
            submitted_ += *count;
            ++chunks_out_;
            chunk_ends_.push_back(submitted_);
        }
    }

    void advance() {
        current_.reset();
        fill_window();
        if (yielded_ == submitted_) {  // the end
            if (progress_) progress_->finish();
            return;
        }
        auto arrived = sink_->take(ordered_ ? std::optional(yielded_) : std::nullopt, deadline_);
        ++yielded_;
        // A chunk counts as out until all its results have been taken.
        while (!chunk_ends_.empty() && chunk_ends_.front() <= yielded_) {
            chunk_ends_.erase(chunk_ends_.begin());
            --chunks_out_;
        }
        current_ = std::move(arrived);
        if (progress_) progress_->advance(1);
    }

    std::shared_ptr<detail::ImapSink<R>> sink_;
    Feeder feeder_;
    bool ordered_;
    std::size_t chunksize_;
    std::size_t window_chunks_;
    detail::Deadline deadline_;  // for every result
    std::uint64_t submitted_ = 0;
    std::uint64_t yielded_ = 0;
    std::size_t chunks_out_ = 0;
    std::vector<std::uint64_t> chunk_ends_;
    std::uint32_t last_chunk_ = 0;
    bool input_done_ = false;
    std::optional<typename detail::ImapSink<R>::Arrived> current_;
    std::shared_ptr<detail::Progress> progress_;  // null without .progress
};

class Pool {
  public:
    Pool() : Pool(PoolOptions{}) {}
    explicit Pool(int processes) : Pool(PoolOptions{.processes = processes}) {}
    explicit Pool(PoolOptions options);
    ~Pool();
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;

    int processes() const noexcept { return core_->processes(); }

    // f(item) for every item, in input order. chunksize 0: automatic.
    template <class Function, std::ranges::input_range Range>
    auto map(Function&& function, Range&& items, std::size_t chunksize = 0) {
        return map(std::forward<Function>(function), std::forward<Range>(items),
                   MapOptions{.chunksize = chunksize});
    }
    // pool.map(f, items, {.chunksize = 100, .timeout = 5s, .progress = true})
    template <class Function, std::ranges::input_range Range>
    auto map(Function&& function, Range&& items, MapOptions options) {
        return wait_for(
            [&] {
                return submit_all<false>(std::decay_t<Function>(std::forward<Function>(function)),
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
        return wait_for(
            [&] {
                return submit_all<true>(std::decay_t<Function>(std::forward<Function>(function)),
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
        auto state = submit_call(detail::nothing_to_prepare, std::forward<Function>(function),
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
            auto state = submit_call(
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
        return lazy<false>(std::decay_t<Function>(std::forward<Function>(function)),
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
        return lazy<false>(std::decay_t<Function>(std::forward<Function>(function)),
                           std::forward<Range>(items), options, false, "imap_unordered");
    }

    void close();
    void join();
    void terminate();

  private:
    // The carried argument types of one input item: the item itself, or a tuple's elements.
    template <class F, class Item, bool Star>
    struct Call;
    template <class F, class Item>
    struct Call<F, Item, false> {
        static constexpr bool valid = detail::check_call<F, Item>();
        using Carried = detail::carried_arguments_t<F, Item>;
        static void encode(detail::Writer& task, Item&& item) {
            detail::encode_arguments_as<Carried>(task, std::forward<Item>(item));
        }
        // One argument sent as its raw bytes: a chunk's arguments are those bytes back to back.
        static constexpr bool raw_argument = [] {
            if constexpr (std::tuple_size_v<Carried> == 1) {
                return detail::raw_bytes_value<std::tuple_element_t<0, Carried>>;
            } else {
                return false;
            }
        }();
    };
    template <class F, class Item>
    struct Call<F, Item, true> {
        template <class Tuple>
        struct from_tuple;
        template <class... Elements>
        struct from_tuple<std::tuple<Elements...>> {
            static constexpr bool valid = detail::check_call<F, Elements...>();
            using Carried = detail::carried_arguments_t<F, Elements...>;
        };
        template <class A, class B>
        struct from_tuple<std::pair<A, B>> : from_tuple<std::tuple<A, B>> {};
        using Unpacked = from_tuple<std::remove_cvref_t<Item>>;
        static constexpr bool valid = Unpacked::valid;
        static constexpr bool raw_argument = false;
        using Carried = typename Unpacked::Carried;
        static void encode(detail::Writer& task, Item&& item) {
            std::apply(
                [&](auto&&... elements) {
                    detail::encode_arguments_as<Carried>(
                        task, std::forward<decltype(elements)>(elements)...);
                },
                std::forward<Item>(item));
        }
    };

    // The iterator of a counting range of integers (crew::range, std::views::iota).
    template <class Iterator>
    static constexpr bool counting_iterator = [] {
        if constexpr (std::integral<std::iter_value_t<Iterator>>) {
            using W = std::iter_value_t<Iterator>;
            return std::same_as<Iterator, std::ranges::iterator_t<std::ranges::iota_view<W, W>>> ||
                   std::same_as<Iterator, std::ranges::iterator_t<std::ranges::iota_view<
                                              W, std::unreachable_sentinel_t>>>;
        } else {
            return false;
        }
    }();

    // Where the chunks' entry point and function lie: the counting entry point for a counting
    // range of raw values (see submit_chunk), the general one otherwise.
    template <class F, class Call, class Iterator>
    static detail::ChunkCode chunk_code(const F& function) {
        if constexpr (Call::raw_argument && counting_iterator<Iterator>) {
            return detail::counting_chunk_code<F, typename Call::Carried,
                                               std::iter_value_t<Iterator>>(function);
        } else {
            return detail::chunk_code<F, typename Call::Carried>(function);
        }
    }

    // Adds a chunk of items from the iterator to the batch: up to limits.calls calls, fewer at
    // the end or once its message reaches limits.bytes; returns how many.
    template <class F, class Call, class Iterator, class Sentinel>
    static std::uint32_t submit_chunk(const F& function, const detail::ChunkCode& code,
                                      Iterator& next, const Sentinel& end, std::uint64_t first,
                                      detail::ChunkLimits limits,
                                      std::shared_ptr<detail::TaskSink> sink,
                                      detail::PoolCore::Batch& batch) {
        const std::uint32_t size = limits.calls;
        const std::size_t byte_limit = limits.bytes;
        detail::Writer task;
        const std::size_t count_at = detail::begin_task(task, code, function);
        std::uint32_t count = 0;
        if constexpr (Call::raw_argument && counting_iterator<Iterator>) {
            // A counting range (crew::range, std::views::iota): the first value says it all.
            using Counter = std::iter_value_t<Iterator>;
            std::size_t left = size;
            if constexpr (std::sized_sentinel_for<Sentinel, Iterator>) {
                left = std::min<std::size_t>(size, static_cast<std::size_t>(end - next));
            }
            count = static_cast<std::uint32_t>(left);
            if (count != 0) {
                detail::encode(task, static_cast<Counter>(*next));
                next += static_cast<std::iter_difference_t<Iterator>>(count);
            }
        } else {
            if constexpr (Call::raw_argument && std::sized_sentinel_for<Sentinel, Iterator>) {
                count =
                    encode_raw_arguments<typename Call::Carried>(task, next, end, size, byte_limit);
            } else {
                count = encode_arguments<Call>(task, next, end, size, byte_limit);
            }
        }
        detail::finish_task(task, count_at, count);
        if (count != 0) batch.add(task, first, count, std::move(sink));
        return count;
    }

    // Writes up to size items' arguments, one by one, until the task reaches byte_limit.
    template <class Call, class Iterator, class Sentinel>
    static std::uint32_t encode_arguments(detail::Writer& task, Iterator& next, const Sentinel& end,
                                          std::uint32_t size, std::size_t byte_limit) {
        std::uint32_t count = 0;
        for (; count < size && next != end && task.size() < byte_limit; ++count, ++next) {
            const std::size_t before = task.size();
            Call::encode(task, std::forward<std::iter_reference_t<Iterator>>(*next));
            if (count == 0 && size > 1) {
                // Room for the chunk at once, judged by its first item: one allocation.
                const std::size_t item = task.size() - before;
                task.reserve(std::min(before + item * size, byte_limit) + item);
            }
        }
        return count;
    }

    // The same for items that are one raw value each, read from an iterator that knows how far
    // the end is: a block at a time, a copy of the whole chunk from contiguous memory.
    template <class Carried, class Iterator, class Sentinel>
    static std::uint32_t encode_raw_arguments(detail::Writer& task, Iterator& next,
                                              const Sentinel& end, std::uint32_t size,
                                              std::size_t byte_limit) {
        using T = std::tuple_element_t<0, Carried>;
        const std::size_t room = byte_limit - std::min(byte_limit, task.size());
        const std::size_t fitting = std::max<std::size_t>(1, (room + sizeof(T) - 1) / sizeof(T));
        const auto left = static_cast<std::size_t>(std::max<std::iter_difference_t<Iterator>>(
            0, static_cast<std::iter_difference_t<Iterator>>(end - next)));
        const auto count = static_cast<std::uint32_t>(std::min({std::size_t{size}, left, fitting}));
        task.reserve(task.size() + std::size_t{count} * sizeof(T));
        if constexpr (std::contiguous_iterator<Iterator> &&
                      std::same_as<std::iter_value_t<Iterator>, T>) {
            task.write_bytes(std::to_address(next), std::size_t{count} * sizeof(T));
            next += count;
        } else {
            constexpr std::uint32_t block = 256;
            alignas(T) std::byte values[block * sizeof(T)];
            for (std::uint32_t done = 0; done < count;) {
                const std::uint32_t in_block = std::min(block, count - done);
                for (std::uint32_t i = 0; i < in_block; ++i, ++next) {
                    const T value(*next);
                    std::memcpy(values + std::size_t{i} * sizeof(T), &value, sizeof(T));
                }
                task.write_bytes(values, std::size_t{in_block} * sizeof(T));
                done += in_block;
            }
        }
        return count;
    }

    // Every item's call; prepare(state) sees the result's state before the first is submitted.
    template <bool Star, class F, class Range, class Prepare = detail::NothingToPrepare>
    auto submit_all(F function, Range&& items, const MapOptions& options, const char* label,
                    Prepare&& prepare = {}) {
        using Item = std::ranges::range_reference_t<Range>;
        using C = Call<F, Item, Star>;
        if constexpr (!C::valid) {
            return detail::Refused{};
        } else if constexpr (std::is_void_v<detail::call_result_t<F, typename C::Carried>>) {
            static_assert(!std::is_void_v<detail::call_result_t<F, typename C::Carried>>,
                          "crew: map and starmap collect results, and this function returns "
                          "void; use apply_async for each item, or return a value.");
            return detail::Refused{};
        } else {
            using R = detail::call_result_t<F, typename C::Carried>;
            // Like Python, map needs the length: an input without one is read into a vector.
            if constexpr (!std::ranges::sized_range<Range>) {
                std::vector<std::ranges::range_value_t<Range>> all;
                for (auto&& item : items) all.push_back(std::forward<decltype(item)>(item));
                return submit_all<Star>(std::move(function), std::move(all), options, label,
                                        std::forward<Prepare>(prepare));
            } else {
                const auto count = static_cast<std::size_t>(std::ranges::size(items));
                auto state = std::make_shared<detail::FutureState<std::vector<R>>>();
                prepare(*state);
                auto progress = detail::progress_for(options, items, label);
                auto sink = std::make_shared<detail::MapSink<R>>(state, count, std::move(progress));
                const auto limits = detail::map_chunk_limits<R>(
                    count, processes(), options.chunksize, options.progress);
                auto next = std::ranges::begin(items);
                auto end = std::ranges::end(items);
                const auto code = chunk_code<F, C, decltype(next)>(function);
                detail::PoolCore::Batch batch(*core_);
                for (std::uint64_t first = 0; first < count;) {
                    first +=
                        submit_chunk<F, C>(function, code, next, end, first, limits, sink, batch);
                }
                batch.submit();
                sink->size_results();
                return state;
            }
        }
    }

    friend class ProcessPoolExecutor;

    template <bool Star, class F, class Range>
    auto lazy(F function, Range&& items, const MapOptions& options, bool ordered,
              const char* label) {
        using Item = std::ranges::range_reference_t<Range>;
        using C = Call<F, Item, Star>;
        if constexpr (!C::valid) {
            return detail::Refused{};
        } else if constexpr (std::is_void_v<detail::call_result_t<F, typename C::Carried>>) {
            static_assert(!std::is_void_v<detail::call_result_t<F, typename C::Carried>>,
                          "crew: imap yields results, and this function returns void; use "
                          "apply_async for each item, or return a value.");
            return detail::Refused{};
        } else {
            using R = detail::call_result_t<F, typename C::Carried>;
            auto sink = std::make_shared<detail::ImapSink<R>>();
            // The input, owned if it was handed over, with where reading has got to.
            struct Input {
                std::views::all_t<Range> view;
                std::ranges::iterator_t<std::views::all_t<Range>> next;
                explicit Input(Range&& items)
                    : view(std::views::all(std::forward<Range>(items))),
                      next(std::ranges::begin(view)) {}
            };
            auto progress = detail::progress_for(options, items, label);
            auto input = std::make_shared<Input>(std::forward<Range>(items));
            const auto code = chunk_code<F, C, decltype(input->next)>(function);
            typename ImapResults<R>::Feeder feeder =
                [this, function = std::move(function), code, input, sink](
                    std::uint64_t first,
                    detail::ChunkLimits limits) -> std::optional<std::uint32_t> {
                detail::PoolCore::Batch batch(*core_);
                std::uint32_t count =
                    submit_chunk<F, C>(function, code, input->next, std::ranges::end(input->view),
                                       first, limits, sink, batch);
                batch.submit();
                if (count == 0) return std::nullopt;
                return count;
            };
            const detail::Deadline deadline = detail::deadline_for(options.timeout);
            return ImapResults<R>(
                sink, std::move(feeder), ordered, options.chunksize,
                detail::imap_chunks_ahead_per_worker * static_cast<std::size_t>(processes()),
                deadline, std::move(progress));
        }
    }

    // Submits, then waits for the result doing the broker's work for a while (a quick result
    // comes back without waking a thread), then sleeps; moves the result out.
    template <class Submit>
    auto wait_for(Submit&& submit, Timeout timeout) {
        using State = decltype(submit());
        if constexpr (detail::refused<State>) {
            return State{};
        } else {
            const detail::Deadline deadline = detail::deadline_for(timeout);
            State state;
            {
                detail::PoolCore::Driver driver(*core_);
                state = submit();
                driver.drive_until([&] { return state->is_done(); }, deadline);
            }
            if (deadline && !state->wait(*deadline - detail::Clock::now())) {
                throw TimeoutError("crew: the results were not ready within the timeout");
            }
            return state->take_value();
        }
    }

    // map_async and starmap_async.
    template <bool Star, class Function, class Range, class... Callbacks>
    auto async_all(Function&& function, Range&& items, std::size_t chunksize,
                   Callbacks&&... callbacks) {
        return as_async_result(
            submit_all<Star>(std::decay_t<Function>(std::forward<Function>(function)),
                             std::forward<Range>(items), MapOptions{.chunksize = chunksize}, "",
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

    // One call as one task; its result goes to the state returned, which prepare(state) sees
    // before the task is submitted.
    template <class Prepare, class Function, class... Arguments>
    auto submit_call(Prepare&& prepare, Function&& function, Arguments&&... arguments) {
        using F = std::decay_t<Function>;
        if constexpr (!detail::check_call<F, Arguments...>()) {
            return detail::Refused{};
        } else {
            using Carried = detail::carried_arguments_t<F, Arguments...>;
            using R = detail::call_result_t<F, Carried>;
            auto state = std::make_shared<detail::SingleSink<R>>(core_);
            prepare(static_cast<detail::FutureState<R>&>(*state));
            detail::Writer task;
            const F callable(std::forward<Function>(function));
            std::size_t count_at =
                detail::begin_task(task, detail::chunk_code<F, Carried>(callable), callable);
            detail::encode_arguments_as<Carried>(task, std::forward<Arguments>(arguments)...);
            detail::finish_task(task, count_at, 1);
            core_->submit(task, 0, 1, state);
            return std::shared_ptr<detail::FutureState<R>>(std::move(state));
        }
    }

    std::shared_ptr<detail::PoolCore> core_;
};

}  // namespace crew
