// crew/detail/futex.hpp: sleeping on a 32-bit word in shared memory until another process wakes
// it. Process-shared (not FUTEX_PRIVATE): the word may be mapped at different addresses.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <ctime>

namespace crew::detail {

static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

// Sleeps while *word == expected, at most timeout (forever if null). Returns at once if the word
// differs; may also return spuriously, so callers re-check their condition.
inline void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                       const timespec* timeout = nullptr) {
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT, expected, timeout,
              nullptr, 0);
}

inline void futex_wake(std::atomic<std::uint32_t>& word, int count) {
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, count, nullptr,
              nullptr, 0);
}

inline void futex_wake_all(std::atomic<std::uint32_t>& word) {
    futex_wake(word, INT32_MAX);
}

}  // namespace crew::detail
