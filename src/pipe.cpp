#include "crew/pipe.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <climits>
#include <cstdint>

#include "crew/error.hpp"

namespace crew::detail {
namespace {

// Sends all of the buffers, however the kernel splits them.
void send_all(int fd, iovec* parts, int count) {
    while (count > 0) {
        msghdr message{};
        message.msg_iov = parts;
        message.msg_iovlen = static_cast<std::size_t>(count);
        const ssize_t sent = ::sendmsg(fd, &message, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR) continue;
            throw_system_error("cannot send on a connection (is its other end closed?)");
        }
        auto left = static_cast<std::size_t>(sent);
        while (count > 0 && left >= parts->iov_len) {
            left -= parts->iov_len;
            ++parts;
            --count;
        }
        if (count > 0) {
            parts->iov_base = static_cast<char*>(parts->iov_base) + left;
            parts->iov_len -= left;
        }
    }
}

// Reads exactly size bytes; false if the other end closed before the first byte.
bool receive_all(int fd, void* data, std::size_t size) {
    auto* next = static_cast<char*>(data);
    std::size_t got = 0;
    while (got < size) {
        const ssize_t read = ::recv(fd, next + got, size - got, 0);
        if (read < 0) {
            if (errno == EINTR) continue;
            throw_system_error("cannot receive on a connection");
        }
        if (read == 0) {
            if (got == 0) return false;
            throw Error(
                "crew: a connection's other end closed in the middle of a message (its process "
                "died while sending?); the part that came was dropped");
        }
        got += static_cast<std::size_t>(read);
    }
    return true;
}

}  // namespace

std::pair<MessageSocket, MessageSocket> MessageSocket::pair(bool duplex) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        throw_system_error("cannot create a pipe (socketpair)");
    }
    MessageSocket first{UniqueFd(fds[0])}, second{UniqueFd(fds[1])};
    if (!duplex) {
        if (::shutdown(fds[0], SHUT_WR) != 0 || ::shutdown(fds[1], SHUT_RD) != 0) {
            throw_system_error("cannot make a one-way pipe (shutdown)");
        }
    }
    return {std::move(first), std::move(second)};
}

int MessageSocket::checked_fd() const {
    if (fd_.get() < 0) throw Error("crew: the connection is closed");
    return fd_.get();
}

void MessageSocket::send(std::span<const std::byte> message) {
    std::uint64_t size = message.size();
    iovec parts[2] = {{&size, sizeof size},
                      {const_cast<std::byte*>(message.data()), message.size()}};
    send_all(checked_fd(), parts, message.empty() ? 1 : 2);
}

std::vector<std::byte> MessageSocket::receive() {
    const int fd = checked_fd();
    std::uint64_t size = 0;
    if (!receive_all(fd, &size, sizeof size)) {
        throw EOFError();
    }
    std::vector<std::byte> message(size);
    if (size != 0 && !receive_all(fd, message.data(), message.size())) {
        throw Error(
            "crew: a connection's other end closed in the middle of a message (its process died "
            "while sending?); the part that came was dropped");
    }
    return message;
}

bool MessageSocket::poll(std::optional<std::chrono::nanoseconds> timeout) {
    pollfd watched{checked_fd(), POLLIN, 0};
    int milliseconds = -1;
    if (timeout) {
        const auto rounded_up = std::chrono::ceil<std::chrono::milliseconds>(*timeout).count();
        milliseconds = static_cast<int>(std::clamp<long long>(rounded_up, 0, INT_MAX));
    }
    while (true) {
        const int ready = ::poll(&watched, 1, milliseconds);
        if (ready >= 0) return ready == 1;
        if (errno != EINTR) throw_system_error("cannot poll a connection");
    }
}

}  // namespace crew::detail
