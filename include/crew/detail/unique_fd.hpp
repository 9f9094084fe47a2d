// crew/detail/unique_fd.hpp: owning handles for the file descriptors crew opens.
//
// Every descriptor crew opens is held by a UniqueFd, which records it in a process-wide list, so
// that a child made with fork() can close every descriptor crew opened for something else
// (close_library_fds_in_child) and inherits none of them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

namespace crew::detail {

class UniqueFd {
  public:
    UniqueFd() = default;
    // Takes ownership of fd (which must be open) and records it.
    explicit UniqueFd(int fd);
    UniqueFd(UniqueFd&& other) noexcept { *this = std::move(other); }
    UniqueFd& operator=(UniqueFd&& other) noexcept;
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    // Closes the descriptor, unless a fork child already closed it for us.
    void reset() noexcept;
    // Gives the descriptor up, unclosed, to whoever owns it next.
    int release() noexcept;

  private:
    int fd_ = -1;
    std::uint64_t serial_ = 0;  // tells this handle's record from a later one for a reused number
};

// New descriptors, close-on-exec, held from the start; on failure each throws crew::SystemError
// naming what (say, "a pipe's eventfd") with errno's text.
UniqueFd make_eventfd(std::string_view what);                           // non-blocking
std::pair<UniqueFd, UniqueFd> make_socket_pair(std::string_view what);  // a Unix stream socket pair
UniqueFd duplicate(int fd, std::string_view what);

// In a child just forked: closes every descriptor crew opened in the parent, except those in keep
// (passed to this child). Handles the child inherited then close nothing, instead of closing
// reused numbers later.
void close_library_fds_in_child(pid_t parent, std::span<const int> keep) noexcept;

}  // namespace crew::detail
