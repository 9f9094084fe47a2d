// crew::Timeout and the deadline helpers every wait in crew uses: none waits for ever, a duration
// at most that long, zero or less only looks; poll(2)'s milliseconds round up, never to a wait
// that ends early.
#include <gtest/gtest.h>

#include <chrono>
#include <climits>
#include <crew/crew.hpp>

namespace {

using namespace std::chrono_literals;
using crew::detail::Clock;

TEST(Timeout, WholeUnitsOfAnyDurationConvertToIt) {
    const crew::Timeout seconds = 2s;
    const crew::Timeout milliseconds = 1500ms;
    EXPECT_EQ(*seconds, 2'000'000'000ns);
    EXPECT_EQ(*milliseconds, 1'500'000'000ns);
    EXPECT_EQ(crew::detail::timeout_of(std::chrono::duration<double>(0.25)), 250ms);
}

TEST(Timeout, NoneMeansNoDeadlineAndWaitingForEver) {
    EXPECT_FALSE(crew::detail::deadline_for(std::nullopt));
    EXPECT_FALSE(crew::detail::time_left(std::nullopt));
    EXPECT_EQ(crew::detail::milliseconds_until(std::nullopt), -1);
}

TEST(Timeout, ADeadlineLiesTheTimeoutAhead) {
    const auto before = Clock::now();
    const auto deadline = crew::detail::deadline_for(300ms);
    const auto after = Clock::now();
    ASSERT_TRUE(deadline);
    EXPECT_GE(*deadline, before + 300ms);
    EXPECT_LE(*deadline, after + 300ms);
    const auto left = crew::detail::time_left(deadline);
    ASSERT_TRUE(left);
    EXPECT_GT(*left, 0ns);
    EXPECT_LE(*left, 300ms);
}

TEST(Timeout, ZeroOrLessOnlyLooks) {
    for (const crew::Timeout timeout : {crew::Timeout(0s), crew::Timeout(-5s)}) {
        const auto before = Clock::now();
        const auto deadline = crew::detail::deadline_for(timeout);
        ASSERT_TRUE(deadline);
        EXPECT_GE(*deadline, before);
        EXPECT_LE(*deadline, Clock::now());
        EXPECT_EQ(crew::detail::milliseconds_until(deadline), 0);
        EXPECT_LE(*crew::detail::time_left(deadline), 0ns);
    }
}

TEST(Timeout, PollMillisecondsRoundUpAndStayWithinTheBound) {
    EXPECT_EQ(crew::detail::milliseconds_until(Clock::now() + 10h, 60'000), 60'000);
    EXPECT_EQ(crew::detail::milliseconds_until(Clock::now() + std::chrono::hours(24 * 365 * 100)),
              INT_MAX);
    // 1.2 ms left is 2 ms for poll: a wait rounded down would wake before the deadline.
    const int milliseconds = crew::detail::milliseconds_until(Clock::now() + 1200us);
    EXPECT_GE(milliseconds, 1);
    EXPECT_LE(milliseconds, 2);
}

TEST(Timeout, AWaitGivesUpOnceItPasses) {
    crew::Queue<int> queue;
    const auto start = Clock::now();
    EXPECT_THROW(queue.get(50ms), crew::Empty);
    EXPECT_GE(Clock::now() - start, 50ms);
    crew::Event event;
    EXPECT_FALSE(event.wait(0s));
    EXPECT_FALSE(event.wait(20ms));
}

}  // namespace
