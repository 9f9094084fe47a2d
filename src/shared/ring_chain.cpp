#include "crew/detail/ring_chain.hpp"

#include <fcntl.h>

#include <cerrno>
#include <cstring>

#include "crew/detail/message_ring.hpp"
#include "foundation/log.hpp"

namespace crew::detail {
namespace {

// Each ring after the first starts on a page of its own: its RingControl ends the page, so that
// its bytes start the next one and can be given back by whole pages.
constexpr std::size_t page = 4096;
static_assert(sizeof(RingControl) <= page);

std::size_t region_start(std::uint32_t segment) {
    std::size_t start = 0;
    for (std::uint32_t earlier = 1; earlier < segment; ++earlier) {
        start += page + RingChain::capacity(earlier);
    }
    return start;
}

}  // namespace

std::size_t RingChain::sparse_size() {
    return region_start(segments);
}

RingChain::RingChain(RingChainControl& control, std::byte* first_ring, std::byte* sparse,
                     int sparse_fd)
    : control_(control), first_ring_(first_ring), sparse_(sparse), sparse_fd_(sparse_fd) {}

std::byte* RingChain::memory(std::uint32_t segment) const noexcept {
    if (segment == 0) return first_ring_;
    return sparse_ + region_start(segment) + page - sizeof(RingControl);
}

std::size_t RingChain::capacity(std::uint32_t segment) noexcept {
    return first_capacity << segment;
}

std::uint32_t RingChain::free_segment_larger_than(std::uint32_t segment) const {
    bool linked[segments] = {};
    // From the reader's ring along the links to the writer's: a reader that moves on meanwhile
    // only shortens it, so a segment seen linked here may be free already, never the reverse.
    std::uint32_t at = control_.read_segment.load();
    for (std::uint32_t steps = 0; at < segments && steps < segments; ++steps) {
        linked[at] = true;
        if (at == segment) break;
        at = control_.next[at].load();
    }
    linked[segment] = true;
    for (std::uint32_t candidate = segment + 1; candidate < segments; ++candidate) {
        if (!linked[candidate]) return candidate;
    }
    return none;
}

void RingChain::release_memory(std::uint32_t segment) const {
    if (segment == 0) return;  // the warm ring stays warm
    const auto start = static_cast<off_t>(region_start(segment) + page);
    const auto length = static_cast<off_t>(capacity(segment));
    if (::fallocate(sparse_fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, start, length) != 0) {
        // Nothing is lost: the pages stay until the queue is gone.
        log(LogLevel::warning, "cannot give back {} bytes of a queue's memory: {}", length,
            std::strerror(errno));
    }
}

}  // namespace crew::detail
