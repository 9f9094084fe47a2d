// foundation/library_lock.hpp: the one lock over crew's process-wide state.
//
// The descriptor list, the fork server's handle, the list of live children and the code registry
// are all guarded by this recursive mutex. One lock means no lock order to get wrong, and one
// pthread_atfork handler holds it across every fork(), whoever calls it, so a child always finds
// that state whole; in the child the lock is made anew, free. A module whose state must change in
// a fork child (say, be emptied) registers its own child handler with on_fork_child.
#pragma once

#include <mutex>

namespace crew::detail {

std::recursive_mutex& library_mutex();

// Runs reset in every child forked from now on, after the library lock is made anew.
void on_fork_child(void (*reset)());

}  // namespace crew::detail
