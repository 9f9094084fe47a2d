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
// A connection carries whole messages of T (anything crew/serialization.hpp can send) in order,
// of any size. send() blocks while the other end has not read enough of what was sent before;
// recv() blocks until a message is there; poll(timeout) says whether recv() would return at
// once. When the other end is closed, also because the process holding it ended, however it
// ended, recv() throws crew::EOFError once what was sent before is read, instead of waiting
// forever; send() then throws crew::SystemError (EPIPE). A message is delivered whole or not at
// all. Hand an end to a crew::Process as an argument (it travels as a descriptor): move it in,
// or close() your copy after, or the kernel cannot tell that the process holding it has gone.
//
// Pipe(false) gives a one-way pipe: the first end only receives, the second only sends.
// One thread at a time may send on a connection, and one receive.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "crew/detail/byte_stream.hpp"
#include "crew/detail/unique_fd.hpp"
#include "crew/serialization.hpp"

namespace crew {

namespace detail {

// One end of a socket pair carrying length-prefixed messages.
class MessageSocket {
  public:
    MessageSocket() = default;
    explicit MessageSocket(UniqueFd fd) : fd_(std::move(fd)) {}
    static std::pair<MessageSocket, MessageSocket> pair(bool duplex);

    void send(std::span<const std::byte> message);
    // Throws crew::EOFError when the other end is closed and nothing is left to read.
    std::vector<std::byte> receive();
    bool poll(std::optional<std::chrono::nanoseconds> timeout);
    void close() noexcept { fd_.reset(); }
    bool closed() const noexcept { return fd_.get() < 0; }
    int fd() const noexcept { return fd_.get(); }

  private:
    int checked_fd() const;
    bool fill(std::size_t wanted);
    UniqueFd fd_;
    std::vector<std::byte> buffer_;  // bytes received ahead: ready_ of them from start_
    std::size_t start_ = 0;
    std::size_t ready_ = 0;
};

}  // namespace detail

template <class T>
class Connection {
  public:
    Connection() = default;

    void send(const T& value) {
        static_assert(serializable<T>, "crew::Connection: T must be serializable");
        detail::Writer message;
        detail::encode(message, value);
        socket_.send(message.bytes());
    }
    T recv() {
        std::vector<std::byte> message = socket_.receive();
        detail::Reader reader(message);
        return detail::decode<T>(reader);
    }
    void send_bytes(std::span<const std::byte> bytes) { socket_.send(bytes); }
    std::vector<std::byte> recv_bytes() { return socket_.receive(); }
    // Whether recv() would return at once (a message, or EOFError), waiting at most timeout;
    // no timeout: as long as it takes. poll() alone does not wait.
    bool poll(std::optional<std::chrono::nanoseconds> timeout = std::chrono::nanoseconds(0)) {
        return socket_.poll(timeout);
    }
    void close() noexcept { socket_.close(); }
    bool closed() const noexcept { return socket_.closed(); }

    void encode_into(detail::Writer& writer) const {
        detail::encode(writer, detail::SentFd{socket_.fd()});
    }
    static Connection decode_from(detail::Reader& reader) {
        return Connection(
            detail::MessageSocket(detail::UniqueFd(detail::decode<detail::SentFd>(reader).fd)));
    }

  private:
    template <class U>
    friend std::pair<Connection<U>, Connection<U>> Pipe(bool duplex);
    explicit Connection(detail::MessageSocket socket) : socket_(std::move(socket)) {}
    detail::MessageSocket socket_;
};

// Two connected ends; duplex = false: the first only receives, the second only sends.
template <class T>
std::pair<Connection<T>, Connection<T>> Pipe(bool duplex = true) {
    auto [first, second] = detail::MessageSocket::pair(duplex);
    return {Connection<T>(std::move(first)), Connection<T>(std::move(second))};
}

}  // namespace crew
