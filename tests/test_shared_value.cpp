// crew::Value and crew::Array: plain values in shared memory, with their locks, across processes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <crew/crew.hpp>
#include <csignal>
#include <memory>
#include <mutex>
#include <numeric>
#include <string>
#include <tuple>
#include <vector>

#include "support.hpp"

namespace {

using namespace std::chrono_literals;
using crew::StartMethod;

struct Point {
    double x;
    double y;
    bool operator==(const Point&) const = default;
};

constexpr int kIncrements = 2000;

void add_many(crew::Value<long> counter) {
    for (int i = 0; i < kIncrements; ++i) {
        std::lock_guard hold(counter.get_lock());
        counter.set(counter.value() + 1);
    }
}

void fill_squares(crew::Array<double> squares, crew::Value<Point> where) {
    for (std::size_t i = 0; i < squares.size(); ++i) {
        squares[i] = static_cast<double>(i * i);
    }
    where.set({1.5, -2.5});
}

void die_holding(crew::Value<int> value) {
    value.get_lock().acquire();
    raise(SIGKILL);
}

long add_one(crew::Value<long> counter, long) {
    std::lock_guard hold(counter.get_lock());
    counter.set(counter.value() + 1);
    return counter.value();
}

class SharedValueTest : public ::testing::TestWithParam<StartMethod> {
  protected:
    crew::ProcessOptions options() const { return {.start_method = GetParam()}; }
};

TEST_P(SharedValueTest, FourProcessesCountUnderTheLockWithoutLosingAnIncrement) {
    crew::Value<long> counter(0);
    std::vector<std::unique_ptr<crew::Process>> children;
    for (int i = 0; i < 4; ++i) {
        children.push_back(std::make_unique<crew::Process>(options(), add_many, counter));
        children.back()->start();
    }
    for (auto& child : children) {
        child->join();
        EXPECT_EQ(child->exitcode(), 0);
    }
    EXPECT_EQ(counter.value(), 4L * kIncrements);
}

TEST_P(SharedValueTest, WhatAChildWritesTheParentReads) {
    crew::Array<double> squares(100);
    crew::Value<Point> where(Point{0, 0});
    crew::Process child(options(), fill_squares, squares, where);
    child.start();
    child.join();
    ASSERT_EQ(child.exitcode(), 0);
    for (std::size_t i = 0; i < squares.size(); ++i) EXPECT_EQ(squares[i], double(i * i));
    EXPECT_EQ(where.value(), (Point{1.5, -2.5}));
}

TEST_P(SharedValueTest, AHolderThatDiedIsReportedByTheValuesLock) {
    crew::Value<int> value(7);
    crew::Process child(options(), die_holding, value);
    child.start();
    child.join();
    EXPECT_THROW(value.get_lock().acquire(), crew::OwnerDied);
    EXPECT_EQ(value.value(), 7) << "value() takes the recovered lock";
}

// 2,000 pool tasks, each handed the same Value: every increment lands, and the descriptors
// that carried it to the workers are all closed again in the caller.
TEST_P(SharedValueTest, PoolTasksCountInAValueHandedToEach) {
    crew::Value<long> counter(0);
    const auto fds_before = crew::testing::open_fds();
    {
        crew::Pool pool({.processes = 2, .start_method = GetParam()});
        std::vector<crew::AsyncResult<long>> results;
        for (long i = 0; i < 2000; ++i) results.push_back(pool.apply_async(add_one, counter, i));
        for (auto& result : results) result.get(60s);
        std::vector<long> mapped = pool.starmap(
            add_one,
            std::vector<std::tuple<crew::Value<long>, long>>(100, std::tuple(counter, 0L)));
        EXPECT_EQ(mapped.size(), 100u);
    }
    EXPECT_EQ(counter.value(), 2100);
    EXPECT_EQ(crew::testing::open_fds(), fds_before);
}

INSTANTIATE_TEST_SUITE_P(AllStartMethods, SharedValueTest,
                         ::testing::Values(StartMethod::forkserver, StartMethod::fork,
                                           StartMethod::spawn),
                         [](const auto& info) { return std::string(crew::to_string(info.param)); });

TEST(Value, StartsAsGivenAndCopiesShareIt) {
    crew::Value<int> zero;
    EXPECT_EQ(zero.value(), 0);
    crew::Value<double> value(2.5);
    crew::Value<double> copy = value;
    copy.set(4.0);
    EXPECT_EQ(value.value(), 4.0);
    std::lock_guard hold(value.get_lock());  // an RLock: value() still works inside
    value.set(value.value() + 1);
    EXPECT_EQ(copy.value(), 5.0);
}

TEST(Array, ZeroedOrCopiedWithASpanAndCopiesShareIt) {
    crew::Array<int> zeros(5);
    EXPECT_EQ(zeros.size(), 5u);
    for (int element : zeros) EXPECT_EQ(element, 0);
    std::vector<int> values(10);
    std::iota(values.begin(), values.end(), 1);
    crew::Array<long> numbers(values);
    ASSERT_EQ(numbers.size(), 10u);
    EXPECT_EQ(std::accumulate(numbers.begin(), numbers.end(), 0L), 55L);
    crew::Array<long> copy = numbers;  // the same memory, not a new array
    copy.span()[0] = 100;
    EXPECT_EQ(numbers[0], 100);
    EXPECT_EQ(crew::Array<int>(crew::range(3)).span().size(), 3u);
    EXPECT_EQ(crew::Array<char>(0).size(), 0u);
}

}  // namespace
