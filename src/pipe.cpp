#include "crew/pipe.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstring>

#include "crew/detail/spin.hpp"
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

constexpr std::size_t buffer_size = 64 << 10;
const char* const cut_short =
    "crew: a connection's other end closed in the middle of a message (its process died while "
    "sending?); the part that came was dropped";

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

// Makes at least wanted bytes ready in the buffer (wanted <= buffer_size); false if the other
// end closed with none ready. For about 50 µs it only asks without blocking: a reply that comes
// within that costs no wake-up (20-70 µs on the machines measured), and one call reads as much
// as has come, the next message's length and bytes together.
bool MessageSocket::fill(std::size_t wanted) {
    const int fd = checked_fd();
    if (buffer_.size() < buffer_size) buffer_.resize(buffer_size);
    if (ready_ >= wanted) return true;
    if (start_ + wanted > buffer_.size()) {
        std::memmove(buffer_.data(), buffer_.data() + start_, ready_);
        start_ = 0;
    }
    const auto stop_spinning = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
    while (ready_ < wanted) {
        const bool spinning = std::chrono::steady_clock::now() < stop_spinning;
        std::byte* free = buffer_.data() + start_ + ready_;
        const std::size_t room = buffer_.size() - start_ - ready_;
        const ssize_t got = ::recv(fd, free, room, spinning ? MSG_DONTWAIT : 0);
        if (got > 0) {
            ready_ += static_cast<std::size_t>(got);
        } else if (got == 0) {
            if (ready_ == 0) return false;
            throw Error(cut_short);
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            cpu_relax();
        } else if (errno != EINTR) {
            throw_system_error("cannot receive on a connection");
        }
    }
    return true;
}

std::vector<std::byte> MessageSocket::receive() {
    std::uint64_t size = 0;
    if (!fill(sizeof size)) throw EOFError();
    std::memcpy(&size, buffer_.data() + start_, sizeof size);
    start_ += sizeof size;
    ready_ -= sizeof size;
    std::vector<std::byte> message(size);
    const std::size_t buffered = std::min<std::size_t>(size, ready_);
    if (buffered != 0) std::memcpy(message.data(), buffer_.data() + start_, buffered);
    start_ += buffered;
    ready_ -= buffered;
    if (ready_ == 0) start_ = 0;
    // The rest of a large message goes straight into it.
    std::size_t got = buffered;
    while (got < size) {
        const ssize_t read = ::recv(checked_fd(), message.data() + got, size - got, 0);
        if (read > 0) {
            got += static_cast<std::size_t>(read);
        } else if (read == 0) {
            throw Error(cut_short);
        } else if (errno != EINTR) {
            throw_system_error("cannot receive on a connection");
        }
    }
    return message;
}

bool MessageSocket::poll(std::optional<std::chrono::nanoseconds> timeout) {
    pollfd watched{checked_fd(), POLLIN, 0};
    if (ready_ != 0) return true;
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
