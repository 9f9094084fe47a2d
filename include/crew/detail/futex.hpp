// crew/detail/futex.hpp: sleeping on a 32-bit word in shared memory until another process wakes
// it, forever or until a deadline. Process-shared (not FUTEX_PRIVATE): the word may be mapped at
// different addresses; the _private variants are for words only one process's threads touch.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <optional>

#include "crew/timeout.hpp"

namespace crew::detail {

static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

// How long a sleep on another process's wake-up lasts before the sleeper looks again: that
// process may have died between its change and its wake-up, and a dead process wakes nobody.
inline constexpr std::chrono::milliseconds lost_wake_up_interval{100};

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

// The same for a word that only this process's threads use: the kernel skips the lookup of a
// shared mapping.
inline void futex_wait_private(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                               const timespec* timeout = nullptr) {
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected,
              timeout, nullptr, 0);
}

inline void futex_wake_private(std::atomic<std::uint32_t>& word, int count) {
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, count,
              nullptr, nullptr, 0);
}

inline timespec to_timespec(std::chrono::nanoseconds duration) {
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(duration);
    return {static_cast<time_t>(seconds.count()), static_cast<long>((duration - seconds).count())};
}

// Sleeps while word holds expected, until woken or the deadline; false once it has passed.
inline bool sleep_while(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                        const Deadline& deadline) {
    if (!deadline) {
        futex_wait(word, expected);
        return true;
    }
    const auto left = *deadline - Clock::now();
    if (left <= std::chrono::nanoseconds(0)) return false;
    const timespec relative = to_timespec(left);
    futex_wait(word, expected, &relative);
    return true;
}

}  // namespace crew::detail
