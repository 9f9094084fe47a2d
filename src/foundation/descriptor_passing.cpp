#include "foundation/descriptor_passing.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "crew/error.hpp"

namespace crew::detail {

bool send_with_fds(int socket, const void* data, std::size_t size, std::span<const int> fds) {
    if (fds.size() > max_fds_per_message) {
        throw Error("crew: at most " + std::to_string(max_fds_per_message) +
                    " file descriptors travel with one message (a child's arguments or a pool "
                    "task's carry one for each Lock, Queue, Pipe end or shared value)");
    }
    const char* bytes = static_cast<const char*>(data);
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_fds_per_message)] = {};
    while (size > 0) {
        iovec chunk{const_cast<char*>(bytes), size};
        msghdr message{};
        message.msg_iov = &chunk;
        message.msg_iovlen = 1;
        if (!fds.empty()) {
            message.msg_control = control;
            message.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
            cmsghdr* header = CMSG_FIRSTHDR(&message);
            header->cmsg_level = SOL_SOCKET;
            header->cmsg_type = SCM_RIGHTS;
            header->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
            std::memcpy(CMSG_DATA(header), fds.data(), sizeof(int) * fds.size());
        }
        ssize_t sent = ::sendmsg(socket, &message, MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR) continue;
        if (sent < 0) return false;
        bytes += sent;
        size -= static_cast<std::size_t>(sent);
        fds = {};
    }
    return true;
}

bool receive_with_fds(int socket, void* data, std::size_t size, std::vector<UniqueFd>& fds) {
    char* bytes = static_cast<char*>(data);
    while (size > 0) {
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_fds_per_message)] = {};
        iovec chunk{bytes, size};
        msghdr message{};
        message.msg_iov = &chunk;
        message.msg_iovlen = 1;
        message.msg_control = control;
        message.msg_controllen = sizeof control;
        ssize_t received = ::recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
        if (received < 0 && errno == EINTR) continue;
        if (received <= 0) {
            if (received == 0) errno = 0;
            return false;
        }
        for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr;
             header = CMSG_NXTHDR(&message, header)) {
            if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
            std::size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (std::size_t i = 0; i < count; ++i) {
                int fd;
                std::memcpy(&fd, CMSG_DATA(header) + i * sizeof(int), sizeof fd);
                fds.emplace_back(fd);
            }
        }
        bytes += received;
        size -= static_cast<std::size_t>(received);
    }
    return true;
}

}  // namespace crew::detail
