// process/fork_server.hpp: the fork server behind the forkserver and spawn start methods.
//
// The server is forked from the program once (ensure_fork_server), single-threaded, and forks
// every forkserver and spawn child. For each child the parent gets a pidfd (to signal it and see
// it end without pid reuse races) and a pipe on which the server writes the child's wait status
// (an int, as from waitpid) once it has reaped it. The server ends when the program does: it
// kills and reaps its children first, and unlinks the named shared memory the program asked it
// to track (so that a crashed program leaves none behind).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <span>
#include <string>

#include "crew/detail/unique_fd.hpp"

namespace crew::detail {

struct ServedChild {
    pid_t pid = 0;
    UniqueFd pidfd;
    UniqueFd status;  // yields the int wait status once, then end of file
};

// Starts this process's fork server unless it runs already.
void ensure_fork_server();

// Has the fork server fork a child that runs the encoded ChildRequest (see child.hpp), or that
// executes the program anew with it when spawn is set; fds go to the child with it, for the
// call's attached descriptors. Restarts a server that has died.
ServedChild start_through_fork_server(bool spawn, std::span<const std::byte> request,
                                      std::span<const int> fds);

// Asks the fork server to unlink the shared-memory segment name (as for shm_unlink) when the
// program ends, if it is still there; forget_shared_memory: no longer.
void track_shared_memory(const std::string& name);
void forget_shared_memory(const std::string& name) noexcept;

// The environment variable that hands a spawned program its request.
inline constexpr const char* spawn_request_variable = "CREW_SPAWN_REQUEST_FD";

}  // namespace crew::detail
