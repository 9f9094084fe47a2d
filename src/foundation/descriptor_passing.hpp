// foundation/descriptor_passing.hpp: sending bytes with file descriptors attached over a Unix
// socket (SCM_RIGHTS), as the fork server and pool workers receive theirs.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "crew/detail/unique_fd.hpp"

namespace crew::detail {

// The most descriptors one message carries.
inline constexpr std::size_t max_fds_per_message = 64;

// Sends size bytes, with fds attached to the first of them; false on error (errno says which).
// Throws crew::Error for more than max_fds_per_message descriptors.
bool send_with_fds(int socket, const void* data, std::size_t size, std::span<const int> fds);

// Receives exactly size bytes and the descriptors that came with them, which it owns from then
// on. Returns false at end of file or on error (errno is 0 at end of file).
bool receive_with_fds(int socket, void* data, std::size_t size, std::vector<UniqueFd>& fds);

}  // namespace crew::detail
