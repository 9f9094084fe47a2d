// crew/detail/submitter.hpp: the one path on which work reaches a pool's workers.
//
// crew::Pool, crew::ProcessPoolExecutor and crew::Parallel each hold a Submitter over their
// TaskTransport (a PoolCore, or a backend registered for Parallel) and submit through it: one call
// as one task (submit_call), a map's calls in chunks collected into one vector (submit_all), or
// lazily, a window of chunks at a time (lazy). Each checks at compile time that the function and
// its arguments may cross to a worker, and returns detail::Refused when they may not (the
// static_assert has said why).
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "crew/detail/callable.hpp"
#include "crew/detail/chunking.hpp"
#include "crew/detail/imap_results.hpp"
#include "crew/detail/progress.hpp"
#include "crew/detail/reduce_task.hpp"
#include "crew/detail/result_sinks.hpp"
#include "crew/detail/task.hpp"
#include "crew/detail/task_transport.hpp"
#include "crew/error.hpp"
#include "crew/future.hpp"
#include "crew/map_options.hpp"
#include "crew/timeout.hpp"

namespace crew::detail {

// The progress bar options ask for, if any, counting to the size of items when it is known.
template <class Range>
std::shared_ptr<ProgressReport> progress_for(const MapOptions& options, Range& items,
                                             const char* label) {
    if (!options.progress) return nullptr;
    std::optional<std::uint64_t> total;
    if constexpr (std::ranges::sized_range<Range>) total = std::ranges::size(items);
    return std::make_shared<Progress>(options.label.empty() ? label : options.label, total);
}

// What crew::Parallel asks of a map beyond its MapOptions.
struct MapPolicy {
    std::shared_ptr<ProgressReport> report = {};  // replaces the bar of options.progress
    // The first failure fails the map at once, naming its input, and what has not begun is
    // dropped (result_sinks.hpp); else a map waits for every call, as Python's does.
    bool stop_at_first_failure = false;
    std::size_t chunks_ahead = 0;                      // lazy: chunks in flight; 0: imap's
    std::uint32_t most_calls_a_chunk = largest_chunk;  // automatic chunks
};

// What a call of each function cost as crew::Parallel's last map of it saw, for its next: a
// Parallel's first chunks are then cut to that cost rather than of one call each (joblib too
// keeps its batch size from call to call of one Parallel).
class CallCosts {
  public:
    std::optional<std::chrono::nanoseconds> find(const ChunkCode& code) const {
        const auto found = costs_.find(key(code));
        if (found == costs_.end()) return std::nullopt;
        return found->second;
    }
    void remember(const ChunkCode& code, std::chrono::nanoseconds cost) {
        costs_[key(code)] = cost;
        latest_ = cost;
    }
    // The cost remembered last, of whichever function.
    std::optional<std::chrono::nanoseconds> latest() const { return latest_; }

  private:
    using Key = std::tuple<std::array<std::uint8_t, 32>, std::uint64_t, std::uint64_t>;
    static Key key(const ChunkCode& code) {
        return {code.entry.build_id, code.entry.offset, code.function.offset};
    }
    std::map<Key, std::chrono::nanoseconds> costs_;
    std::optional<std::chrono::nanoseconds> latest_;
};

struct NothingToPrepare {
    void operator()(const auto&) const noexcept {}
};
inline constexpr NothingToPrepare nothing_to_prepare;

// The call a map makes of one input item: what it carries (the item itself or, Star, a tuple's
// elements), whether that may cross to a worker (valid; else check_call's static_assert said why),
// and how the item is written into a task. Shared by the Submitter and crew::Parallel, so that
// both agree on what a call returns.
template <class F, class Item, bool Star>
struct MapCall;
template <class F, class Item>
struct MapCall<F, Item, false> {
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
struct MapCall<F, Item, true> {
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
                detail::encode_arguments_as<Carried>(task,
                                                     std::forward<decltype(elements)>(elements)...);
            },
            std::forward<Item>(item));
    }
};

class Submitter {
  public:
    explicit Submitter(std::shared_ptr<TaskTransport> transport)
        : transport_(std::move(transport)) {}

    TaskTransport& transport() const noexcept { return *transport_; }
    int processes() const noexcept { return transport_->processes(); }

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
            auto state = std::make_shared<detail::SingleSink<R>>(transport_);
            prepare(static_cast<detail::FutureState<R>&>(*state));
            detail::Writer task;
            const F callable(std::forward<Function>(function));
            std::size_t count_at =
                detail::begin_task(task, detail::chunk_code<F, Carried>(callable), callable);
            detail::encode_arguments_as<Carried>(task, std::forward<Arguments>(arguments)...);
            detail::finish_task(task, count_at, 1);
            transport_->submit(task, 0, 1, state);
            return std::shared_ptr<detail::FutureState<R>>(std::move(state));
        }
    }

    // Every item's call; prepare(state) sees the result's state before the first is submitted.
    template <bool Star, class F, class Range, class Prepare = detail::NothingToPrepare>
    auto submit_all(F function, Range&& items, const MapOptions& options, const char* label,
                    Prepare&& prepare = {}, const MapPolicy& policy = {}) {
        using Item = std::ranges::range_reference_t<Range>;
        using C = MapCall<F, Item, Star>;
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
                                        std::forward<Prepare>(prepare), policy);
            } else {
                const auto count = static_cast<std::size_t>(std::ranges::size(items));
                auto state = std::make_shared<detail::FutureState<std::vector<R>>>();
                prepare(*state);
                auto progress =
                    policy.report ? policy.report : detail::progress_for(options, items, label);
                auto sink = std::make_shared<detail::MapSink<R>>(
                    state, count, std::move(progress),
                    policy.stop_at_first_failure ? label : nullptr);
                auto limits = detail::map_chunk_limits<R>(count, processes(), options.chunksize,
                                                          options.progress || policy.report);
                if (options.chunksize == 0) {
                    limits.calls = std::min(limits.calls, policy.most_calls_a_chunk);
                }
                auto next = std::ranges::begin(items);
                auto end = std::ranges::end(items);
                const auto code = chunk_code<F, C, decltype(next)>(function);
                detail::TaskTransport::Batch batch(*transport_);
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

    // crew::Parallel's map, whose calls the caller has checked (Parallel::dispatch): chunks of
    // one call, at most policy.chunks_ahead of them out, until a result tells what a call costs;
    // then the rest cut to that cost (parallel_chunk_limits), the caller doing the broker's work
    // while it waits, as wait_for does. Returns the results in input order, or throws the first
    // failure.
    template <bool Star, class F, class Range>
    auto map_adaptively(F function, Range&& items, const MapOptions& options, const char* label,
                        const MapPolicy& policy, CallCosts& costs) {
        using Item = std::ranges::range_reference_t<Range>;
        using C = MapCall<F, Item, Star>;
        using R = detail::call_result_t<F, typename C::Carried>;
        if constexpr (!std::ranges::sized_range<Range>) {
            std::vector<std::ranges::range_value_t<Range>> all;
            for (auto&& item : items) all.push_back(std::forward<decltype(item)>(item));
            return map_adaptively<Star>(std::move(function), std::move(all), options, label, policy,
                                        costs);
        } else {
            const auto count = static_cast<std::uint64_t>(std::ranges::size(items));
            auto state = std::make_shared<detail::FutureState<std::vector<R>>>();
            auto sink = std::make_shared<detail::MapSink<R>>(
                state, count, policy.report ? policy.report : progress_for(options, items, label),
                policy.stop_at_first_failure ? label : nullptr);
            auto next = std::ranges::begin(items);
            const auto end = std::ranges::end(items);
            const auto code = chunk_code<F, C, decltype(next)>(function);
            const std::int64_t ahead = windowed_chunks_ahead(policy);
            // Until a result tells what a call costs, at most ahead chunks out: of one call each,
            // or cut to what the last map of the function saw. Then the rest at once, cut to
            // that cost, as map does.
            const std::optional<std::chrono::nanoseconds> known = costs.find(code);
            std::uint64_t first = 0;
            ChunkWindow& window = sink->window();
            auto room = [&] {
                return first < count && (window.out() < ahead || window.cost_per_call());
            };
            while (!state->is_done()) {
                if (room()) {
                    detail::TaskTransport::Batch batch(*transport_);
                    const auto cost = window.cost_per_call() ? window.cost_per_call() : known;
                    while (room() && !state->is_done()) {
                        const auto limits = detail::parallel_chunk_limits(
                            options.chunksize,
                            std::min(policy.most_calls_a_chunk, chunk_limit_for_results<R>()), cost,
                            count - first, processes());
                        window.chunk_sent();
                        first += submit_chunk<F, C>(function, code, next, end, first, limits, sink,
                                                    batch);
                    }
                    batch.submit();
                }
                {
                    detail::TaskTransport::Driver driver(*transport_);
                    driver.drive_until([&] { return state->is_done() || room(); });
                }
                // With every chunk out, only the end is waited for.
                if (!state->is_done() && !room()) {
                    window.wait_for_room(first < count ? ahead : 0,
                                         [&] { return state->is_done(); });
                }
            }
            if (const auto seen = window.cost_per_call()) costs.remember(code, *seen);
            return state->take_value();
        }
    }

    // crew::map_reduce, whose calls the caller has checked: the items' calls in chunks reduced in
    // the workers (reduce_task.hpp), at most policy.chunks_ahead chunks out at a time so that
    // the input is read only as the workers take it, each chunk's result reduced into the total
    // as it arrives. Returns the total, nothing for no items, or throws the first failure.
    template <bool Star, class F, class Reduce, class Range>
    auto map_reduce(F function, Reduce reduce, Range&& items, const MapOptions& options,
                    const char* label, const MapPolicy& policy) {
        using Item = std::ranges::range_reference_t<Range>;
        using C = MapCall<F, Item, Star>;
        using R = detail::call_result_t<F, typename C::Carried>;
        auto next = std::ranges::begin(items);
        const auto end = std::ranges::end(items);
        using Iterator = decltype(next);
        constexpr bool counting = C::raw_argument && counting_iterator<Iterator>;
        using Counter = std::conditional_t<counting, std::iter_value_t<Iterator>, void>;
        const auto code = reduce_code<F, Reduce, typename C::Carried, Counter>(function, reduce);
        auto state = std::make_shared<detail::FutureState<std::optional<R>>>();
        auto sink = std::make_shared<detail::ReduceSink<R, Reduce>>(
            state, reduce, policy.report ? policy.report : progress_for(options, items, label));
        ChunkWindow& window = sink->window();
        const std::int64_t ahead = windowed_chunks_ahead(policy);
        std::uint64_t first = 0;
        auto room = [&] { return next != end && window.out() < ahead; };
        while (next != end && !state->is_done()) {
            if (room()) {
                detail::TaskTransport::Batch batch(*transport_);
                while (room() && !state->is_done()) {
                    std::uint64_t left = UINT64_MAX;
                    if constexpr (std::sized_sentinel_for<std::remove_const_t<decltype(end)>,
                                                          Iterator>) {
                        left = static_cast<std::uint64_t>(end - next);
                    }
                    const auto limits =
                        detail::parallel_chunk_limits(options.chunksize, policy.most_calls_a_chunk,
                                                      window.cost_per_call(), left, processes());
                    detail::Writer task;
                    const std::size_t count_at = detail::begin_task(task, code.chunk, function);
                    detail::write_reduce(task, code, reduce, first);
                    std::uint32_t calls = 0;
                    if constexpr (counting) {
                        calls =
                            static_cast<std::uint32_t>(std::min<std::uint64_t>(limits.calls, left));
                        detail::encode(task, static_cast<Counter>(*next));
                        next += static_cast<std::iter_difference_t<Iterator>>(calls);
                    } else {
                        calls = encode_arguments<C>(task, next, end, limits.calls, limits.bytes);
                    }
                    detail::finish_task(task, count_at, calls);
                    sink->chunk_sent(first, calls);
                    batch.add(task, first, 1, sink);  // one call, as the pool sees it
                    first += calls;
                }
                batch.submit();
            }
            {
                detail::TaskTransport::Driver driver(*transport_);
                driver.drive_until([&] { return state->is_done() || room(); });
            }
            if (!state->is_done() && !room()) {
                window.wait_for_room(ahead, [&] { return state->is_done(); });
            }
        }
        sink->all_sent();
        if (!state->is_done()) {
            {
                detail::TaskTransport::Driver driver(*transport_);
                driver.drive_until([&] { return state->is_done(); });
            }
            window.wait_for_room(0, [&] { return state->is_done(); });
        }
        return state->take_value();
    }

    template <bool Star, class F, class Range>
    auto lazy(F function, Range&& items, const MapOptions& options, bool ordered, const char* label,
              const MapPolicy& policy = {}) {
        using Item = std::ranges::range_reference_t<Range>;
        using C = MapCall<F, Item, Star>;
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
            if (policy.stop_at_first_failure) sink->stop_at_first_failure(label);
            // The input, owned if it was handed over, with where reading has got to.
            struct Input {
                std::views::all_t<Range> view;
                std::ranges::iterator_t<std::views::all_t<Range>> next;
                explicit Input(Range&& items)
                    : view(std::views::all(std::forward<Range>(items))),
                      next(std::ranges::begin(view)) {}
            };
            auto progress =
                policy.report ? policy.report : detail::progress_for(options, items, label);
            auto input = std::make_shared<Input>(std::forward<Range>(items));
            const auto code = chunk_code<F, C, decltype(input->next)>(function);
            typename ImapResults<R>::Feeder feeder =
                [this, function = std::move(function), code, input, sink](
                    std::uint64_t first,
                    detail::ChunkLimits limits) -> std::optional<std::uint32_t> {
                detail::TaskTransport::Batch batch(*transport_);
                std::uint32_t count =
                    submit_chunk<F, C>(function, code, input->next, std::ranges::end(input->view),
                                       first, limits, sink, batch);
                batch.submit();
                if (count == 0) return std::nullopt;
                return count;
            };
            const detail::Deadline deadline = detail::deadline_for(options.timeout);
            const std::size_t chunks_ahead =
                policy.chunks_ahead != 0
                    ? policy.chunks_ahead
                    : detail::imap_chunks_ahead_per_worker * static_cast<std::size_t>(processes());
            return ImapResults<R>(sink, std::move(feeder), ordered, options.chunksize,
                                  policy.most_calls_a_chunk, chunks_ahead, deadline,
                                  std::move(progress));
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
                detail::TaskTransport::Driver driver(*transport_);
                state = submit();
                driver.drive_until([&] { return state->is_done(); }, deadline);
            }
            if (deadline && !state->wait(time_left(deadline))) {
                throw TimeoutError("crew: the results were not ready within the timeout");
            }
            return state->take_value();
        }
    }

  private:
    // The chunks map_adaptively and map_reduce keep out: policy's, else joblib's 2 * n_jobs.
    std::int64_t windowed_chunks_ahead(const MapPolicy& policy) const {
        return static_cast<std::int64_t>(policy.chunks_ahead != 0
                                             ? policy.chunks_ahead
                                             : 2 * static_cast<std::size_t>(processes()));
    }

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
                                      detail::TaskTransport::Batch& batch) {
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

    std::shared_ptr<TaskTransport> transport_;
};

}  // namespace crew::detail
