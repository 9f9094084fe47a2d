// crew/timeout.hpp: how long a call may wait, said one way across crew.
//
//     queue.get(std::chrono::milliseconds(200));   // a crew::Timeout: gives up after 200 ms
//     queue.get();                                 // no timeout: waits as long as it takes
//     pool.map(f, xs, {.timeout = std::chrono::seconds(5)});
//
// crew::Timeout is Python's timeout=None-or-seconds: std::nullopt waits for ever, a duration
// waits at most that long, and zero or less only looks. Every wait in crew takes one, or a
// std::chrono duration of any unit (1.5s too) that it turns into one. What happens when it passes
// is the waiting call's to say: Python's acquire(timeout=...) returns false, get raises.
#pragma once

#include <algorithm>
#include <chrono>
#include <climits>
#include <optional>

namespace crew {

using Timeout = std::optional<std::chrono::nanoseconds>;

namespace detail {

using Clock = std::chrono::steady_clock;
// When a wait must give up; none: never.
using Deadline = std::optional<Clock::time_point>;

inline Deadline deadline_for(const Timeout& timeout) {
    if (!timeout) return std::nullopt;
    const auto now = Clock::now();
    return timeout->count() > 0 ? now + *timeout : now;
}

// What is left of a wait until the deadline, as a Timeout: none without a deadline, zero or less
// once it has passed.
inline Timeout time_left(const Deadline& deadline) {
    if (!deadline) return std::nullopt;
    return std::chrono::duration_cast<std::chrono::nanoseconds>(*deadline - Clock::now());
}

template <class Rep, class Period>
Timeout timeout_of(std::chrono::duration<Rep, Period> duration) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(duration);
}

// The time left until the deadline in whole milliseconds, rounded up, for poll(2) and
// epoll_wait(2): -1 (for ever) without a deadline, 0 once it has passed, at most most.
inline int milliseconds_until(const Deadline& deadline, int most = INT_MAX) {
    if (!deadline) return -1;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now());
    return static_cast<int>(std::clamp<long long>(left.count(), 0, most));
}

}  // namespace detail
}  // namespace crew
