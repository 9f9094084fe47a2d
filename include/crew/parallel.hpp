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
//         for (double r : parallel.generator_unordered(crew::delayed(root), squares)) ...
//     }
//
// A Parallel runs calls on n_jobs workers and returns their results in input order, as a
// std::vector, or lazily (generator, generator_unordered: joblib's return_as), with at most
// pre_dispatch batches in flight. joblib's n_jobs: none is 1, -1 every core, -2 all but one,
// n < -1 cpu_count + 1 + n; 0 throws crew::Error. With n_jobs 1 (or the serial backend) the calls
// run one by one in the calling thread, with no worker, which is what a debugger wants. The
// processes backend (the default) runs them in a crew pool, as Pool::map does, with the same
// chunking and the same rules for what may cross to a worker (compile-time errors name what may
// not); the threads backend runs them on a crew::ThreadPoolExecutor, a call at a time; a backend
// registered by name (crew/parallel_backend.hpp) gets the same batches as bytes. The same code
// runs on every backend. Inside a pool worker the processes backend runs serially, so that
// nested Parallels never multiply processes (joblib's rule). crew::parallel_config sets defaults
// for the Parallels the current thread makes.
//
// The calls of one Parallel call are calls of one function (joblib allows several; crew sends the
// function once for a chunk of calls): a delayed call of another function throws crew::Error.
// A function object with state must then be comparable (operator==) to be delayed in joblib's
// form; the shortcut takes any. The shortcut parallel(crew::delayed(f), xs, ys, ...) calls
// f(x, y, ...) for the items side by side, up to the end of the shortest range.
//
// Large arguments (joblib's max_nbytes): a function that reads an argument as std::span<const T>
// is given it in place. delayed(f)(data, i) keeps a view of an lvalue data, which the caller
// keeps until the call returns; on the processes backend data of more than max_nbytes is copied
// once a call into shared memory that every worker maps, however many calls take it (a
// crew::Array is not copied at all), and the memory goes when the call ends.
//
// Errors, as joblib's: the first call to fail stops the dispatch, the calls not begun are
// dropped, and the Parallel call (or the generator, where it is read) throws at once what the
// call threw, its own type where crew can rebuild it (crew/remote_exception.hpp), its what()
// opened by "crew::Parallel input N". A crashed worker fails its call with crew::WorkerDied, and
// is replaced; options.timeout fails a call running longer with crew::TimeoutError (a worker
// process is killed and replaced; a thread cannot be, and runs on). The workers stay for the next
// calls. Workers are started at the first call and kept for the next calls of the same Parallel,
// which leaves them warm, when it is destroyed, for the next Parallel of as many workers (loky's
// reusable executor): they end after idle_worker_timeout (300 s) without one, or at exit. One
// Parallel, and its generators, are used by one thread at a time, and a generator is read before
// its Parallel goes.
#pragma once

#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
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

#include "crew/detail/callable.hpp"
#include "crew/detail/interrupt.hpp"
#include "crew/detail/progress.hpp"
#include "crew/detail/pull_iterator.hpp"
#include "crew/detail/result_sinks.hpp"
#include "crew/detail/submitter.hpp"
#include "crew/detail/task.hpp"
#include "crew/detail/zip.hpp"
#include "crew/error.hpp"
#include "crew/executor.hpp"
#include "crew/map_options.hpp"
#include "crew/remote_exception.hpp"
#include "crew/timeout.hpp"

namespace crew {

// Where a Parallel runs its calls: joblib's "loky" (processes), "threading" (threads) and
// "sequential" (serial), or a backend registered by name (crew/parallel_backend.hpp). Either
// name serves: .backend = crew::ParallelBackend::threads, or .backend = "threading".
class ParallelBackend {
  public:
    static const ParallelBackend processes;
    static const ParallelBackend threads;
    static const ParallelBackend serial;

    // A built-in backend, by crew's name or joblib's, or a registered one. Implicit, as joblib
    // takes backend="loky"; throws crew::Error for an empty name.
    ParallelBackend(std::string name);
    ParallelBackend(const char* name) : ParallelBackend(std::string(name)) {}

    // crew's name for a built-in backend ("loky" is "processes"), else the registered name.
    const std::string& name() const noexcept { return name_; }
    // processes, threads or serial.
    bool built_in() const noexcept;
    bool operator==(const ParallelBackend&) const = default;

  private:
    std::string name_;
};
inline const ParallelBackend ParallelBackend::processes{"processes"};
inline const ParallelBackend ParallelBackend::threads{"threads"};
inline const ParallelBackend ParallelBackend::serial{"serial"};

// joblib's options, by its names, in joblib's order. A member left out takes
// crew::parallel_config's value, or the default its comment gives.
struct ParallelOptions {
    std::optional<int> n_jobs = {};  // 1; -1: every core; -2: all but one; 0 is an error
    std::optional<ParallelBackend> backend = {};  // processes; a name for a registered one
    // Calls sent to a worker at a time: automatic (docs/parallel.md, "Batches").
    std::optional<std::size_t> batch_size = {};
    std::optional<std::size_t> max_batch_size = {};  // an automatic batch's most calls: 65,536
    // Batches in flight (a generator's, map_reduce's, a list's until a call's cost is known):
    // 2 * n_jobs.
    std::optional<std::size_t> pre_dispatch = {};
    Timeout timeout = {};               // for each call: a longer one fails with TimeoutError
    std::optional<int> verbose = {};    // 0; above, joblib's progress lines
    std::optional<bool> progress = {};  // false; the pools' progress bar on stderr
    // A std::span<const T> argument of more bytes travels once a call through shared memory, read
    // in place by the workers (docs/parallel.md, "Large arguments"): 1 MiB.
    std::optional<std::size_t> max_nbytes = {};
    // How long the workers of an ended Parallel wait for the next Parallel of as many workers
    // (and the same timeout), which takes them over warm: 300 s; zero ends them with it.
    Timeout idle_worker_timeout = {};
};

// joblib's parallel_config: until it is destroyed, the options it was given are the defaults of
// the Parallels made by this thread. Scopes nest; options given to a Parallel win.
class [[nodiscard]] ParallelConfig {
  public:
    explicit ParallelConfig(const ParallelOptions& options);
    ~ParallelConfig();
    ParallelConfig(const ParallelConfig&) = delete;
    ParallelConfig& operator=(const ParallelConfig&) = delete;

  private:
    ParallelOptions outer_;
};

inline ParallelConfig parallel_config(const ParallelOptions& options) {
    return ParallelConfig(options);
}

// function(arguments...), to be run by a Parallel: what crew::delayed(function)(arguments...)
// makes. The arguments are kept as values, as they will travel, but for one that the function
// reads as a std::span<const T> and the caller keeps: that one is kept as a view, and the caller
// keeps it until the Parallel call has returned (joblib's delayed holds a reference too).
template <class F, class... Arguments>
struct DelayedCall {
    using ArgumentTuple = std::tuple<Arguments...>;
    F function;
    ArgumentTuple arguments;
};

namespace detail {

// How delayed(f)(arguments...) keeps its argument I: as a std::span<const T> view when f reads it
// as one and the caller keeps it (an lvalue), so that one large vector given to many calls is
// neither copied for each of them nor, on the processes backend, sent more than once; else as a
// value of its own.
template <class F, std::size_t I, class Argument>
struct delayed_argument {
    using type = std::decay_t<Argument>;
};
template <function_pointer F, std::size_t I, class Argument>
requires(std::is_lvalue_reference_v<Argument> &&
         !has_shared_region<std::remove_cvref_t<Argument>> &&
         span_parameter<std::remove_cvref_t<
             std::tuple_element_t<I, typename function_pointer_traits<F>::parameters>>>::
             value) struct delayed_argument<F, I, Argument> {
    using type = std::remove_cvref_t<
        std::tuple_element_t<I, typename function_pointer_traits<F>::parameters>>;
};
template <class F, std::size_t I, class Argument>
using delayed_argument_t = typename delayed_argument<F, I, Argument>::type;

}  // namespace detail

template <class F>
class Delayed {
  public:
    explicit Delayed(F function) : function_(std::move(function)) {}
    template <class... Arguments>
    auto operator()(Arguments&&... arguments) const {
        return [&]<std::size_t... I>(std::index_sequence<I...>) {
            using Call = DelayedCall<F, detail::delayed_argument_t<F, I, Arguments>...>;
            return Call{function_,
                        typename Call::ArgumentTuple(std::forward<Arguments>(arguments)...)};
        }
        (std::index_sequence_for<Arguments...>{});
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

// What crew::estimate (crew/estimate.hpp) measured and concludes.
struct Estimate {
    std::uint64_t items = 0;   // calls the whole run makes
    std::uint64_t sample = 0;  // calls timed
    int workers = 1;
    ParallelBackend backend = ParallelBackend::serial;
    std::chrono::nanoseconds per_call{0};            // what one call costs
    std::chrono::nanoseconds overhead_per_batch{0};  // a batch's round trip to a worker
    std::chrono::nanoseconds overhead_per_call{0};   // bringing a result home, beyond the call
    std::chrono::nanoseconds serial{0};              // every call, one after another
    std::chrono::nanoseconds parallel{0};  // every call, on the workers, as crew batches them

    // Whether the parallel run is expected to take at most 90% of the serial.
    bool worth_it() const noexcept;
    // The verdict and why, in a sentence: "not worth it: each call takes 40 ns, the overhead per
    // batch is 2 us; use a batch of at least 5,000 or run serially".
    std::string reason() const;
};

namespace detail {

// The trivial call whose round trip estimate times.
inline int estimate_probe(int x) {
    return x;
}

// Where a generator's results come from, on each backend.
template <class R>
class GeneratorSource {
  public:
    virtual ~GeneratorSource() = default;
    // The next result; nothing at the end. Throws the error of a failed call.
    virtual std::optional<R> next() = 0;
};

}  // namespace detail

// The lazy results of Parallel::generator and generator_unordered: an input range, read once.
// A failed call's error is thrown where the iterator reaches it (begin() or ++it), and ends the
// range. Destroying it before the end drops the calls not begun.
template <class R>
class [[nodiscard]] ParallelGenerator {
  public:
    explicit ParallelGenerator(std::unique_ptr<detail::GeneratorSource<R>> source)
        : source_(std::move(source)) {}

    using iterator = detail::PullIterator<ParallelGenerator, R&>;
    // Starts the iteration: the first result is waited for here.
    iterator begin() {
        advance();
        return iterator(this);
    }
    std::default_sentinel_t end() const { return {}; }

  private:
    friend iterator;
    R& current() { return *current_; }
    bool at_end() const { return !current_; }
    void advance() {
        current_.reset();
        if (!source_) return;
        try {
            current_ = source_->next();
        } catch (...) {
            source_.reset();
            throw;
        }
        if (!current_) source_.reset();
    }

    std::unique_ptr<detail::GeneratorSource<R>> source_;  // null once ended
    std::optional<R> current_;
};

namespace detail {

template <class T>
inline constexpr bool is_delayed_call = false;
template <class F, class... Arguments>
inline constexpr bool is_delayed_call<DelayedCall<F, Arguments...>> = true;

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

[[noreturn]] void throw_another_function();

// The options a Parallel runs with: the ones it was given, else the thread's parallel_config,
// else joblib's defaults; n_jobs resolved against this machine's cores. Throws crew::Error for
// n_jobs 0 and a negative timeout.
struct ParallelSettings {
    int n_jobs = 1;
    ParallelBackend backend = ParallelBackend::processes;
    // A registered backend's, made for this Parallel; null for the built-in ones.
    std::shared_ptr<TaskTransport> registered = {};
    std::size_t batch_size = 0;  // automatic
    std::uint32_t max_batch_size = largest_chunk;
    std::size_t pre_dispatch = 2;
    Timeout timeout = {};
    int verbose = 0;
    bool progress = false;
    std::size_t max_nbytes = default_max_nbytes;
    std::chrono::nanoseconds idle_worker_timeout = std::chrono::seconds(300);
};
ParallelSettings resolve_parallel_options(const ParallelOptions& given);

// crew::estimate's times and verdict from what it measured (and its line on stderr, when
// settings ask for verbose output).
Estimate make_estimate(std::uint64_t items, std::uint64_t sample,
                       std::chrono::nanoseconds sample_time,
                       std::optional<std::chrono::nanoseconds> busy_per_call,
                       std::chrono::nanoseconds overhead_per_batch,
                       const ParallelSettings& settings);

// joblib's lines, "[Parallel(n_jobs=2)]: Done   4 tasks      | elapsed:    0.8s", or the bar, or
// nothing, as settings ask; total: the calls, when known.
std::shared_ptr<ProgressReport> parallel_report(const ParallelSettings& settings,
                                                std::optional<std::uint64_t> total);

template <bool Star, class F, class Item>
decltype(auto) call_item(const F& function, Item&& item) {
    if constexpr (Star) {
        return std::apply(function, std::forward<Item>(item));
    } else {
        return std::invoke(function, std::forward<Item>(item));
    }
}

[[noreturn]] void throw_call_past_timeout(std::uint64_t index, std::chrono::nanoseconds timeout,
                                          const char* what_happens);

// The calls made in the calling thread, one at a time as results are asked for.
template <bool Star, class R, class F, class View>
class SerialSource final : public GeneratorSource<R> {
  public:
    SerialSource(F function, View view, const ParallelSettings& settings,
                 std::shared_ptr<ProgressReport> report, const char* label)
        : function_(std::move(function)),
          view_(std::move(view)),
          next_(std::ranges::begin(view_)),
          timeout_(settings.timeout),
          report_(std::move(report)),
          label_(label) {}

    std::optional<R> next() override {
        if (next_ == std::ranges::end(view_)) {
            if (report_) report_->finish();
            return std::nullopt;
        }
        const std::uint64_t index = index_++;
        const auto started = std::chrono::steady_clock::now();
        std::optional<R> result;
        try {
            result.emplace(call_item<Star>(function_, *next_));
        } catch (...) {
            std::rethrow_exception(
                with_context(std::current_exception(), input_context(label_, index)));
        }
        ++next_;
        if (timeout_ && std::chrono::steady_clock::now() - started > *timeout_) {
            throw_call_past_timeout(index, *timeout_, "the calling thread ran it to its end");
        }
        if (report_) report_->advance(1);
        return result;
    }

  private:
    F function_;
    View view_;
    std::ranges::iterator_t<View> next_;
    Timeout timeout_;
    std::uint64_t index_ = 0;
    std::shared_ptr<ProgressReport> report_;
    const char* label_;
};

// The calls on a ThreadPoolExecutor, each a task of its own with a window of window calls in
// flight, the results taken in input order or as they come.
template <bool Star, class R, class F, class View>
class ThreadSource final : public GeneratorSource<R> {
    using Item = std::remove_cvref_t<std::ranges::range_reference_t<View>>;

    // What the tasks share with the source; they may outlive it (a call running on when the
    // source is dropped after another's failure).
    struct Shared {
        Shared(F function, const char* label) : function(std::move(function)), label(label) {}
        const F function;
        const char* label;
        std::mutex mutex;
        std::condition_variable changed;
        std::map<std::uint64_t, R> arrived;
        std::map<std::uint64_t, std::chrono::steady_clock::time_point> running;  // when timed
        std::exception_ptr failure;
        std::atomic<bool> stopped{false};  // the calls not begun are skipped
    };

  public:
    ThreadSource(ThreadPoolExecutor& executor, F function, View view, bool ordered,
                 std::size_t window, const ParallelSettings& settings,
                 std::shared_ptr<ProgressReport> report, const char* label)
        : executor_(executor),
          shared_(std::make_shared<Shared>(std::move(function), label)),
          view_(std::move(view)),
          next_(std::ranges::begin(view_)),
          ordered_(ordered),
          window_(std::max<std::size_t>(window, 1)),
          timeout_(settings.timeout),
          report_(std::move(report)) {}
    ~ThreadSource() override { shared_->stopped = true; }
    ThreadSource(const ThreadSource&) = delete;
    ThreadSource& operator=(const ThreadSource&) = delete;

    std::optional<R> next() override {
        fill_window();
        if (yielded_ == submitted_) {
            if (report_) report_->finish();
            return std::nullopt;
        }
        std::unique_lock lock(shared_->mutex);
        typename std::map<std::uint64_t, R>::iterator found;
        auto there = [&] {
            if (shared_->failure) return true;
            found = ordered_ ? shared_->arrived.find(yielded_) : shared_->arrived.begin();
            return found != shared_->arrived.end();
        };
        while (!wait_interruptibly(shared_->changed, lock, overdue_at(), there)) {
            for (const auto& [index, started] : shared_->running) {
                if (std::chrono::steady_clock::now() - started > *timeout_) {
                    shared_->stopped = true;
                    throw_call_past_timeout(index, *timeout_,
                                            "its thread cannot be stopped and runs on");
                }
            }
        }
        if (shared_->failure) std::rethrow_exception(shared_->failure);
        std::optional<R> result(std::move(found->second));
        shared_->arrived.erase(found);
        ++yielded_;
        if (report_) report_->advance(1);
        return result;
    }

  private:
    // When the earliest running call passes the timeout: then the wait looks again.
    Deadline overdue_at() const {
        if (!timeout_ || shared_->running.empty())
            return timeout_ ? deadline_for(timeout_) : Deadline{};
        auto earliest = shared_->running.begin()->second;
        for (const auto& entry : shared_->running) earliest = std::min(earliest, entry.second);
        return earliest + *timeout_ + std::chrono::milliseconds(1);
    }

    void fill_window() {
        for (; next_ != std::ranges::end(view_) && submitted_ - yielded_ < window_; ++next_) {
            const std::uint64_t index = submitted_++;
            const bool timed = timeout_.has_value();
            executor_.submit([shared = shared_, index, timed, item = Item(*next_)]() mutable {
                run_call(*shared, index, timed, item);
            });
        }
    }

    static void run_call(Shared& shared, std::uint64_t index, bool timed, Item& item) {
        if (shared.stopped.load(std::memory_order_relaxed)) return;
        if (timed) {
            std::lock_guard lock(shared.mutex);
            shared.running.emplace(index, std::chrono::steady_clock::now());
        }
        std::optional<R> result;
        std::exception_ptr error;
        try {
            result.emplace(call_item<Star>(shared.function, std::move(item)));
        } catch (...) {
            error = with_context(std::current_exception(), input_context(shared.label, index));
        }
        {
            std::lock_guard lock(shared.mutex);
            if (timed) shared.running.erase(index);
            if (result) {
                shared.arrived.emplace(index, std::move(*result));
            } else if (!shared.failure) {
                shared.failure = std::move(error);
                shared.stopped = true;
            }
        }
        shared.changed.notify_all();
    }

    ThreadPoolExecutor& executor_;
    std::shared_ptr<Shared> shared_;
    View view_;
    std::ranges::iterator_t<View> next_;
    bool ordered_;
    std::size_t window_;
    Timeout timeout_;
    std::uint64_t submitted_ = 0;
    std::uint64_t yielded_ = 0;
    std::shared_ptr<ProgressReport> report_;
};

// The calls on the pool's workers, as imap and imap_unordered make them, with the large
// arguments they share (sent as the calls are).
template <class R>
class PoolSource final : public GeneratorSource<R> {
  public:
    PoolSource(ImapResults<R> results, std::unique_ptr<LargeArguments> large)
        : large_(std::move(large)), results_(std::move(results)) {}
    std::optional<R> next() override {
        const LargeArguments::Scope in_force(*large_);
        if (!at_) {
            at_.emplace(results_.begin());
        } else {
            ++*at_;
        }
        if (*at_ == std::default_sentinel) return std::nullopt;
        return std::move(**at_);
    }

  private:
    std::unique_ptr<LargeArguments> large_;  // goes after the calls that may send them
    ImapResults<R> results_;
    std::optional<typename ImapResults<R>::iterator> at_;
};

template <class R>
std::vector<R> drain(GeneratorSource<R>& source) {
    std::vector<R> results;
    while (std::optional<R> result = source.next()) results.push_back(std::move(*result));
    return results;
}

}  // namespace detail

class Parallel {
  public:
    Parallel() : Parallel(ParallelOptions{}) {}
    explicit Parallel(const ParallelOptions& options);
    ~Parallel();
    Parallel(const Parallel&) = delete;
    Parallel& operator=(const Parallel&) = delete;

    // Ends now the workers that ended Parallels left warm (else they leave after their
    // idle_worker_timeout, or at exit), waiting for them; loky's executor.shutdown().
    static void end_idle_workers();

    // The workers it runs calls on: n_jobs as resolved.
    int n_jobs() const noexcept { return settings_.n_jobs; }
    // The backend it runs calls on: serial with one job, or inside a pool worker.
    const ParallelBackend& backend() const noexcept { return settings_.backend; }

    // joblib's form: the results of a range of delayed calls, in input order.
    template <std::ranges::input_range Calls>
    requires detail::is_delayed_call<std::remove_cvref_t<std::ranges::range_reference_t<Calls>>>
    auto operator()(Calls&& calls) { return call<ReturnAs::list>(std::forward<Calls>(calls)); }

    // The shortcut: function(item, ...) for the items of the ranges side by side.
    template <class F, std::ranges::input_range First, std::ranges::input_range... Rest>
    auto operator()(const Delayed<F>& function, First&& first, Rest&&... rest) {
        return call<ReturnAs::list>(function, std::forward<First>(first),
                                    std::forward<Rest>(rest)...);
    }

    // joblib's return_as="generator": the results in input order, lazily; either form.
    template <class... Arguments>
    auto generator(Arguments&&... arguments) {
        return call<ReturnAs::generator>(std::forward<Arguments>(arguments)...);
    }
    // joblib's return_as="generator_unordered": the results as they come.
    template <class... Arguments>
    auto generator_unordered(Arguments&&... arguments) {
        return call<ReturnAs::generator_unordered>(std::forward<Arguments>(arguments)...);
    }

    // crew::map_reduce (crew/map_reduce.hpp) on this Parallel's backend and workers.
    template <class Function, class Reduce, std::ranges::input_range Range, class T>
    auto map_reduce(Function&& function, Reduce&& reduce, Range&& items, T init) {
        using F = std::decay_t<Function>;
        using Call = detail::MapCall<F, std::ranges::range_reference_t<Range>, false>;
        if constexpr (!Call::valid) {
            return detail::Refused{};
        } else {
            using R = detail::call_result_t<F, typename Call::Carried>;
            using G = std::decay_t<Reduce>;
            if constexpr (!std::is_invocable_r_v<R, G&, R, R> ||
                          !std::is_invocable_r_v<T, G&, T, R>) {
                static_assert(
                    std::is_invocable_r_v<R, G&, R, R> && std::is_invocable_r_v<T, G&, T, R>,
                    "crew::map_reduce: reduce(a, b) must take two results of the "
                    "function, and the initial value and a result, and return their "
                    "reduction");
                return detail::Refused{};
            } else if constexpr (!detail::check_call<G, R, R>()) {
                return detail::Refused{};
            } else {
                G reducer(std::forward<Reduce>(reduce));
                std::optional<std::uint64_t> total;
                if constexpr (std::ranges::sized_range<Range>) total = std::ranges::size(items);
                auto report = detail::parallel_report(settings_, total);
                std::optional<R> reduced;
                if (sends_batches()) {
                    const detail::MapPolicy policy{.report = std::move(report),
                                                   .stop_at_first_failure = true,
                                                   .chunks_ahead = settings_.pre_dispatch,
                                                   .most_calls_a_chunk = settings_.max_batch_size};
                    detail::LargeArguments large(settings_.max_nbytes, carriage());
                    const detail::LargeArguments::Scope in_force(large);
                    reduced = submitter().map_reduce<false>(F(std::forward<Function>(function)),
                                                            reducer, std::forward<Range>(items),
                                                            map_options(), "map_reduce", policy);
                } else {
                    // Threads share the caller's memory: the results are reduced here as they
                    // come, a window of calls at a time.
                    auto source = local_source<false, R>(
                        F(std::forward<Function>(function)),
                        std::views::all(std::forward<Range>(items)), false, settings_.pre_dispatch,
                        std::move(report), "map_reduce");
                    while (std::optional<R> result = source->next()) {
                        reduced =
                            reduced
                                ? R(std::invoke(reducer, std::move(*reduced), std::move(*result)))
                                : std::move(*result);
                    }
                }
                if (!reduced) return init;
                return T(std::invoke(reducer, std::move(init), std::move(*reduced)));
            }
        }
    }

    // crew::estimate (crew/estimate.hpp) on this Parallel's backend and workers.
    template <class Function, std::ranges::forward_range Range>
    auto estimate(Function&& function, Range&& items) {
        using F = std::decay_t<Function>;
        using Call = detail::MapCall<F, std::ranges::range_reference_t<Range>, false>;
        if constexpr (!Call::valid) {
            return detail::Refused{};
        } else {
            const F f(std::forward<Function>(function));
            const auto count = static_cast<std::uint64_t>(std::ranges::distance(items));
            using Clock = std::chrono::steady_clock;
            // First, as it starts the workers, which the sample's time must not include.
            const std::chrono::nanoseconds round_trip = batch_round_trip();
            // A growing prefix, in one batch, until it runs long enough to be timed well.
            std::uint64_t sample = std::min<std::uint64_t>(1, count);
            std::chrono::nanoseconds sample_time{0};
            std::optional<std::chrono::nanoseconds> busy_per_call;
            while (sample != 0) {
                const auto started = Clock::now();
                busy_per_call = run_one_batch(
                    f, items | std::views::take(static_cast<std::ptrdiff_t>(sample)), sample);
                sample_time = Clock::now() - started;
                if (sample_time >= estimate_sample_time || sample == count ||
                    sample >= detail::largest_chunk) {
                    break;
                }
                sample = std::min<std::uint64_t>({sample * 2, count, detail::largest_chunk});
            }
            return detail::make_estimate(count, sample, sample_time, busy_per_call, round_trip,
                                         settings_);
        }
    }

  private:
    enum class ReturnAs { list, generator, generator_unordered };

    static constexpr std::chrono::milliseconds estimate_sample_time{20};

    // The calls of items as one batch on the backend, their results dropped; on processes,
    // returns what a call kept its worker busy for.
    template <class F, class View>
    std::optional<std::chrono::nanoseconds> run_one_batch(const F& function, View&& items,
                                                          std::uint64_t count) {
        if (sends_batches()) {
            detail::LargeArguments large(settings_.max_nbytes, carriage());
            const detail::LargeArguments::Scope in_force(large);
            detail::CallCosts seen;
            (void)submitter().map_adaptively<false>(
                function, std::forward<View>(items),
                MapOptions{.chunksize = static_cast<std::size_t>(count), .label = "estimate"},
                "estimate", detail::MapPolicy{}, seen);
            return seen.latest();
        }
        if (settings_.backend == ParallelBackend::threads) {
            threads()
                .submit([&] {
                    for (auto&& item : items) (void)std::invoke(function, item);
                })
                .result();
        } else {
            for (auto&& item : items) (void)std::invoke(function, item);
        }
        return std::nullopt;
    }

    // The median round trip of a batch of one trivial call; nothing on the serial backend.
    std::chrono::nanoseconds batch_round_trip();

    template <ReturnAs As, std::ranges::input_range Calls>
    requires detail::is_delayed_call<std::remove_cvref_t<std::ranges::range_reference_t<Calls>>>
    auto call(Calls&& calls) {
        using Call = std::remove_cvref_t<std::ranges::range_reference_t<Calls>>;
        if constexpr (!std::ranges::forward_range<Calls>) {
            // Read into a vector first, to learn the function before the calls are sent.
            std::vector<Call> all;
            for (auto&& one : calls) all.push_back(std::forward<decltype(one)>(one));
            return call<As>(std::move(all));
        } else {
            return call_forward<As>(static_cast<Call*>(nullptr), std::forward<Calls>(calls));
        }
    }

    template <ReturnAs As, class F, std::ranges::input_range First,
              std::ranges::input_range... Rest>
    auto call(const Delayed<F>& function, First&& first, Rest&&... rest) {
        if constexpr (sizeof...(Rest) == 0) {
            return dispatch<As, false>(function.function(),
                                       std::views::all(std::forward<First>(first)));
        } else {
            return dispatch<As, true>(
                function.function(),
                detail::zip(std::forward<First>(first), std::forward<Rest>(rest)...));
        }
    }

    template <ReturnAs As, class F, class... Arguments, class Calls>
    auto call_forward(DelayedCall<F, Arguments...>*, Calls&& calls) {
        using Checked = detail::MapCall<F, std::tuple<Arguments...>, true>;
        if constexpr (!Checked::valid) {
            return detail::Refused{};
        } else if constexpr (!detail::comparable_function<F>) {
            static_assert(detail::comparable_function<F>,
                          "crew::Parallel: delayed calls of a function object with state must be "
                          "told apart: give it an operator==, or use the shortcut "
                          "parallel(crew::delayed(f), items)");
            return detail::Refused{};
        } else {
            using R = detail::call_result_t<F, typename Checked::Carried>;
            auto first = std::ranges::begin(calls);
            if (first == std::ranges::end(calls)) {
                if constexpr (As == ReturnAs::list) {
                    return std::vector<R>{};
                } else {
                    return ParallelGenerator<R>(nullptr);
                }
            } else {
                F function = (*first).function;
                auto arguments =
                    std::views::all(std::forward<Calls>(calls)) |
                    std::views::transform([function](auto&& one) -> std::tuple<Arguments...> {
                        if (!detail::same_function(function, one.function)) {
                            detail::throw_another_function();
                        }
                        return std::forward<decltype(one)>(one).arguments;
                    });
                return dispatch<As, true>(std::move(function), std::move(arguments));
            }
        }
    }

    // Every item's call on the backend, the results as As says; Star: each item is a tuple of
    // its call's arguments.
    template <ReturnAs As, bool Star, class F, class View>
    auto dispatch(F function, View&& items) {
        using Call = detail::MapCall<F, std::ranges::range_reference_t<View>, Star>;
        if constexpr (!Call::valid) {
            return detail::Refused{};
        } else {
            using R = detail::call_result_t<F, typename Call::Carried>;
            if constexpr (std::is_void_v<R>) {
                static_assert(!std::is_void_v<R>,
                              "crew::Parallel collects results, and this function returns void; "
                              "return a value");
                return detail::Refused{};
            } else {
                std::optional<std::uint64_t> total;
                if constexpr (std::ranges::sized_range<View>) total = std::ranges::size(items);
                const detail::MapPolicy policy{.report = detail::parallel_report(settings_, total),
                                               .stop_at_first_failure = true,
                                               .chunks_ahead = settings_.pre_dispatch,
                                               .most_calls_a_chunk = settings_.max_batch_size};
                if constexpr (As == ReturnAs::list) {
                    if (sends_batches()) {
                        detail::LargeArguments large(settings_.max_nbytes, carriage());
                        const detail::LargeArguments::Scope in_force(large);
                        return submitter().map_adaptively<Star>(
                            std::move(function), std::forward<View>(items), map_options(),
                            "Parallel", policy, call_costs_);
                    }
                    if (settings_.backend == ParallelBackend::serial && !policy.report &&
                        !settings_.timeout) {
                        return run_here<Star, R>(function, items);
                    }
                    auto source =
                        local_source<Star, R>(std::move(function), std::forward<View>(items), true,
                                              SIZE_MAX, policy.report);
                    return detail::drain(*source);
                } else {
                    constexpr bool ordered = As == ReturnAs::generator;
                    if (sends_batches()) {
                        auto large = std::make_unique<detail::LargeArguments>(settings_.max_nbytes,
                                                                              carriage());
                        const detail::LargeArguments::Scope in_force(*large);
                        return ParallelGenerator<R>(std::make_unique<detail::PoolSource<R>>(
                            submitter().lazy<Star>(std::move(function), std::forward<View>(items),
                                                   map_options(), ordered, "Parallel", policy),
                            std::move(large)));
                    }
                    return ParallelGenerator<R>(
                        local_source<Star, R>(std::move(function), std::forward<View>(items),
                                              ordered, settings_.pre_dispatch, policy.report));
                }
            }
        }
    }

    // The serial list with nothing to report or time: a plain loop (SerialSource does the
    // same a call at a time).
    template <bool Star, class R, class F, class View>
    static std::vector<R> run_here(const F& function, View& items) {
        std::vector<R> results;
        if constexpr (std::ranges::sized_range<View>) {
            results.reserve(static_cast<std::size_t>(std::ranges::size(items)));
        }
        try {
            for (auto&& item : items) {
                results.push_back(R(detail::call_item<Star>(function, item)));
            }
        } catch (...) {
            std::rethrow_exception(detail::with_context(
                std::current_exception(), detail::input_context("Parallel", results.size())));
        }
        return results;
    }

    template <bool Star, class R, class F, class View>
    std::unique_ptr<detail::GeneratorSource<R>> local_source(
        F function, View&& items, bool ordered, std::size_t window,
        std::shared_ptr<detail::ProgressReport> report, const char* label = "Parallel") {
        using Owned = std::remove_cvref_t<View>;
        if (settings_.backend == ParallelBackend::serial) {
            return std::make_unique<detail::SerialSource<Star, R, F, Owned>>(
                std::move(function), Owned(std::forward<View>(items)), settings_, std::move(report),
                label);
        }
        return std::make_unique<detail::ThreadSource<Star, R, F, Owned>>(
            threads(), std::move(function), Owned(std::forward<View>(items)), ordered, window,
            settings_, std::move(report), label);
    }

    // For the pool: the bar is drawn by the report, when asked for.
    MapOptions map_options() const {
        return {.chunksize = settings_.batch_size, .label = "Parallel"};
    }

    // Whether the calls go as batches through the Submitter: to processes, or to a registered
    // backend, which carries no descriptors.
    bool sends_batches() const noexcept {
        return settings_.registered || settings_.backend == ParallelBackend::processes;
    }
    detail::LargeArguments::Carriage carriage() const noexcept {
        return settings_.registered ? detail::LargeArguments::Carriage::messages_only
                                    : detail::LargeArguments::Carriage::shared_memory;
    }

    detail::Submitter& submitter();
    ThreadPoolExecutor& threads();

    detail::ParallelSettings settings_;
    std::unique_ptr<detail::Submitter> submitter_;  // started at the first call, then kept
    std::unique_ptr<ThreadPoolExecutor> threads_;
    detail::CallCosts call_costs_;  // for its processes' chunks
};

}  // namespace crew
