// process/pidfd.hpp: pidfd system calls. Debian 12's <sys/pidfd.h> declares them without C
// linkage, so C++ programs cannot link against them; these call the kernel directly.
#pragma once

#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

namespace crew::detail {

inline int open_pidfd(pid_t pid) {
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

inline int send_signal_to_pidfd(int pidfd, int signal) {
    return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0));
}

}  // namespace crew::detail
