// crew::ProcessPoolExecutor and crew::ThreadPoolExecutor.
#include <gtest/gtest.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <crew/crew.hpp>
#include <csignal>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support.hpp"

namespace {

using namespace std::chrono_literals;

int compute_square(int n) {
    return n * n;
}
int multiply_add(int a, long b, int c) {
    return a * static_cast<int>(b) + c;
}
int crash_at_five(int n) {
    if (n == 5) std::raise(SIGKILL);
    return n;
}
int sleep_ms(int milliseconds) {
    std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds));
    return milliseconds;
}

class ProcessPoolExecutorTest : public ::testing::TestWithParam<crew::StartMethod> {
  protected:
    crew::ProcessPoolExecutorOptions options() const {
        return {.max_workers = 2, .start_method = GetParam()};
    }
};

TEST_P(ProcessPoolExecutorTest, SubmitAndAsCompleted) {
    crew::ProcessPoolExecutor executor(options());
    std::vector<crew::Future<int>> futures;
    for (int i = 0; i < 10; ++i) futures.push_back(executor.submit(compute_square, i));
    std::multiset<int> results;
    for (const auto& future : crew::as_completed(futures)) results.insert(future.result());
    EXPECT_EQ(results, (std::multiset<int>{0, 1, 4, 9, 16, 25, 36, 49, 64, 81}));
}

TEST_P(ProcessPoolExecutorTest, ACrashFailsOneFuture) {
    crew::ProcessPoolExecutor executor(options());
    std::vector<crew::Future<int>> futures;
    for (int i = 0; i < 10; ++i) futures.push_back(executor.submit(crash_at_five, i));
    int failed = 0;
    int sum = 0;
    for (const auto& future : crew::as_completed(futures)) {
        try {
            sum += future.result();
        } catch (const crew::WorkerDied& died) {
            EXPECT_EQ(died.signal(), SIGKILL);
            ++failed;
        }
    }
    EXPECT_EQ(failed, 1);
    EXPECT_EQ(sum, 45 - 5);
}

// A task that throws, crashes its worker, aborts or hangs past task_timeout, among ten: its
// future alone fails, with the error the fault gives, and as_completed yields every future.
TEST_P(ProcessPoolExecutorTest, EachFaultFailsOneFutureInAsCompleted) {
    crew::ProcessPoolExecutorOptions with_timeout = options();
    with_timeout.task_timeout = 1s;
    crew::ProcessPoolExecutor executor(with_timeout);
    for (crew::testing::Fault fault : crew::testing::every_fault) {
        SCOPED_TRACE(to_string(fault));
        std::vector<crew::Future<int>> futures;
        for (const auto& item : crew::testing::faulty_items(fault, 10)) {
            futures.push_back(executor.submit(crew::testing::fail_at_five, item));
        }
        std::vector<std::string> failures;
        int sum = 0;
        int yielded = 0;
        for (const auto& future : crew::as_completed(futures, 60s)) {
            ++yielded;
            if (auto error = future.exception()) {
                failures.push_back(crew::testing::describe_failure(error));
            } else {
                sum += future.result();
            }
        }
        EXPECT_EQ(yielded, 10);
        EXPECT_EQ(failures, std::vector<std::string>{crew::testing::expected_failure(fault)});
        EXPECT_EQ(sum, 45 - 5);
        EXPECT_NE(futures[5].exception(), nullptr);
    }
}

int worker_pid(int) {
    return getpid();
}

// A done callback that throws, run by the pool's broker or a waiting caller, is ignored: the
// worker that ran the task is not taken for broken, and the executor goes on.
TEST_P(ProcessPoolExecutorTest, ACallbackThatThrowsHarmsNothing) {
    crew::ProcessPoolExecutor executor({.max_workers = 1, .start_method = GetParam()});
    const int pid = executor.submit(worker_pid, 0).result(30s);
    crew::Future<int> future = executor.submit(worker_pid, 0);
    future.add_done_callback([](crew::Future<int>) { throw std::runtime_error("callback"); });
    EXPECT_EQ(future.result(30s), pid);
    EXPECT_EQ(executor.submit(worker_pid, 0).result(30s), pid)
        << "the worker was replaced, as if the callback's exception had been the task's";
}

TEST_P(ProcessPoolExecutorTest, MapIsLazyAndOrdered) {
    crew::ProcessPoolExecutor executor(options());
    std::vector<int> results;
    for (int r : executor.map(compute_square, crew::range(1000))) results.push_back(r);
    ASSERT_EQ(results.size(), 1000u);
    for (int i = 0; i < 1000; ++i) EXPECT_EQ(results[i], i * i);
    auto timed =
        executor.map(sleep_ms, std::vector<int>{1, 2000}, {.chunksize = 1, .timeout = 300ms});
    auto it = timed.begin();
    EXPECT_EQ(*it, 1);
    EXPECT_THROW(++it, crew::TimeoutError);
}

// Python's executor.map(f, xs, ys): the ranges side by side, up to the end of the shortest.
TEST_P(ProcessPoolExecutorTest, MapZipsSeveralRanges) {
    crew::ProcessPoolExecutor executor(options());
    const std::vector<int> xs{1, 2, 3, 4};
    std::vector<int> got;
    for (int r : executor.map(multiply_add, xs, std::vector<long>{10, 20, 30}, crew::range(100)))
        got.push_back(r);
    EXPECT_EQ(got, (std::vector<int>{10, 41, 92}));
    got.clear();
    for (int r : executor.map(multiply_add, crew::range(1000), crew::range(1000L), xs,
                              crew::MapOptions{.chunksize = 2, .timeout = 30s}))
        got.push_back(r);
    EXPECT_EQ(got, (std::vector<int>{1, 3, 7, 13}));
}

TEST_P(ProcessPoolExecutorTest, TenThousandSubmits) {
    crew::ProcessPoolExecutor executor(options());
    std::vector<crew::Future<int>> futures;
    for (int i = 0; i < 10'000; ++i) futures.push_back(executor.submit(compute_square, i % 100));
    int wrong = 0;
    for (int i = 0; i < 10'000; ++i) wrong += futures[i].result() != (i % 100) * (i % 100);
    EXPECT_EQ(wrong, 0);
}

// A waiting thread collects its own reply (no thread woken on the way): many of them at once,
// and a submitting thread beside them, each get their own result.
TEST_P(ProcessPoolExecutorTest, ManyWaitingThreadsEachGetTheirOwnResult) {
    crew::ProcessPoolExecutor executor(options());
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 2'000; ++i) {
                const int x = t * 10'000 + i;
                if (executor.submit(compute_square, x % 40'000).result() != x * x) ++wrong;
            }
        });
    }
    std::vector<crew::Future<int>> later;
    for (int i = 0; i < 2'000; ++i) later.push_back(executor.submit(compute_square, i));
    for (auto& thread : threads) thread.join();
    for (int i = 0; i < 2'000; ++i) EXPECT_EQ(later[i].result(), i * i);
    EXPECT_EQ(wrong.load(), 0);
}

// result(timeout) gives up at its deadline even while the waiter does the pool's work, and a
// future keeps its result once the executor that made it is gone.
TEST_P(ProcessPoolExecutorTest, WaitsKeepTheirTimeoutAndFuturesOutliveTheExecutor) {
    std::optional<crew::Future<int>> slow;
    {
        crew::ProcessPoolExecutor executor(options());
        slow = executor.submit(sleep_ms, 300);
        const auto start = std::chrono::steady_clock::now();
        EXPECT_THROW(slow->result(1ms), crew::TimeoutError);
        EXPECT_THROW(slow->result(20ms), crew::TimeoutError);
        EXPECT_LT(std::chrono::steady_clock::now() - start, 250ms);
        EXPECT_FALSE(slow->wait(0ms));
    }
    EXPECT_EQ(slow->result(), 300);
}

TEST_P(ProcessPoolExecutorTest, ShutdownCancelsWhatHasNotStarted) {
    crew::ProcessPoolExecutor executor(options());
    std::vector<crew::Future<int>> futures;
    for (int i = 0; i < 20; ++i) futures.push_back(executor.submit(sleep_ms, 100));
    std::this_thread::sleep_for(50ms);
    executor.shutdown(true, true);
    int cancelled = 0;
    int finished = 0;
    for (auto& future : futures) {
        if (future.cancelled()) {
            ++cancelled;
        } else {
            EXPECT_EQ(future.result(), 100);
            ++finished;
        }
    }
    EXPECT_GT(cancelled, 0);
    EXPECT_GT(finished, 0);
    EXPECT_THROW(executor.submit(compute_square, 1), crew::Error);
}

INSTANTIATE_TEST_SUITE_P(AllStartMethods, ProcessPoolExecutorTest,
                         ::testing::Values(crew::StartMethod::forkserver, crew::StartMethod::fork,
                                           crew::StartMethod::spawn),
                         [](const auto& info) { return std::string(crew::to_string(info.param)); });

std::string this_thread_name() {
    char name[16] = {};
    pthread_getname_np(pthread_self(), name, sizeof name);
    return name;
}

thread_local int thread_setting = 0;

// Python's ThreadPoolExecutor(thread_name_prefix=..., initializer=...).
TEST(ThreadPoolExecutor, NamesItsThreadsAndRunsTheInitializerInEach) {
    std::atomic<int> initialized{0};
    crew::ThreadPoolExecutor executor(
        {.max_workers = 2, .thread_name_prefix = "worker", .initializer = [&] {
             thread_setting = 7;
             ++initialized;
         }});
    std::set<std::string> names;
    for (int i = 0; i < 50; ++i) {
        auto [name, setting] =
            executor.submit([] { return std::pair(this_thread_name(), thread_setting); })
                .result(30s);
        EXPECT_EQ(setting, 7) << "the task ran before its thread's initializer";
        names.insert(name);
    }
    for (const std::string& name : names) {
        EXPECT_TRUE(name == "worker_0" || name == "worker_1") << name;
    }
    executor.shutdown();
    EXPECT_EQ(initialized.load(), 2);
    crew::ThreadPoolExecutor unnamed({.max_workers = 1});
    EXPECT_EQ(unnamed.submit(this_thread_name).result(30s).rfind("ThreadPool-", 0), 0u);
}

TEST(ThreadPoolExecutor, AFailingInitializerBreaksTheExecutor) {
    crew::ThreadPoolExecutor executor(
        {.max_workers = 1, .initializer = [] { throw std::runtime_error("no connection"); }});
    try {
        executor.submit([] { return 1; }).result(30s);
        ADD_FAILURE() << "a task ran on a thread whose initializer threw";
    } catch (const crew::BrokenPool& broken) {
        EXPECT_NE(std::string(broken.what()).find("std::runtime_error: no connection"),
                  std::string::npos)
            << broken.what();
    }
    EXPECT_THROW(executor.submit([] { return 2; }), crew::BrokenPool) << "and takes no more";
}

TEST(ThreadPoolExecutor, TakesAnyCallable) {
    crew::ThreadPoolExecutor executor({.max_workers = 4});
    int offset = 10;
    auto future = executor.submit([offset](int x) { return x + offset; }, 5);
    EXPECT_EQ(future.result(), 15);
    std::vector<int> results;
    for (int r : executor.map([&](int x) { return x * offset; }, crew::range(100))) {
        results.push_back(r);
    }
    ASSERT_EQ(results.size(), 100u);
    EXPECT_EQ(results[99], 990);
    executor.submit([] {}).result();
}

TEST(ThreadPoolExecutor, ShutdownCancelsPendingFutures) {
    crew::ThreadPoolExecutor executor({.max_workers = 1});
    auto running = executor.submit(sleep_ms, 100);
    auto pending = executor.submit(sleep_ms, 100);
    std::this_thread::sleep_for(30ms);
    executor.shutdown(true, true);
    EXPECT_EQ(running.result(), 100);
    EXPECT_TRUE(pending.cancelled());
    EXPECT_THROW(executor.submit(sleep_ms, 1), crew::Error);
}

// Four threads submit at once to two: every future completes with its own result.
TEST(ThreadPoolExecutor, ManySubmittingThreadsLoseNothing) {
    crew::ThreadPoolExecutor executor({.max_workers = 2});
    constexpr int submitters = 4;
    constexpr int per_submitter = 25'000;
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < submitters; ++t) {
        threads.emplace_back([&, t] {
            std::vector<crew::Future<int>> futures;
            // Each submitter's numbers are its own: t * 10,000 + i % 10,000, squares below 2^31.
            auto number = [t](int i) { return t * 10'000 + i % 10'000; };
            for (int i = 0; i < per_submitter; ++i) {
                futures.push_back(executor.submit(compute_square, number(i)));
            }
            for (int i = 0; i < per_submitter; ++i) {
                if (futures[i].result(30s) != number(i) * number(i)) ++wrong;
            }
        });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(wrong.load(), 0);
}

// The threads fall asleep between small bursts of work: each burst must wake one (a lost
// wake-up would leave a future undone: result(timeout) throws instead of hanging).
TEST(ThreadPoolExecutor, SleepingThreadsWakeForEachBurst) {
    crew::ThreadPoolExecutor executor({.max_workers = 2});
    for (int round = 0; round < 200; ++round) {
        std::this_thread::sleep_for(std::chrono::microseconds(round % 5 * 400));
        std::vector<crew::Future<int>> futures;
        for (int i = 0; i <= round % 7; ++i) futures.push_back(executor.submit(compute_square, i));
        for (int i = 0; i <= round % 7; ++i) ASSERT_EQ(futures[i].result(10s), i * i) << round;
    }
    // Windows of submits, each followed by its results: the threads run dry and sleep at the end
    // of each, while the submitter is busy.
    for (int window = 0; window < 50; ++window) {
        std::vector<crew::Future<int>> futures;
        for (int i = 0; i < 2000; ++i) futures.push_back(executor.submit(compute_square, i % 100));
        for (int i = 0; i < 2000; ++i) {
            ASSERT_EQ(futures[i].result(10s), (i % 100) * (i % 100)) << window;
        }
    }
}

// A thread submits as fast as it can while another shuts the executor down: each submit either
// throws or gives a future that completes.
TEST(ThreadPoolExecutor, ShutdownWhileSubmittingLeavesNoFutureUndone) {
    for (int round = 0; round < 20; ++round) {
        crew::ThreadPoolExecutor executor({.max_workers = 2});
        std::vector<crew::Future<int>> futures;
        std::thread submitter([&] {
            try {
                for (int i = 0; i < 1'000'000; ++i)
                    futures.push_back(executor.submit(compute_square, 3));
            } catch (const crew::Error&) {
            }
        });
        std::this_thread::sleep_for(std::chrono::microseconds(round * 100));
        executor.shutdown();
        submitter.join();
        for (const auto& future : futures) ASSERT_EQ(future.result(10s), 9);
    }
}

TEST(ThreadPoolExecutor, MapZipsSeveralRanges) {
    crew::ThreadPoolExecutor executor({.max_workers = 2});
    const std::vector<std::string> words{"a", "bb", "ccc"};
    std::vector<std::string> got;
    for (std::string r : executor.map(
             [](const std::string&word, int times) {
                 std::string out;
                 for (int i = 0; i < times; ++i) out += word;
                 return out;
             },
             words, crew::range(1, 10)))
        got.push_back(r);
    EXPECT_EQ(got, (std::vector<std::string>{"a", "bbbb", "ccccccccc"}));
    std::vector<int> sums;
    for (int r : executor.map(multiply_add, std::vector<int>{}, crew::range(5L), crew::range(5),
                              crew::MapOptions{.timeout = 30s}))
        sums.push_back(r);
    EXPECT_TRUE(sums.empty());
}

TEST(ThreadPoolExecutor, DefaultSize) {
    crew::ThreadPoolExecutor executor;
    EXPECT_EQ(executor.max_workers(), std::min(32, crew::cpu_count() + 4));
}

}  // namespace
