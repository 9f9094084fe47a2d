// crew/pipe.hpp: crew::Pipe and crew::Connection, Python's multiprocessing.Pipe.
//
//     void child(crew::Connection<std::string> connection) {
//         connection.send("hello from the child");
//     }
//
//     auto [parent_end, child_end] = crew::Pipe<std::string>();
//     crew::Process p(child, std::move(child_end));  // moved: only the child holds that end
//     p.start();
//     std::string greeting = parent_end.recv();
//
// A connection carries whole messages of T (anything crew/serialization.hpp can send, without
// descriptors) in order, of any size, through 64 KiB of shared memory each way. send() blocks
// while that is full of what the other end has not read; recv() waits for a message (spinning
// for 50 µs, then asleep); poll(timeout) says whether recv() would return at once. When the
// other end is closed, also because the process holding it ended, however it ended, recv()
// throws crew::EOFError once what was sent before is read, instead of waiting forever; send()
// then throws crew::SystemError (EPIPE) at once, Python's BrokenPipeError. A message is
// delivered whole or not at all. Hand an end to a crew::Process as an argument (it travels as a
// descriptor): move it in, or close() your copy after, or the kernel cannot tell that the process
// holding it has gone.
//
// Pipe(false) gives a one-way pipe: the first end only receives, the second only sends.
// One thread at a time may send on a connection, and one receive.
#pragma once

#include <poll.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "crew/detail/byte_stream.hpp"
#include "crew/detail/futex.hpp"
#include "crew/detail/message_ring.hpp"
#include "crew/detail/ring_pair.hpp"
#include "crew/detail/unique_fd.hpp"
#include "crew/error.hpp"
#include "crew/serialization.hpp"
#include "crew/timeout.hpp"

namespace crew {

namespace detail {

// One end of a pipe: a message ring in shared memory each way (only one for a one-way pipe),
// an eventfd each way to wake a reader that sleeps, and a socket pair that carries nothing: its
// other end closes when every copy of the other connection end is gone, however its process
// ended.
class PipeChannel {
  public:
    PipeChannel() = default;
    PipeChannel(PipeChannel&& other) noexcept = default;
    // Moving in closes what this end held: every member lets go of its own.
    PipeChannel& operator=(PipeChannel&& other) noexcept = default;
    ~PipeChannel() { close(); }
    static std::pair<PipeChannel, PipeChannel> pair(bool duplex);

    void send(std::span<const std::byte> message);
    // The next message, read in place until release(); throws crew::EOFError when the other
    // end is gone and nothing is left.
    std::span<const std::byte> receive();
    void release() { in_->release(); }
    bool poll(Timeout timeout);
    // One sleep in two steps, for a wait that sleeps on other descriptors too: begin_sleep fills
    // in the two to poll, or returns false if a message came meanwhile (then do not sleep);
    // end_sleep takes the poll's results.
    bool begin_sleep(std::span<pollfd, 2> watched);
    void end_sleep(std::span<const pollfd, 2> watched);
    void close() noexcept;
    bool closed() const noexcept { return !socket_; }

    void encode_into(Writer& writer) const;
    static PipeChannel decode_from(Reader& reader);

  private:
    void open_rings();
    void check_open() const;
    bool other_end_gone();
    // Sleeps until woken, the other end goes, or the deadline; false once the deadline passed.
    bool sleep(const Deadline& deadline);

    UniqueFd socket_;
    RingPair rings_;
    UniqueFd wake_;           // this end's: written when a message comes while it sleeps
    UniqueFd other_wake_;     // the other end's
    std::uint8_t index_ = 0;  // 0: the first end; its messages come in ring 0
    bool can_send_ = false;
    bool can_receive_ = false;
    bool other_end_gone_ = false;
    std::unique_ptr<RingReader> in_;
    std::unique_ptr<RingWriter> out_;
};

}  // namespace detail

template <class T>
class Connection {
  public:
    Connection() = default;

    void send(const T& value) {
        detail::with_message_bytes(
            value, [&](std::span<const std::byte> message) { channel_.send(message); });
    }
    T recv() {
        std::span<const std::byte> message = channel_.receive();
        struct Release {
            detail::PipeChannel& channel;
            ~Release() { channel.release(); }
        } release{channel_};
        return detail::decode_message<T>(message);
    }
    void send_bytes(std::span<const std::byte> bytes) { channel_.send(bytes); }
    std::vector<std::byte> recv_bytes() {
        std::span<const std::byte> message = channel_.receive();
        std::vector<std::byte> bytes(message.begin(), message.end());
        channel_.release();
        return bytes;
    }
    // Whether recv() would return at once (a message, or EOFError), waiting at most timeout;
    // no timeout: as long as it takes. poll() alone does not wait.
    bool poll(Timeout timeout = std::chrono::nanoseconds(0)) { return channel_.poll(timeout); }
    void close() noexcept { channel_.close(); }
    bool closed() const noexcept { return channel_.closed(); }

    void encode_into(detail::Writer& writer) const { channel_.encode_into(writer); }
    static Connection decode_from(detail::Reader& reader) {
        return Connection(detail::PipeChannel::decode_from(reader));
    }

  private:
    template <class U>
    friend std::pair<Connection<U>, Connection<U>> Pipe(bool duplex);
    friend class Waitable;
    explicit Connection(detail::PipeChannel channel) : channel_(std::move(channel)) {}
    detail::PipeChannel channel_;
};

// Two connected ends; duplex = false: the first only receives, the second only sends.
template <class T>
std::pair<Connection<T>, Connection<T>> Pipe(bool duplex = true) {
    auto [first, second] = detail::PipeChannel::pair(duplex);
    return {Connection<T>(std::move(first)), Connection<T>(std::move(second))};
}

}  // namespace crew
