// crew/detail/message_ring.hpp: a single-producer, single-consumer queue of messages in shared
// memory, between two threads or two processes.
//
// One RingWriter and one RingReader use a ring at a time. Messages of any size may be written: one
// that fits in a quarter of the ring is read in place, without a copy; a larger one travels in
// pieces, the first starting with its size, and the reader joins them in a buffer of its own,
// sized once and kept warm for the next one, while the writer waits for space. A message becomes
// visible only once whole, so a writer that dies half-way leaves nothing torn behind.
//
// Waiting: both ends spin a little, then sleep on a futex in the ring. A reader that must sleep
// somewhere else (epoll, say) can instead ask the writer to signal an eventfd: see wake_fd and
// prepare_to_sleep. A reader may also sleep on a socket the writer sends to: the kernel then
// wakes it as the writer's partner, onto the writer's core when the writer is about to wait and
// no core is idle, where a futex wake leaves it on the core it last ran on (see the pool's
// workers in pool_core.cpp). No wake-up raises SIGPIPE, even when the reader is gone.
//
// Several writers (or readers) may take turns on one ring, each with its own RingWriter, if
// something else (a lock) lets only one at a time write, and each calls resume() when its turn
// begins. If one dies half-way through a large message, the pieces it left are skipped: a reader
// drops a message whose next piece never came when a new message begins, and a reader that takes
// over drops the rest of a message its predecessor had begun (and counts it: see take_skipped). A
// message's last record goes back to the writer only at release(), in place or in pieces.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "crew/detail/futex.hpp"
#include "crew/detail/ring_chain.hpp"

namespace crew::detail {

// The shared part: counters and wake-up words, then the bytes.
struct RingControl {
    alignas(64) std::atomic<std::uint64_t> written{0};  // bytes the writer has published
    alignas(64) std::atomic<std::uint64_t> read{0};     // bytes the reader has released
    alignas(64) std::atomic<std::uint32_t> reader_waiting{0};
    alignas(64) std::atomic<std::uint32_t> writer_waiting{0};
    // Where the next writer to resume() starts: the end of the last whole record written, kept
    // apart from written, whose cache line a waiting reader keeps taking.
    alignas(64) std::atomic<std::uint64_t> resume_at{0};
};

// Bytes of shared memory a ring of capacity bytes takes; capacity must be a power of two >= 4096.
constexpr std::size_t ring_footprint(std::size_t capacity) {
    return sizeof(RingControl) + capacity;
}

class RingWriter {
  public:
    // The ring at memory (zeroed before first use); wake_fd >= 0: signal that eventfd or stream
    // socket instead of a futex wake when the reader sleeps.
    RingWriter(std::byte* memory, std::size_t capacity, int wake_fd = -1);
    // The writer of a chain of rings (see ring_chain.hpp): it waits for space only once every
    // ring of the chain is in use. Call resume() before each turn at writing, the first too.
    explicit RingWriter(RingChain& chain);

    // Whether a sleeping reader is woken as soon as a message is written, or later: by
    // wake_reader(), or before this writer waits for space.
    enum Wake { now, later };
    // Writes one message. Waits for space to begin it until the deadline, and returns false if
    // that passed (nothing written); once begun, a message is written whole, however long it
    // takes.
    bool write(std::span<const std::byte> message, Wake wake = now,
               const Deadline& deadline = std::nullopt);
    // Wakes the reader if it sleeps and a message written with Wake::later has not woken it.
    void wake_reader();
    // Whether a message of this size would be written at once, without waiting for space.
    bool has_room_for(std::size_t message_size) const;
    // Takes up where another writer of this ring (or chain) left off.
    void resume();
    // While waiting for space, calls check every 100 ms or so; it may throw to give up (the
    // reader is gone, say). The message being written is then left unfinished, for the reader
    // to drop.
    void check_while_waiting(std::function<void()> check) { check_ = std::move(check); }

  private:
    bool write_record(std::span<const std::byte> head, std::span<const std::byte> body,
                      std::uint32_t flags, Wake wake, const Deadline& deadline);
    std::uint64_t space_needed(std::uint64_t record) const;
    bool has_space(std::uint64_t needed) const;
    bool wait_for_space(std::uint64_t needed, const Deadline& deadline);
    void publish(std::uint64_t position, Wake wake);
    bool space_comes_soon(std::uint64_t needed);
    void follow_chain();
    void move_to(std::uint32_t segment);
    void attach(std::uint32_t segment);

    RingChain* chain_ = nullptr;
    std::uint32_t segment_ = 0;  // of the chain, where this writer writes
    RingControl* control_;
    std::byte* bytes_;
    std::size_t capacity_;
    std::uint64_t written_;             // our copy of control_.written
    mutable std::uint64_t known_read_;  // control_.read as last read
    int wake_fd_;
    bool wake_by_socket_ = false;  // wake_fd_ is a socket: sent to without SIGPIPE
    bool wake_owed_ = false;       // written with Wake::later since the reader was last woken
    std::function<void()> check_;
};

class RingReader {
  public:
    // A waiting reader looks at the writer's counter every pauses_between_looks CPU pauses (about
    // 20 ns each): each look takes the counter's cache line from a writer that may be busy
    // writing. A reader that values throughput over a microsecond of latency looks less often.
    static constexpr int default_pauses_between_looks = 16;
    // wake_socket >= 0: the end of a stream socket the writer signals (its wake_fd), on which
    // this reader sleeps instead of the ring's futex. read() throws crew::Error once the other
    // end is closed.
    RingReader(std::byte* memory, std::size_t capacity,
               int pauses_between_looks = default_pauses_between_looks, int wake_socket = -1);
    // The reader of a chain of rings: it reads each ring to its end, then follows the writer.
    RingReader(RingChain& chain, int pauses_between_looks);

    // The next whole message if there is one, without waiting. It stays valid until release().
    std::optional<std::span<const std::byte>> try_read();
    // The next message, waiting as long as it takes.
    std::span<const std::byte> read();
    // The next message, waiting until the deadline at most: nothing if it passed. A message part
    // of which has arrived by then stays begun (see assembling) for the next call.
    std::optional<std::span<const std::byte>> read_before(const Deadline& deadline);
    // Whether part of a large message has been read and the rest is awaited.
    bool assembling() const noexcept { return assembling_; }
    // How many bytes have been read from the ring so far: it moves on as pieces come.
    std::uint64_t position() const noexcept { return read_; }
    // What position() will be once the message read is released.
    std::uint64_t position_after_release() const noexcept { return read_ + held_; }
    // Which ring of a chain position() is in.
    std::uint32_t segment() const noexcept { return segment_; }
    // Done with the message try_read or read returned: its space goes back to the writer.
    void release();
    // Messages a reader that died had begun and this one skipped the end of, since the last call.
    std::uint32_t take_skipped() noexcept;
    // Whether another message is there already, after the one being read, if any.
    bool more_waiting();

    // For a reader that sleeps elsewhere: asks the writer to wake it. Returns false (and asks
    // nothing) when data is already there, so the reader must not sleep.
    bool prepare_to_sleep();
    // Takes that request back: the writer need not wake this reader, who reads anyway.
    void cancel_sleep();

    // Takes up where another reader of this ring (or chain) left off, dropping any message
    // begun.
    void resume();

  private:
    bool follow_link();
    void attach(std::uint32_t segment);
    void release_bytes(std::uint64_t count);
    void make_room(std::uint64_t size);
    bool sleep_on_socket(const Deadline& deadline);

    RingChain* chain_ = nullptr;
    std::uint32_t segment_ = 0;
    RingControl* control_;
    const std::byte* bytes_;
    std::size_t capacity_;
    std::uint64_t read_;          // our copy of control_.read
    std::uint64_t seen_written_;  // control_.written as last read
    std::uint64_t held_ = 0;      // size of the record handed out in place, if any
    int pauses_between_looks_;
    int wake_socket_;
    std::vector<std::byte> assembled_;  // pieces of a large message joined so far
    bool assembling_ = false;
    bool assembled_ready_ = false;
    std::uint32_t skipped_ = 0;
};

}  // namespace crew::detail
