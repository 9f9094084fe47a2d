// crew::Future, as_completed and wait: concurrent.futures semantics.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <crew/crew.hpp>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

using namespace std::chrono_literals;

int sleep_then_return(int milliseconds) {
    std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds));
    return milliseconds;
}

TEST(Future, ResultExceptionDoneRunning) {
    crew::ThreadPoolExecutor executor({.max_workers = 1});
    crew::Future<int> slow = executor.submit(sleep_then_return, 200);
    crew::Future<int> queued = executor.submit(sleep_then_return, 1);
    std::this_thread::sleep_for(50ms);
    EXPECT_TRUE(slow.running());
    EXPECT_FALSE(slow.done());
    EXPECT_FALSE(queued.running());
    EXPECT_THROW(slow.result(10ms), crew::TimeoutError);
    EXPECT_EQ(slow.result(), 200);
    EXPECT_TRUE(slow.done());
    EXPECT_EQ(slow.exception(), nullptr);
    EXPECT_EQ(queued.result(30s), 1);

    crew::Future<int> failing = executor.submit([]() -> int { throw std::logic_error("no"); });
    EXPECT_THROW(failing.result(), std::logic_error);
    EXPECT_NE(failing.exception(), nullptr);
}

TEST(Future, CancelOnlyWhilePending) {
    crew::ThreadPoolExecutor executor({.max_workers = 1});
    crew::Future<int> running = executor.submit(sleep_then_return, 200);
    crew::Future<int> pending = executor.submit(sleep_then_return, 200);
    std::this_thread::sleep_for(50ms);
    EXPECT_FALSE(running.cancel());
    EXPECT_TRUE(pending.cancel());
    EXPECT_TRUE(pending.cancelled());
    EXPECT_TRUE(pending.done());
    EXPECT_THROW(pending.result(), crew::Cancelled);
    EXPECT_EQ(running.result(), 200);
    EXPECT_FALSE(running.cancelled());
}

TEST(Future, DoneCallbacksRunOnceDone) {
    crew::ThreadPoolExecutor executor({.max_workers = 2});
    std::atomic<int> calls{0};
    crew::Future<int> future = executor.submit(sleep_then_return, 50);
    future.add_done_callback([&](crew::Future<int> done) { calls += done.result(); });
    future.wait();
    for (int i = 0; i < 100 && calls.load() == 0; ++i) std::this_thread::sleep_for(1ms);
    EXPECT_EQ(calls.load(), 50);
    future.add_done_callback([&](crew::Future<int> done) { calls += done.result(); });
    EXPECT_EQ(calls.load(), 100) << "on a done future it runs at once";
}

// Callbacks added by several threads while the task finishes: each runs exactly once, whether it
// was added before the future was done (run by the finishing thread) or after (run at once).
TEST(Future, CallbacksAddedAsTheTaskFinishesRunOnce) {
    crew::ThreadPoolExecutor executor({.max_workers = 2});
    for (int round = 0; round < 50; ++round) {
        std::atomic<int> calls{0};
        crew::Future<int> future = executor.submit(sleep_then_return, round % 3);
        std::vector<std::thread> adders;
        for (int t = 0; t < 3; ++t) {
            adders.emplace_back([&] {
                for (int i = 0; i < 200; ++i)
                    future.add_done_callback([&](crew::Future<int>) { ++calls; });
            });
        }
        for (auto& adder : adders) adder.join();
        future.wait();
        // Those added in time run on the finishing thread, just after it marks the future done.
        const auto give_up = std::chrono::steady_clock::now() + 5s;
        while (calls.load() < 600 && std::chrono::steady_clock::now() < give_up) {
            std::this_thread::sleep_for(100us);
        }
        EXPECT_EQ(calls.load(), 600) << round;
    }
}

// As concurrent.futures: a callback's exception is logged and ignored; the callbacks after it
// run, and so do the executor's threads.
TEST(Future, ACallbackThatThrowsIsIgnored) {
    crew::ThreadPoolExecutor executor({.max_workers = 1});
    std::atomic<int> later_calls{0};
    crew::Future<int> future = executor.submit(sleep_then_return, 20);
    future.add_done_callback([](crew::Future<int>) { throw std::runtime_error("callback"); });
    future.add_done_callback([&](crew::Future<int>) { ++later_calls; });
    EXPECT_EQ(future.result(), 20);
    EXPECT_NO_THROW(
        future.add_done_callback([](crew::Future<int>) { throw std::runtime_error("at once"); }));
    EXPECT_EQ(executor.submit(sleep_then_return, 1).result(10s), 1);
    EXPECT_EQ(later_calls.load(), 1);
}

TEST(Future, AsCompletedYieldsInCompletionOrder) {
    crew::ThreadPoolExecutor executor({.max_workers = 3});
    std::vector<crew::Future<int>> futures{executor.submit(sleep_then_return, 300),
                                           executor.submit(sleep_then_return, 10),
                                           executor.submit(sleep_then_return, 150)};
    std::vector<int> order;
    for (const auto& future : crew::as_completed(futures)) order.push_back(future.result());
    EXPECT_EQ(order, (std::vector<int>{10, 150, 300}));
}

TEST(Future, AsCompletedTimesOut) {
    crew::ThreadPoolExecutor executor({.max_workers = 2});
    std::vector<crew::Future<int>> futures{executor.submit(sleep_then_return, 1),
                                           executor.submit(sleep_then_return, 2000)};
    auto completed = crew::as_completed(futures, 200ms);
    auto it = completed.begin();
    EXPECT_EQ((*it).result(), 1);
    EXPECT_THROW(++it, crew::TimeoutError);
}

// Python's {executor.submit(f, x): x for x in xs} idiom, with an unordered_map and a map.
TEST(Future, FuturesKeyMapsAndAsCompletedTakesTheMap) {
    crew::ThreadPoolExecutor executor({.max_workers = 2});
    std::unordered_map<crew::Future<int>, int> future_tasks;
    for (int i = 0; i < 20; ++i) future_tasks[executor.submit(sleep_then_return, i)] = i;
    EXPECT_EQ(future_tasks.size(), 20u) << "each future is its own key";
    std::set<int> inputs;
    for (const crew::Future<int>& future : crew::as_completed(future_tasks)) {
        EXPECT_EQ(future.result(), future_tasks.at(future));
        inputs.insert(future_tasks.at(future));
    }
    EXPECT_EQ(inputs.size(), 20u);

    std::map<crew::Future<int>, int> ordered;
    crew::Future<int> first = executor.submit(sleep_then_return, 1);
    crew::Future<int> copy = first;
    ordered[first] = 1;
    ordered[copy] = 2;
    ordered[executor.submit(sleep_then_return, 2)] = 3;
    EXPECT_EQ(ordered.size(), 2u) << "a copy is the same future";
    EXPECT_EQ(ordered.at(first), 2);
    EXPECT_TRUE(first == copy && !(first < copy) && !(copy < first));
    EXPECT_EQ(std::hash<crew::Future<int>>()(first), std::hash<crew::Future<int>>()(copy));
}

TEST(Future, WaitSortsDoneFromNotDone) {
    crew::ThreadPoolExecutor executor({.max_workers = 3});
    std::vector<crew::Future<int>> futures{executor.submit(sleep_then_return, 10),
                                           executor.submit(sleep_then_return, 1500)};
    auto first = crew::wait(futures, crew::FIRST_COMPLETED);
    EXPECT_EQ(first.done.size(), 1u);
    EXPECT_EQ(first.done.front().result(), 10);
    EXPECT_EQ(first.not_done.size(), 1u);
    auto timed = crew::wait(futures, crew::ALL_COMPLETED, 50ms);
    EXPECT_EQ(timed.not_done.size(), 1u);
    auto all = crew::wait(futures);
    EXPECT_EQ(all.done.size(), 2u);
    EXPECT_TRUE(all.not_done.empty());

    std::vector<crew::Future<int>> with_failure{
        executor.submit(sleep_then_return, 1500),
        executor.submit([]() -> int { throw std::runtime_error("x"); })};
    auto failed = crew::wait(with_failure, crew::FIRST_EXCEPTION);
    EXPECT_EQ(failed.done.size(), 1u);
    EXPECT_NE(failed.done.front().exception(), nullptr);
}

}  // namespace
