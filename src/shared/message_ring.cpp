#include "crew/detail/message_ring.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <tuple>
#include <utility>

#include "crew/detail/byte_stream.hpp"
#include "crew/detail/futex.hpp"
#include "crew/detail/spin.hpp"
#include "crew/error.hpp"

namespace crew::detail {
namespace {

struct RecordHeader {
    std::uint32_t size;  // payload bytes
    std::uint32_t flags;
};

constexpr std::uint32_t padding = 1;         // skip to the start of the ring
constexpr std::uint32_t more_follows = 2;    // a piece of a large message; more pieces come
constexpr std::uint32_t continues = 4;       // a piece after the first of a large message
constexpr std::uint32_t announces_size = 8;  // a first piece that starts with the message's size
// A writer waiting for space looks at the reader's counter as often as a reader looks by default.
constexpr int pauses_between_looks = RingReader::default_pauses_between_looks;

constexpr std::uint64_t round_up(std::uint64_t size) {
    return (size + 7) & ~std::uint64_t{7};
}

RingControl* control_at(std::byte* memory) {
    return reinterpret_cast<RingControl*>(memory);
}

// Where a ring of a chain is.
struct Located {
    RingControl* control;
    std::byte* bytes;
    std::size_t capacity;
};
Located locate(const RingChain& chain, std::uint32_t segment) {
    std::byte* memory = chain.memory(segment);
    return {control_at(memory), memory + sizeof(RingControl), RingChain::capacity(segment)};
}

void check_capacity(std::size_t capacity) {
    if (capacity < 4096 || (capacity & (capacity - 1)) != 0) {
        throw Error("crew: a message ring's capacity must be a power of two of at least 4096");
    }
}

}  // namespace

RingWriter::RingWriter(std::byte* memory, std::size_t capacity, int wake_fd)
    : control_(control_at(memory)),
      bytes_(memory + sizeof(RingControl)),
      capacity_(capacity),
      written_(control_->written.load(std::memory_order_relaxed)),
      known_read_(control_->read.load(std::memory_order_relaxed)),
      wake_fd_(wake_fd) {
    check_capacity(capacity);
    struct stat status {};
    if (wake_fd_ >= 0) {
        if (::fstat(wake_fd_, &status) != 0)
            throw_system_error("cannot inspect a ring's wake-up descriptor");
        wake_by_socket_ = S_ISSOCK(status.st_mode);
    }
}

bool RingWriter::write(std::span<const std::byte> message, Wake wake, const Deadline& deadline) {
    const std::size_t piece = capacity_ / 4 - sizeof(RecordHeader);
    if (message.size() <= piece) return write_record({}, message, 0, wake, deadline);
    // The first piece starts with the message's size, for the reader to make room once.
    const std::uint64_t size = message.size();
    const auto announced = std::as_bytes(std::span(&size, 1));
    std::span<const std::byte> left = message;
    std::span<const std::byte> first = left.first(piece - announced.size());
    if (!write_record(announced, first, more_follows | announces_size, now, deadline)) return false;
    left = left.subspan(first.size());
    for (; left.size() > piece; left = left.subspan(piece)) {
        if (!write_record({}, left.first(piece), continues | more_follows, now, std::nullopt)) {
            return false;
        }
    }
    return write_record({}, left, continues, wake, std::nullopt);
}

// Not where the chain's writer is yet: that is for resume(), which only the writer whose turn it is
// may call, as it may finish another's move.
RingWriter::RingWriter(RingChain& chain) : RingWriter(chain.memory(0), RingChain::capacity(0)) {
    chain_ = &chain;
}

void RingWriter::resume() {
    if (chain_ != nullptr) follow_chain();
    // known_read_ may stay: what the reader released only grows.
    written_ = control_->resume_at.load(std::memory_order_acquire);
}

void RingWriter::follow_chain() {
    RingChainControl& chain = chain_->control();
    std::uint32_t segment = chain.write_segment.load();
    // A writer killed between linking a ring and moving on to it left the link to follow.
    for (std::uint32_t steps = 0; steps < RingChain::segments; ++steps) {
        const std::uint32_t next = chain.next[segment].load();
        if (next == RingChain::none) break;
        segment = next;
    }
    if (chain.write_segment.load() != segment) chain.write_segment.store(segment);
    if (segment != segment_) attach(segment);
    // Back to the warm ring once the reader has read everything here.
    if (segment_ != 0 && chain.read_segment.load() == segment_ &&
        control_->read.load() == control_->resume_at.load()) {
        move_to(0);
    }
}

// Each step is one store: whoever resumes after a writer killed in between finishes the move.
void RingWriter::move_to(std::uint32_t segment) {
    RingChainControl& chain = chain_->control();
    chain.next[segment].store(RingChain::none);
    chain.next[segment_].store(segment);  // the reader follows once it has read this ring out
    chain.write_segment.store(segment);
    if (control_->reader_waiting.load() != 0) {
        control_->reader_waiting.store(0, std::memory_order_relaxed);
        futex_wake_all(control_->reader_waiting);
    }
    attach(segment);
}

void RingWriter::attach(std::uint32_t segment) {
    const Located ring = locate(*chain_, segment);
    segment_ = segment;
    std::tie(control_, bytes_, capacity_) = std::tie(ring.control, ring.bytes, ring.capacity);
    written_ = control_->resume_at.load(std::memory_order_acquire);
    known_read_ = control_->read.load(std::memory_order_acquire);
    wake_owed_ = false;
}

void RingWriter::wake_reader() {
    if (!std::exchange(wake_owed_, false)) return;
    if (control_->reader_waiting.load(std::memory_order_seq_cst) == 0) return;
    control_->reader_waiting.store(0, std::memory_order_relaxed);
    if (wake_fd_ >= 0) {
        std::uint64_t one = 1;
        // A full eventfd counter or socket buffer already means "wake up", and a reader that is
        // gone needs no waking: nothing to do if this fails. A socket is sent to with
        // MSG_NOSIGNAL: a reader that died must not end the writer's process by SIGPIPE.
        if (wake_by_socket_) {
            (void)!::send(wake_fd_, &one, sizeof one, MSG_NOSIGNAL | MSG_DONTWAIT);
        } else {
            (void)!::write(wake_fd_, &one, sizeof one);
        }
    } else {
        futex_wake_all(control_->reader_waiting);
    }
}

bool RingWriter::has_room_for(std::size_t message_size) const {
    if (message_size > capacity_ / 4 - sizeof(RecordHeader)) return false;  // goes in pieces
    return has_space(space_needed(sizeof(RecordHeader) + round_up(message_size)));
}

// A record that would run past the end of the ring also takes the space up to the end.
std::uint64_t RingWriter::space_needed(std::uint64_t record) const {
    const std::uint64_t to_end = capacity_ - (written_ & (capacity_ - 1));
    return record <= to_end ? record : to_end + record;
}

bool RingWriter::write_record(std::span<const std::byte> head, std::span<const std::byte> body,
                              std::uint32_t flags, Wake wake, const Deadline& deadline) {
    const auto size = static_cast<std::uint32_t>(head.size() + body.size());
    const std::uint64_t record = sizeof(RecordHeader) + round_up(size);
    if (chain_ != nullptr && !has_space(space_needed(record)) &&
        !space_comes_soon(space_needed(record))) {
        const std::uint32_t larger = chain_->free_segment_larger_than(segment_);
        if (larger != RingChain::none) move_to(larger);
    }
    std::uint64_t offset = written_ & (capacity_ - 1);
    const std::uint64_t to_end = capacity_ - offset;
    const std::uint64_t needed = space_needed(record);
    if (!wait_for_space(needed, deadline)) return false;
    if (record > to_end) {
        RecordHeader pad{static_cast<std::uint32_t>(to_end - sizeof(RecordHeader)), padding};
        std::memcpy(bytes_ + offset, &pad, sizeof pad);
        offset = 0;
    }
    RecordHeader header{size, flags};
    std::memcpy(bytes_ + offset, &header, sizeof header);
    std::byte* payload = bytes_ + offset + sizeof header;
    // An empty span's data() may be null, which memcpy must not get.
    if (!head.empty()) std::memcpy(payload, head.data(), head.size());
    if (!body.empty()) std::memcpy(payload + head.size(), body.data(), body.size());
    publish(written_ + needed, wake);
    return true;
}

// What the reader has released is looked up only when what was known of it is not enough: the
// counter's cache line is the reader's.
bool RingWriter::has_space(std::uint64_t needed) const {
    // After resume(), what was known may lag by more than the ring holds.
    const std::uint64_t used = written_ - known_read_;
    if (used <= capacity_ && capacity_ - used >= needed) return true;
    known_read_ = control_->read.load(std::memory_order_acquire);
    return capacity_ - (written_ - known_read_) >= needed;
}

bool RingWriter::wait_for_space(std::uint64_t needed, const Deadline& deadline) {
    auto enough = [&] { return has_space(needed); };
    if (enough()) return true;
    wake_reader();  // a reader left asleep would never make the space
    for (int spin = 0; !enough(); ++spin) {
        // Looking at the reader's counter takes its cache line from the reader, who is busy
        // making space: look seldom.
        if (spin < spins_before_sleeping / pauses_between_looks) {
            for (int pause = 0; pause < pauses_between_looks; ++pause) cpu_relax();
            continue;
        }
        control_->writer_waiting.store(1, std::memory_order_seq_cst);
        if (enough()) break;
        // In slices: a reader that died between making space and waking this writer would
        // otherwise leave it asleep beside the space.
        Deadline slice = Clock::now() + lost_wake_up_interval;
        if (deadline && *deadline < *slice) slice = deadline;
        sleep_while(control_->writer_waiting, 1, slice);
        if (deadline && Clock::now() >= *deadline) return enough();
        if (check_) check_();
    }
    return true;
}

// A chain's writer spins as long as any waiter before it grows the chain: a reader at work makes
// space within microseconds, and the larger ring's pages would be new (slow to write the first
// time, given back once read).
bool RingWriter::space_comes_soon(std::uint64_t needed) {
    wake_reader();
    for (int spin = 0; spin < spins_before_sleeping / pauses_between_looks; ++spin) {
        for (int pause = 0; pause < pauses_between_looks; ++pause) cpu_relax();
        if (has_space(needed)) return true;
    }
    return false;
}

void RingWriter::publish(std::uint64_t position, Wake wake) {
    written_ = position;
    // Before written: a writer that dies between the two leaves a whole record, which the next
    // one publishes with its own.
    control_->resume_at.store(position, std::memory_order_release);
    control_->written.store(position, std::memory_order_seq_cst);
    wake_owed_ = true;
    if (wake == now) wake_reader();
}

RingReader::RingReader(std::byte* memory, std::size_t capacity, int pauses_between_looks,
                       int wake_socket)
    : control_(control_at(memory)),
      bytes_(memory + sizeof(RingControl)),
      capacity_(capacity),
      read_(control_->read.load(std::memory_order_relaxed)),
      seen_written_(read_),
      pauses_between_looks_(pauses_between_looks),
      wake_socket_(wake_socket) {
    check_capacity(capacity);
}

std::optional<std::span<const std::byte>> RingReader::try_read() {
    if (held_ != 0 || assembled_ready_) {
        throw Error("crew: a ring message was read again before release()");
    }
    while (true) {
        // The shared counter's cache line is the writer's: looked at only when what was seen of
        // it is all read.
        if (read_ == seen_written_) {
            seen_written_ = control_->written.load(std::memory_order_acquire);
            if (read_ == seen_written_) {
                if (chain_ == nullptr || !follow_link()) return std::nullopt;
                continue;
            }
        }
        std::uint64_t offset = read_ & (capacity_ - 1);
        RecordHeader header;
        std::memcpy(&header, bytes_ + offset, sizeof header);
        const std::uint64_t record = sizeof(RecordHeader) + round_up(header.size);
        if (header.flags & padding) {
            release_bytes(capacity_ - offset);
            continue;
        }
        const std::byte* payload = bytes_ + offset + sizeof header;
        const bool later_piece = (header.flags & continues) != 0;
        if (later_piece && !assembling_) {  // the rest of a message a dead reader began
            if (!(header.flags & more_follows)) ++skipped_;
            release_bytes(record);
            continue;
        }
        if (!later_piece && assembling_) assembling_ = false;  // its writer died half-way
        if (!assembling_ && !(header.flags & more_follows)) {
            held_ = record;
            return std::span<const std::byte>(payload, header.size);
        }
        if (!assembling_) assembled_.clear();
        assembling_ = true;
        std::span<const std::byte> piece(payload, header.size);
        if (header.flags & announces_size) {
            std::uint64_t size;
            std::memcpy(&size, piece.data(), sizeof size);
            make_room(size);
            piece = piece.subspan(sizeof size);
        }
        assembled_.insert(assembled_.end(), piece.begin(), piece.end());
        if (!(header.flags & more_follows)) {
            // The last piece goes back with the message: until then, a reader that takes over
            // finds it, and knows that a message it cannot read was taken.
            assembling_ = false;
            assembled_ready_ = true;
            held_ = record;
            return std::span<const std::byte>(assembled_);
        }
        release_bytes(record);
    }
}

std::span<const std::byte> RingReader::read() {
    return *read_before(std::nullopt);
}

std::optional<std::span<const std::byte>> RingReader::read_before(const Deadline& deadline) {
    for (int spin = 0;; ++spin) {
        if (auto message = try_read()) return message;
        // Looking at the writer's counter takes its cache line from the writer, who is busy
        // writing: look seldom.
        if (spin < worker_spins_before_sleeping / pauses_between_looks_) {
            for (int pause = 0; pause < pauses_between_looks_; ++pause) cpu_relax();
            continue;
        }
        control_->reader_waiting.store(1, std::memory_order_seq_cst);
        if (control_->written.load(std::memory_order_seq_cst) != read_) continue;
        if (chain_ != nullptr && chain_->control().next[segment_].load() != RingChain::none) {
            continue;
        }
        const bool woken = wake_socket_ >= 0 ? sleep_on_socket(deadline)
                                             : sleep_while(control_->reader_waiting, 1, deadline);
        if (!woken) return std::nullopt;
    }
}

// Returns false once the deadline has passed. A wake-up may be stale (the writer saw this reader
// about to sleep, and it found data instead): the caller looks at the ring again anyway.
bool RingReader::sleep_on_socket(const Deadline& deadline) {
    if (deadline) {
        const auto left = *deadline - Clock::now();
        if (left <= std::chrono::nanoseconds(0)) return false;
        const timespec relative = to_timespec(left);
        pollfd readable{wake_socket_, POLLIN, 0};
        const int ready = ::ppoll(&readable, 1, &relative, nullptr);
        if (ready < 0 && errno != EINTR) {
            throw_system_error("cannot wait on a ring's wake-up socket");
        }
        if (ready <= 0) return true;
    }
    std::byte signals[64];
    const ssize_t got = ::read(wake_socket_, signals, sizeof signals);
    if (got == 0) {
        throw Error(
            "crew: the writer of a ring is gone (its wake-up socket was closed): nothing more "
            "will come");
    }
    if (got < 0 && errno != EINTR) throw_system_error("cannot read a ring's wake-up socket");
    return true;
}

void RingReader::release() {
    assembled_ready_ = false;
    release_bytes(std::exchange(held_, 0));
}

std::uint32_t RingReader::take_skipped() noexcept {
    return std::exchange(skipped_, 0);
}

bool RingReader::more_waiting() {
    // What try_read saw is often enough: the shared counter's cache line is the writer's.
    if (seen_written_ != read_ + held_) return true;
    seen_written_ = control_->written.load(std::memory_order_acquire);
    return seen_written_ != read_ + held_;
}

RingReader::RingReader(RingChain& chain, int pauses_between_looks)
    : RingReader(chain.memory(0), RingChain::capacity(0), pauses_between_looks) {
    chain_ = &chain;
    attach(chain.control().read_segment.load());
}

// Once this ring is read to its end and the writer has moved on: the writer links the next ring
// after its last message here, so what was written is looked at again after the link.
bool RingReader::follow_link() {
    RingChainControl& chain = chain_->control();
    const std::uint32_t next = chain.next[segment_].load();
    if (next == RingChain::none) return false;
    seen_written_ = control_->written.load(std::memory_order_acquire);
    if (seen_written_ != read_) return true;
    // Before the reader leaves: once it has, the writer may write here again.
    chain_->release_memory(segment_);
    chain.read_segment.store(next);
    attach(next);
    return true;
}

void RingReader::attach(std::uint32_t segment) {
    const Located ring = locate(*chain_, segment);
    segment_ = segment;
    std::tie(control_, bytes_, capacity_) = std::tie(ring.control, ring.bytes, ring.capacity);
    read_ = control_->read.load(std::memory_order_acquire);
    seen_written_ = read_;
}

void RingReader::resume() {
    if (chain_ != nullptr) {
        const std::uint32_t segment = chain_->control().read_segment.load();
        if (segment != segment_) attach(segment);
    }
    const std::uint64_t position = control_->read.load(std::memory_order_acquire);
    if (position != read_) {  // another reader has read since: what this one saw is stale
        read_ = position;
        seen_written_ = position;
    }
    held_ = 0;
    assembling_ = false;
    assembled_ready_ = false;
}

void RingReader::cancel_sleep() {
    control_->reader_waiting.store(0, std::memory_order_seq_cst);
}

bool RingReader::prepare_to_sleep() {
    control_->reader_waiting.store(1, std::memory_order_seq_cst);
    if (control_->written.load(std::memory_order_seq_cst) != read_) {
        control_->reader_waiting.store(0, std::memory_order_relaxed);
        return false;
    }
    return true;
}

// Room for a whole message at once: pieces appended to a growing buffer would copy it at each
// doubling. The buffer is kept for the next message, on plain pages (see prefer_huge_pages).
void RingReader::make_room(std::uint64_t size) {
    if (assembled_.capacity() >= size) return;
    assembled_ = std::vector<std::byte>();
    assembled_.reserve(size);
}

void RingReader::release_bytes(std::uint64_t count) {
    read_ += count;
    control_->read.store(read_, std::memory_order_seq_cst);
    if (control_->writer_waiting.load(std::memory_order_seq_cst) != 0) {
        control_->writer_waiting.store(0, std::memory_order_relaxed);
        futex_wake_all(control_->writer_waiting);
    }
}

}  // namespace crew::detail
