// crew/detail/ring_chain.hpp: a message ring that grows instead of making its writer wait.
//
// A chain is up to `segments` rings: a warm one of 1 MiB, then rings of 2, 4, ... 16384 MiB in
// one sparse block of shared memory whose pages exist only once written. A writer that finds its
// ring full links a free ring of twice its size after it and goes on there; the reader reads each
// ring to its end before it follows the link, so messages keep their order, and gives a grown
// ring's pages back to the system as it leaves it. Once the reader has caught up, the writer goes
// back to the warm ring. So memory grows with what waits unread, and only a backlog of more than
// 32 GiB makes a writer wait.
//
// Crashes: every step of a move is one store, and the next writer or reader to take a turn
// finishes a move that one killed half-way began (see RingWriter::resume, RingReader::resume).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace crew::detail {

// The shared part, constructed in memory the chain's users share before any of them uses it.
struct RingChainControl {
    static constexpr std::uint32_t segments = 15;
    static constexpr std::uint32_t none = ~std::uint32_t{0};
    std::atomic<std::uint32_t> write_segment{0};
    std::atomic<std::uint32_t> read_segment{0};
    // The ring the writer went on in once a ring was full; none: the writer is still there.
    std::atomic<std::uint32_t> next[segments];

    RingChainControl() {
        for (auto& link : next) link.store(none, std::memory_order_relaxed);
    }
};

class RingChain {
  public:
    static constexpr std::uint32_t segments = RingChainControl::segments;
    static constexpr std::uint32_t none = RingChainControl::none;
    static constexpr std::size_t first_capacity = std::size_t{1} << 20;
    // Bytes of the block the rings after the first live in.
    static std::size_t sparse_size();

    // first_ring: ring_footprint(first_capacity) bytes for the warm ring; sparse: a block of
    // sparse_size() bytes behind sparse_fd, whose pages are given back as rings are left.
    RingChain(RingChainControl& control, std::byte* first_ring, std::byte* sparse, int sparse_fd);

    RingChainControl& control() const noexcept { return control_; }
    // Where a segment's ring starts (its RingControl, then its bytes) and how many bytes it holds.
    std::byte* memory(std::uint32_t segment) const noexcept;
    static std::size_t capacity(std::uint32_t segment) noexcept;
    // A segment larger than `segment` that holds nothing the reader has yet to read and is not
    // linked into the chain, ready to be linked after it; none if all are in use.
    std::uint32_t free_segment_larger_than(std::uint32_t segment) const;
    // Gives the pages of a segment the reader has left back to the system.
    void release_memory(std::uint32_t segment) const;

  private:
    RingChainControl& control_;
    std::byte* first_ring_;
    std::byte* sparse_;
    int sparse_fd_;
};

}  // namespace crew::detail
