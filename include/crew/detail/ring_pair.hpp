// crew/detail/ring_pair.hpp: a two-way channel of message rings in one shared mapping.
//
// A pool and each of its workers talk over one, as do the two ends of a crew::Pipe. Ring 0
// carries messages to end 0, ring 1 to end 1 (message_ring.hpp), and a trailer after them holds
// whatever else the two ends share (a pool worker's progress). One end creates the pair; the other
// attaches to its descriptor, sent across (as a SentFd), with the same capacity.
#pragma once

#include <cstddef>

#include "crew/detail/message_ring.hpp"
#include "crew/detail/shared_mapping.hpp"
#include "crew/detail/unique_fd.hpp"

namespace crew::detail {

class RingPair {
  public:
    // Each ring of a pool worker's channel: big enough that a map's chunks rarely wait for space,
    // small enough to stay warm (it is touched once, when the worker starts).
    static constexpr std::size_t pool_worker_capacity = std::size_t{1} << 20;
    // Each ring of a pipe: small, as pipes carry small messages mostly (larger ones pass in
    // pieces), and touched once, when the pipe is made.
    static constexpr std::size_t pipe_capacity = std::size_t{64} << 10;

    RingPair() = default;
    static RingPair create(std::size_t capacity, std::size_t trailer_size, const char* name) {
        return RingPair(SharedMapping::create(2 * ring_footprint(capacity) + trailer_size, name),
                        capacity);
    }
    static RingPair attach(UniqueFd fd, std::size_t capacity) {
        return RingPair(SharedMapping::attach(std::move(fd)), capacity);
    }

    std::size_t capacity() const noexcept { return capacity_; }
    // The ring that carries messages to end (0 or 1).
    std::byte* ring_to(int end) const noexcept {
        return mapping_.data() + static_cast<std::size_t>(end) * ring_footprint(capacity_);
    }
    std::byte* trailer() const noexcept { return mapping_.data() + 2 * ring_footprint(capacity_); }
    int fd() const noexcept { return mapping_.fd(); }
    explicit operator bool() const noexcept { return mapping_.data() != nullptr; }

  private:
    RingPair(SharedMapping mapping, std::size_t capacity)
        : mapping_(std::move(mapping)), capacity_(capacity) {}
    SharedMapping mapping_;
    std::size_t capacity_ = 0;
};

}  // namespace crew::detail
