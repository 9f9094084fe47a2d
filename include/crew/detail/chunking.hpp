// crew/detail/chunking.hpp: how map and imap cut their input into chunks, one task each.
//
// A chunk is many calls in one message to one worker: the bigger, the less each call pays for the
// message; the smaller, the better the load is balanced and the sooner results flow. An explicit
// chunksize is taken as it is (up to largest_chunk calls). Automatic chunks are sized here:
// - map knows its input's length and cuts it as Python does, four chunks a worker;
// - imap does not: its chunks start at one call and grow, once results tell what a call costs,
//   towards costing chunk_target each.
// - crew::Parallel's map does what joblib's automatic batching does at crew's scale: one call a
//   chunk until a result tells what a call costs, then chunks of a share of what is left
//   (guided scheduling), so that they shrink towards the end (to tail_chunk_target) and no
//   worker is left with a long tail, none longer than longest_parallel_chunk.
// Either way an automatic chunk also stops at chunk_bytes of arguments (and of packed results), so
// that it travels as one message read in place from the ring.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "crew/detail/task.hpp"

namespace crew::detail {

inline constexpr std::chrono::microseconds chunk_target{200};
// crew::Parallel's chunks: the least a last chunk costs (a round trip costs more than the balance
// a smaller one buys), and the most any costs (what a failure elsewhere, or the next call, may
// have to wait for).
inline constexpr std::chrono::microseconds tail_chunk_target{25};
inline constexpr std::chrono::milliseconds longest_parallel_chunk{10};
inline constexpr std::uint32_t largest_chunk = 1 << 16;
inline constexpr std::size_t chunk_bytes = 64 << 10;
// imap keeps this many chunks a worker submitted ahead of the result being read.
inline constexpr std::size_t imap_chunks_ahead_per_worker = 4;

template <class R>
constexpr std::uint32_t chunk_limit_for_results() {
    if constexpr (packable_result<R>) {
        return static_cast<std::uint32_t>(std::max<std::size_t>(1, chunk_bytes / sizeof(R)));
    } else {
        return largest_chunk;
    }
}

// The most calls, and bytes of arguments, that one chunk takes.
struct ChunkLimits {
    std::uint32_t calls = 1;
    std::size_t bytes = SIZE_MAX;
};

// map's chunks for count items on processes workers; chunksize 0: automatic. Under a progress
// bar, automatic chunks hold at most a hundredth of the input, so that the bar moves a percent at
// a time from the first second on rather than sitting at 0 until a first eighth comes back.
template <class R>
ChunkLimits map_chunk_limits(std::size_t count, int processes, std::size_t chunksize,
                             bool progress) {
    if (chunksize != 0) {
        return {static_cast<std::uint32_t>(std::min<std::size_t>(chunksize, largest_chunk))};
    }
    const auto chunks = 4 * static_cast<std::size_t>(processes);
    std::size_t size = std::max<std::size_t>(1, (count + chunks - 1) / chunks);
    size = std::min<std::size_t>(size, chunk_limit_for_results<R>());
    if (progress) size = std::min<std::size_t>(size, count / 100 + 1);
    return {static_cast<std::uint32_t>(std::min<std::size_t>(size, largest_chunk)), chunk_bytes};
}

// imap's next chunk; chunksize 0: automatic, from cost, what a call has cost so far (none before
// the first result), and the size of the chunk before. One call a chunk until a result tells the
// cost, so that no chunk outgrows chunk_target from the first on (a dead worker's chunk runs
// again); then towards chunk_target, at most doubling from chunk to chunk.
template <class R>
ChunkLimits imap_chunk_limits(std::size_t chunksize, std::optional<std::chrono::nanoseconds> cost,
                              std::uint32_t last_chunk) {
    if (chunksize != 0) {
        return {static_cast<std::uint32_t>(std::min<std::size_t>(chunksize, largest_chunk))};
    }
    if (!cost) return {1, chunk_bytes};
    const std::int64_t most =
        std::min<std::int64_t>(chunk_limit_for_results<R>(), std::int64_t{last_chunk} * 2 + 1);
    const std::int64_t calls = std::clamp<std::int64_t>(
        chunk_target / std::max(*cost, std::chrono::nanoseconds(1)), 1, most);
    return {static_cast<std::uint32_t>(calls), chunk_bytes};
}

// crew::Parallel's next chunk; batch_size 0: automatic, from cost, what a call has cost so far
// (none before the first result): a 2 * processes-th of the left calls (guided scheduling), no
// fewer than tail_chunk_target's worth, no more than longest_parallel_chunk's nor most.
inline ChunkLimits parallel_chunk_limits(std::size_t batch_size, std::uint32_t most,
                                         std::optional<std::chrono::nanoseconds> cost,
                                         std::uint64_t left, int processes) {
    if (batch_size != 0) {
        return {static_cast<std::uint32_t>(std::min<std::size_t>(batch_size, largest_chunk))};
    }
    if (!cost) return {1, chunk_bytes};
    const std::chrono::nanoseconds call = std::max(*cost, std::chrono::nanoseconds(1));
    const std::int64_t share = std::max<std::int64_t>(
        static_cast<std::int64_t>(left) / (2 * std::int64_t{processes}), tail_chunk_target / call);
    const std::int64_t calls = std::clamp<std::int64_t>(
        std::min<std::int64_t>(longest_parallel_chunk / call, share), 1, std::int64_t{most});
    return {static_cast<std::uint32_t>(calls), chunk_bytes};
}

}  // namespace crew::detail
