// crew::Pool: Python's multiprocessing.Pool semantics, its faults and its resources.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <chrono>
#include <crew/crew.hpp>
#include <crew/detail/message_ring.hpp>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "support.hpp"

namespace {

using namespace std::chrono_literals;
using crew::StartMethod;

int square(int x) {
    return x * x;
}
int add(int a, int b) {
    return a + b;
}
std::string greet(std::string name) {
    return "hello " + name;
}
int worker_pid(int) {
    return getpid();
}
int sleep_then_pid(int milliseconds) {
    std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds));
    return getpid();
}
void do_nothing() {}
std::string file_name(std::filesystem::path path) {
    return path.filename().string();
}
std::filesystem::path parent_of(const std::filesystem::path& path) {
    return path.parent_path();
}
int throw_at_three(int x) {
    if (x == 3) throw std::invalid_argument("three is not allowed");
    return x;
}
int crash_at_three(int x) {
    if (x == 3) std::raise(SIGSEGV);
    return x;
}
int abort_now(int) {
    std::abort();
}
// _exit: the status is the point. exit() would also run the sanitizers' leak check, which in a
// child forked from a threaded parent sees memory held by the threads it lacks as leaked.
int exit_three(int) {
    _exit(3);
}
int sleep_ms(int milliseconds) {
    std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds));
    return milliseconds;
}
// Crashes the first time it runs for a given marker file, then succeeds.
int crash_once(std::string marker) {
    if (!std::ifstream(marker)) {
        std::ofstream(marker) << "crashed once";
        std::raise(SIGKILL);
    }
    return 7;
}
std::vector<char> reversed(std::vector<char> bytes) {
    std::reverse(bytes.begin(), bytes.end());
    return bytes;
}

// Run in a pool of one worker: writes a reply of three bytes, which no worker sends, into its own
// channel (found in /proc/self/maps), as a task that scribbles over memory might, wakes the
// broker as a reply does (through the pool's eventfd, one of those this process holds), then
// waits to be killed.
int scribble_over_the_reply_ring(int) {
    std::ifstream maps("/proc/self/maps");
    for (std::string line; std::getline(maps, line);) {
        if (line.find("crew-pool-worker-channel") == std::string::npos) continue;
        const std::uintptr_t begin = std::stoull(line.substr(0, line.find('-')), nullptr, 16);
        const std::uintptr_t end = std::stoull(line.substr(line.find('-') + 1), nullptr, 16);
        const std::size_t capacity = std::bit_floor((end - begin) / 2);
        auto* replies =
            reinterpret_cast<std::byte*>(begin) + crew::detail::ring_footprint(capacity);
        crew::detail::RingWriter writer(replies, capacity);
        writer.resume();
        const std::byte garbage[3]{};
        writer.write(garbage, crew::detail::RingWriter::later);
        for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
            std::error_code ignored;
            if (std::filesystem::read_symlink(entry.path(), ignored) != "anon_inode:[eventfd]") {
                continue;
            }
            const std::uint64_t one = 1;
            (void)!::write(std::stoi(entry.path().filename().string()), &one, sizeof one);
        }
        std::this_thread::sleep_for(10s);
        return 1;
    }
    return 0;
}

int initialized_value = 0;
void initialize(int value) {
    initialized_value = value;
}
void fail_to_initialize(int) {
    throw std::runtime_error("no database");
}
void crash_while_initializing(int) {
    std::raise(SIGSEGV);
}

int read_initialized(int) {
    return initialized_value;
}

class PoolTest : public ::testing::TestWithParam<StartMethod> {
  protected:
    crew::PoolOptions options(int processes = 2) const {
        return {.processes = processes, .start_method = GetParam()};
    }
};

TEST_P(PoolTest, MapGivesResultsInInputOrder) {
    crew::Pool pool(options());
    EXPECT_EQ(pool.map(square, crew::range(10)),
              (std::vector<int>{0, 1, 4, 9, 16, 25, 36, 49, 64, 81}));
    std::vector<int> input{5, 3, 9};
    EXPECT_EQ(pool.map(square, input, 1), (std::vector<int>{25, 9, 81}));
    EXPECT_EQ(pool.map(square, crew::range(100), 7), pool.map(square, crew::range(100)));
    EXPECT_TRUE(pool.map(square, std::vector<int>{}).empty());
}

TEST_P(PoolTest, MapTakesAnyInputRange) {
    crew::Pool pool(options());
    auto odd = crew::range(20) | std::views::filter([](int x) { return x % 2 == 1; });
    EXPECT_EQ(pool.map(square, odd), (std::vector<int>{1, 9, 25, 49, 81, 121, 169, 225, 289, 361}));
    std::vector<std::string> names{"ann", "bob"};
    EXPECT_EQ(pool.map(greet, names), (std::vector<std::string>{"hello ann", "hello bob"}));
    EXPECT_EQ(pool.map([](double x) { return x / 2; }, std::vector<double>{1, 3}),
              (std::vector<double>{0.5, 1.5}));
}

long twice(long x) {
    return 2 * x;
}

// Plain numbers travel a chunk at a time as one block: from contiguous memory, from a counting
// range, converted on the way; across chunk and message boundaries nothing is lost or repeated.
TEST_P(PoolTest, MapOfPlainNumbersKeepsEveryItemInOrder) {
    crew::Pool pool(options());
    constexpr long count = 200'003;
    std::vector<long> expected(count);
    for (long i = 0; i < count; ++i) expected[static_cast<std::size_t>(i)] = 2 * i;
    std::vector<long> longs(count);
    std::iota(longs.begin(), longs.end(), 0L);
    std::vector<int> ints(longs.begin(), longs.end());
    EXPECT_EQ(pool.map(twice, longs), expected);
    EXPECT_EQ(pool.map(twice, ints), expected);
    EXPECT_EQ(pool.map(twice, crew::range(count)), expected);
    EXPECT_EQ(pool.map(twice, crew::range(0L, count), 777), expected);
    std::vector<long> tail(expected.begin() + 5, expected.end());
    EXPECT_EQ(pool.map(twice, std::span(longs).subspan(5)), tail);
}

// A counting range travels as its first value a chunk; each call still gets its own number,
// converted as the element-wise path would, negative numbers and errors included.
TEST_P(PoolTest, CountingRangesGiveEachCallItsNumber) {
    crew::Pool pool(options());
    std::vector<long> expected;
    for (int i = -50'000; i < 50'001; ++i) expected.push_back(2L * i);
    EXPECT_EQ(pool.map(twice, crew::range(-50'000, 50'001)), expected);
    EXPECT_EQ(pool.map(twice, std::views::iota(-50'000, 50'001), 3), expected);
    auto results = pool.imap(throw_at_three, std::views::iota(0), 2);
    auto it = results.begin();
    for (int i = 0; i < 3; ++i, ++it) EXPECT_EQ(*it, i);
    EXPECT_THROW(*it, std::invalid_argument);
    ++it;
    EXPECT_EQ(*it, 4);
}

TEST_P(PoolTest, TasksSubmittedOneByOneGoToIdleWorkers) {
    crew::Pool pool(options());
    auto first = pool.apply_async(sleep_then_pid, 300);
    auto second = pool.apply_async(sleep_then_pid, 300);
    EXPECT_NE(first.get(), second.get()) << "the second task queued behind the first";
}

// No worker sits idle while a task that has not started waits behind a busy one.
TEST_P(PoolTest, ATaskNeverWaitsBehindABusyWorkerWhileAnotherIsIdle) {
    crew::Pool pool(options(2));
    crew::ProcessPoolExecutor executor({.max_workers = 2, .start_method = GetParam()});
    for (int round = 0; round < 2; ++round) {
        std::vector<crew::Future<int>> futures;
        for (int milliseconds : {400, 10, 200}) {
            futures.push_back(executor.submit(sleep_ms, milliseconds));
        }
        std::vector<int> finished;
        for (const auto& future : crew::as_completed(futures, 30s)) {
            finished.push_back(future.result());
        }
        EXPECT_EQ(finished, (std::vector<int>{10, 200, 400})) << "round " << round;
    }
    auto first = pool.apply_async(sleep_ms, 400);
    auto second = pool.apply_async(sleep_ms, 10);
    auto third = pool.apply_async(sleep_ms, 200);
    EXPECT_EQ(third.get(), 200);
    EXPECT_TRUE(second.ready());
    EXPECT_FALSE(first.ready()) << "the 200 ms task waited behind the 400 ms one";
    EXPECT_EQ(first.get(), 400);
}

TEST_P(PoolTest, MapAsyncReturnsAtOnce) {
    crew::Pool pool(options());
    auto slow = pool.map_async(sleep_ms, std::vector<int>{300, 300});
    EXPECT_FALSE(slow.ready());
    EXPECT_THROW(slow.successful(), crew::Error);
    EXPECT_FALSE(slow.wait(10ms));
    EXPECT_EQ(slow.get(), (std::vector<int>{300, 300}));
    EXPECT_TRUE(slow.ready());
    EXPECT_TRUE(slow.successful());
    EXPECT_EQ(slow.get(), (std::vector<int>{300, 300})) << "get() may be called again";
}

TEST_P(PoolTest, Starmap) {
    crew::Pool pool(options());
    std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}, {5, 6}};
    EXPECT_EQ(pool.starmap(add, pairs), (std::vector<int>{3, 7, 11}));
    std::vector<std::pair<int, int>> std_pairs{{10, 1}};
    EXPECT_EQ(pool.starmap_async(add, std_pairs).get(), std::vector<int>{11});
}

TEST_P(PoolTest, ApplyAndApplyAsync) {
    crew::Pool pool(options());
    EXPECT_EQ(pool.apply(add, 40, 2), 42);
    EXPECT_EQ(pool.apply(greet, "you"), "hello you");
    pool.apply(do_nothing);
    EXPECT_EQ(pool.apply(file_name, std::filesystem::path("/data/run 1.csv")), "run 1.csv");
    EXPECT_EQ(pool.apply(file_name, "/data/run 2.csv"), "run 2.csv");
    EXPECT_EQ(pool.map(parent_of, std::vector<std::filesystem::path>{"/a/b", "c/d"}),
              (std::vector<std::filesystem::path>{"/a", "c"}));
    auto result = pool.apply_async(sleep_ms, 300);
    EXPECT_THROW(result.get(10ms), crew::TimeoutError);
    EXPECT_EQ(result.get(30s), 300);
}

// Python's callback= and error_callback=: each runs once, with the result or the error, and
// has run by the time get() returns.
TEST_P(PoolTest, AsyncCallsTakeCallbackAndErrorCallback) {
    crew::Pool pool(options());
    std::atomic<int> squared{0};
    std::atomic<int> errors{0};
    auto result =
        pool.apply_async(square, 7, crew::callback([&](const int& value) { squared += value; }),
                         crew::error_callback([&](std::exception_ptr) { ++errors; }));
    EXPECT_EQ(result.get(), 49);
    EXPECT_EQ(squared.load(), 49);

    std::string message;
    auto failed =
        pool.apply_async(throw_at_three, 3, crew::error_callback([&](std::exception_ptr e) {
                             try {
                                 std::rethrow_exception(e);
                             } catch (const std::exception& error) {
                                 message = error.what();
                             }
                         }));
    failed.wait();
    EXPECT_NE(message.find("three"), std::string::npos) << message;
    EXPECT_THROW(failed.get(), std::exception);

    std::atomic<int> done_calls{0};
    pool.apply_async(do_nothing, crew::callback([&] { ++done_calls; })).get();
    EXPECT_EQ(done_calls.load(), 1);

    std::vector<int> all;
    auto mapped =
        pool.map_async(square, crew::range(100), 7,
                       crew::callback([&](const std::vector<int>& values) { all = values; }));
    EXPECT_EQ(mapped.get().size(), 100u);
    ASSERT_EQ(all.size(), 100u);
    EXPECT_EQ(all[99], 99 * 99);

    std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}};
    std::vector<int> sums;
    std::atomic<int> map_errors{0};
    auto starred = pool.starmap_async(
        add, pairs, crew::callback([&](const std::vector<int>& values) { sums = values; }),
        crew::error_callback([&](std::exception_ptr) { ++map_errors; }));
    EXPECT_EQ(starred.get(), (std::vector<int>{3, 7}));
    EXPECT_EQ(sums, (std::vector<int>{3, 7}));

    // The first failed item's error, once, and no result callback.
    std::atomic<int> map_results{0};
    auto failing = pool.map_async(throw_at_three, crew::range(10),
                                  crew::callback([&](const std::vector<int>&) { ++map_results; }),
                                  crew::error_callback([&](std::exception_ptr) { ++map_errors; }));
    EXPECT_THROW(failing.get(), std::exception);
    EXPECT_EQ(map_results.load(), 0);
    EXPECT_EQ(map_errors.load(), 1);
    EXPECT_EQ(errors.load(), 0);

    // A callback that throws is ignored: the result stands, and the pool goes on.
    auto throwing = pool.apply_async(
        square, 3, crew::callback([](int) { throw std::runtime_error("callback failed"); }));
    EXPECT_EQ(throwing.get(), 9);
    EXPECT_EQ(pool.apply(square, 4), 16);
}

TEST_P(PoolTest, AnExceptionComesBackAsItsOwnType) {
    crew::Pool pool(options());
    try {
        pool.map(throw_at_three, crew::range(10), 1);
        FAIL() << "map should have thrown";
    } catch (const std::invalid_argument& error) {
        const std::string what = error.what();
        EXPECT_EQ(what.rfind("three is not allowed (in worker pid ", 0), 0u) << what;
        EXPECT_EQ(what.find("(in worker pid " + std::to_string(getpid()) + ")"), std::string::npos)
            << "raised in a worker, not here";
    }
    auto failed = pool.apply_async(throw_at_three, 3);
    failed.wait();
    EXPECT_FALSE(failed.successful());
    EXPECT_THROW(failed.get(), std::invalid_argument);
    EXPECT_EQ(pool.apply(throw_at_three, 4), 4) << "the pool goes on";
}

TEST_P(PoolTest, ImapRaisesAtTheFailedItemsPlace) {
    crew::Pool pool(options());
    std::vector<int> seen;
    int failures = 0;
    auto results = pool.imap(throw_at_three, crew::range(6), 1);
    for (auto it = results.begin(); it != results.end(); ++it) {
        try {
            seen.push_back(*it);
        } catch (const std::invalid_argument& error) {
            EXPECT_EQ(seen.size(), 3u) << "the error comes at the failed item's place";
            EXPECT_EQ(std::string(error.what()).rfind("three is not allowed", 0), 0u);
            ++failures;
        }
    }
    EXPECT_EQ(failures, 1);
    EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 4, 5}));
}

// One chunk of ten calls: the values before and after the failed call still arrive, in place.
TEST_P(PoolTest, AFailedCallInAChunkKeepsTheOthersResults) {
    crew::Pool pool(options());
    std::vector<int> seen;
    std::vector<std::size_t> failed_at;
    auto results = pool.imap(throw_at_three, crew::range(10), 10);
    for (auto it = results.begin(); it != results.end(); ++it) {
        try {
            seen.push_back(*it);
        } catch (const std::invalid_argument& error) {
            EXPECT_EQ(std::string(error.what()).rfind("three is not allowed", 0), 0u);
            failed_at.push_back(seen.size());
        }
    }
    EXPECT_EQ(failed_at, std::vector<std::size_t>{3});
    EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 4, 5, 6, 7, 8, 9}));
    EXPECT_EQ(pool.map(square, crew::range(1000), 1000)[999], 999 * 999);
}

TEST_P(PoolTest, ACrashFailsOnlyItsTask) {
    crew::Pool pool(options());
    std::set<int> pids_before;
    for (int pid : pool.map(worker_pid, crew::range(20), 1)) pids_before.insert(pid);
    auto crashing = pool.apply_async(crash_at_three, 3);
    auto fine = pool.apply_async(crash_at_three, 4);
    try {
        crashing.get();
        FAIL() << "the task should have failed";
    } catch (const crew::WorkerDied& died) {
        EXPECT_EQ(died.signal(), SIGSEGV);
        EXPECT_EQ(died.exitcode(), -SIGSEGV);
        EXPECT_TRUE(pids_before.contains(died.pid()));
    }
    EXPECT_EQ(fine.get(), 4);
    EXPECT_EQ(pool.map(square, crew::range(5)), (std::vector<int>{0, 1, 4, 9, 16}));
    EXPECT_THROW(pool.map(crash_at_three, crew::range(10), 1), crew::WorkerDied);
    EXPECT_THROW(pool.apply(abort_now, 0), crew::WorkerDied);
    try {
        pool.apply(exit_three, 0);
        ADD_FAILURE() << "a task whose worker exited returned";
    } catch (const crew::WorkerDied& died) {
        EXPECT_EQ(died.exitcode(), 3);
        EXPECT_EQ(died.signal(), 0);
    }
    EXPECT_EQ(pool.apply(square, 9), 81);
}

TEST_P(PoolTest, AnUnreadableReplyKillsItsWorkerNotTheProgram) {
    crew::Pool pool(options(1));
    EXPECT_EQ(pool.apply(square, 3), 9);
    const auto start = std::chrono::steady_clock::now();
    try {
        (void)pool.apply(scribble_over_the_reply_ring, 0);
        FAIL() << "the task should have failed";
    } catch (const crew::WorkerDied& died) {
        EXPECT_EQ(died.signal(), SIGKILL);
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s) << "the worker was not killed";
    EXPECT_EQ(pool.map(square, crew::range(5)), (std::vector<int>{0, 1, 4, 9, 16}));
}

// A task that throws, crashes its worker, aborts or hangs past task_timeout, in the middle of many:
// map raises what the fault gives once the others are done, imap gives it at the item's place
// and every other result in order, and the pool goes on with the failed workers replaced.
class PoolFaultTest : public PoolTest {
  protected:
    crew::PoolOptions options() const {
        crew::PoolOptions with_timeout = PoolTest::options();
        with_timeout.task_timeout = 1s;
        return with_timeout;
    }
};

TEST_P(PoolFaultTest, EachFaultInTheMiddleOfMapRaisesItsError) {
    crew::Pool pool(options());
    for (crew::testing::Fault fault : crew::testing::every_fault) {
        SCOPED_TRACE(to_string(fault));
        std::exception_ptr error;
        try {
            (void)pool.map(crew::testing::fail_at_five, crew::testing::faulty_items(fault, 10), 1);
        } catch (...) {
            error = std::current_exception();
        }
        ASSERT_TRUE(error) << "the map should have failed";
        EXPECT_EQ(crew::testing::describe_failure(error), crew::testing::expected_failure(fault));
        auto later =
            pool.map_async(crew::testing::fail_at_five, crew::testing::faulty_items(fault, 5), 1);
        EXPECT_EQ(later.get(30s), (std::vector<int>{0, 1, 2, 3, 4}));
        EXPECT_TRUE(later.successful());
    }
}

TEST_P(PoolFaultTest, EachFaultInTheMiddleOfImapFailsItsItemOnly) {
    crew::Pool pool(options());
    for (crew::testing::Fault fault : crew::testing::every_fault) {
        SCOPED_TRACE(to_string(fault));
        std::vector<int> seen;
        std::vector<std::string> failures;
        auto results =
            pool.imap(crew::testing::fail_at_five, crew::testing::faulty_items(fault, 10), 1);
        for (auto it = results.begin(); it != results.end(); ++it) {
            try {
                seen.push_back(*it);
            } catch (...) {
                EXPECT_EQ(seen.size(), 5u) << "the error comes at the failed item's place";
                failures.push_back(crew::testing::describe_failure(std::current_exception()));
            }
        }
        EXPECT_EQ(failures, std::vector<std::string>{crew::testing::expected_failure(fault)});
        EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3, 4, 6, 7, 8, 9}));
    }
}

TEST_P(PoolTest, TaskTimeoutKillsTheWorker) {
    crew::PoolOptions with_timeout = options();
    with_timeout.task_timeout = 300ms;
    crew::Pool pool(with_timeout);
    auto stuck = pool.apply_async(sleep_ms, 60'000);
    auto quick = pool.apply_async(sleep_ms, 1);
    EXPECT_THROW(stuck.get(30s), crew::TimeoutError);
    EXPECT_EQ(quick.get(30s), 1);
    EXPECT_EQ(pool.apply(square, 3), 9);
}

TEST_P(PoolTest, RetriesRunAgainATaskWhoseWorkerDied) {
    crew::testing::TempDir dir;
    crew::PoolOptions retrying = options();
    retrying.retries = 1;
    crew::Pool pool(retrying);
    EXPECT_EQ(pool.apply(crash_once, dir.file("first")), 7);
    crew::Pool no_retries(options());
    EXPECT_THROW(no_retries.apply(crash_once, dir.file("second")), crew::WorkerDied);
}

TEST_P(PoolTest, MaxTasksPerChildReplacesWorkers) {
    crew::PoolOptions limited = options();
    limited.maxtasksperchild = 1;
    crew::Pool pool(limited);
    std::vector<int> pids = pool.map(worker_pid, crew::range(6), 1);
    EXPECT_EQ(std::set<int>(pids.begin(), pids.end()).size(), 6u);
}

TEST_P(PoolTest, InitializerRunsInEveryWorker) {
    crew::PoolOptions initialized = options();
    initialized.initializer = crew::Initializer(initialize, 42);
    crew::Pool pool(initialized);
    EXPECT_EQ(pool.map(read_initialized, crew::range(8), 1), std::vector<int>(8, 42));
}

// Python's Pool restarts workers whose initializer fails forever, and its calls hang; crew's
// pool breaks, and says why.
TEST_P(PoolTest, APoolWhoseWorkersCannotStartFailsItsCallsWithBrokenPool) {
    crew::PoolOptions failing = options();
    failing.initializer = crew::Initializer(fail_to_initialize, 0);
    crew::Pool pool(failing);
    for (int call = 0; call < 2; ++call) {  // the call that finds it broken, and one after
        try {
            pool.apply(square, 3);
            ADD_FAILURE() << "a pool without workers ran a call";
        } catch (const crew::BrokenPool& broken) {
            const std::string what = broken.what();
            EXPECT_NE(what.find("the initializer threw std::runtime_error: no database"),
                      std::string::npos)
                << what;
        }
    }
    EXPECT_THROW(pool.map(square, crew::range(10)), crew::BrokenPool);

    crew::PoolOptions crashing = options();
    crashing.initializer = crew::Initializer(crash_while_initializing, 0);
    crew::Pool crashed(crashing);
    try {
        crashed.apply(square, 3);
        ADD_FAILURE() << "a pool without workers ran a call";
    } catch (const crew::BrokenPool& broken) {
        EXPECT_NE(std::string(broken.what()).find("signal 11"), std::string::npos) << broken.what();
    }
}

// Open descriptors of this process.
rlim_t open_descriptors() {
    return static_cast<rlim_t>(std::distance(std::filesystem::directory_iterator("/proc/self/fd"),
                                             std::filesystem::directory_iterator()));
}

// A replacement worker that cannot start (no descriptor left for its channel) breaks the pool
// with a clear error; the broker's thread does not end the program.
TEST_P(PoolTest, AReplacementWorkerThatCannotStartBreaksThePoolNotTheProgram) {
#if defined(__SANITIZE_ADDRESS__)
    GTEST_SKIP() << "UBSan checks memory through a pipe of its own: with no descriptor left, it "
                    "reports every object it looks at as invalid";
#endif
    crew::Pool pool(options(1));
    const int pid = pool.apply(worker_pid, 0);
    auto waiting = pool.apply_async(sleep_ms, 10'000);
    rlimit limit{};
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
    const rlimit lowered{open_descriptors(), limit.rlim_max};
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    // Under the lowered limit until the pool has given up on the replacement: the call waits
    // for a worker until then.
    std::string outcome = "a pool without workers ran a call";
    try {
        pool.apply_async(square, 2).get(30s);
    } catch (const crew::BrokenPool& broken) {
        outcome = broken.what();
    } catch (const std::exception& other) {
        outcome = std::string("another error: ") + other.what();
    }
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &limit), 0);
    EXPECT_NE(outcome.find("Too many open files"), std::string::npos) << outcome;
    ASSERT_TRUE(waiting.wait(30s)) << "the task of the killed worker never ended";
    EXPECT_THROW(waiting.get(), crew::Error);
    EXPECT_THROW(pool.apply(square, 2), crew::BrokenPool) << "and every call after";
}

TEST_P(PoolTest, ImapUnorderedGivesEveryResult) {
    crew::Pool pool(options());
    std::multiset<int> results;
    for (int r : pool.imap_unordered(square, crew::range(1000))) results.insert(r);
    std::multiset<int> expected;
    for (int i = 0; i < 1000; ++i) expected.insert(i * i);
    EXPECT_EQ(results, expected);
}

TEST_P(PoolTest, TenThousandApplyAsync) {
    crew::Pool pool(options());
    std::vector<crew::AsyncResult<int>> results;
    for (int i = 0; i < 10'000; ++i) results.push_back(pool.apply_async(square, i));
    int wrong = 0;
    for (int i = 0; i < 10'000; ++i) wrong += results[i].get() != i * i;
    EXPECT_EQ(wrong, 0);
}

TEST_P(PoolTest, SixtyFourMebibytesBothWays) {
    crew::Pool pool(options());
    std::vector<char> bytes(64 << 20);
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7 + i / 4096);
    std::vector<char> back = pool.apply(reversed, bytes);
    std::reverse(back.begin(), back.end());
    EXPECT_TRUE(back == bytes);
}

TEST_P(PoolTest, ClosedPoolsTakeNoWork) {
    crew::Pool pool(options());
    EXPECT_THROW(pool.join(), crew::Error) << "join before close";
    auto pending = pool.map_async(sleep_ms, std::vector<int>{200, 200});
    pool.close();
    EXPECT_THROW(pool.apply(square, 2), crew::Error);
    pool.join();
    EXPECT_TRUE(pending.ready()) << "close() lets submitted work finish";
    EXPECT_EQ(pending.get(), (std::vector<int>{200, 200}));
}

TEST_P(PoolTest, TerminateFailsWhatIsNotDone) {
    crew::Pool pool(options());
    auto stuck = pool.map_async(sleep_ms, std::vector<int>(8, 60'000), 1);
    std::this_thread::sleep_for(100ms);
    pool.terminate();
    EXPECT_THROW(stuck.get(30s), crew::Error);
}

// No process, descriptor or mapping of a pool outlives it.
// Tasks submitted while another thread terminates the pool: each future ends (a value or an
// error), none waits forever, whichever side of the broker's end it arrives on.
TEST_P(PoolTest, TasksSubmittedAsThePoolIsTerminatedAllEnd) {
    for (int round = 0; round < 5; ++round) {
        crew::Pool pool(options());
        std::vector<crew::AsyncResult<int>> results;
        std::thread submitter([&] {
            try {
                for (int i = 0; i < 5000; ++i) results.push_back(pool.apply_async(square, i));
            } catch (const crew::Error&) {
                // closed: the submitter stops
            }
        });
        std::this_thread::sleep_for(std::chrono::milliseconds(1 + round));
        pool.terminate();
        submitter.join();
        for (auto& result : results) ASSERT_TRUE(result.wait(10s)) << "a future never ended";
        pool.join();
    }
}

TEST_P(PoolTest, NothingIsLeftAfterThePool) {
    std::set<int> fds_before = crew::testing::open_fds();
    std::set<int> pids;
    {
        crew::Pool pool(options());
        for (int pid : pool.map(worker_pid, crew::range(10), 1)) pids.insert(pid);
        EXPECT_THROW(pool.apply(crash_at_three, 3), crew::WorkerDied);
    }
    EXPECT_EQ(crew::testing::open_fds(), fds_before);
    for (int pid : pids) EXPECT_FALSE(crew::testing::process_exists(pid)) << pid;
    std::string maps = crew::testing::read_file("/proc/self/maps");
    EXPECT_EQ(maps.find("crew-pool-worker-channel"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(AllStartMethods, PoolTest,
                         ::testing::Values(StartMethod::forkserver, StartMethod::fork,
                                           StartMethod::spawn),
                         [](const auto& info) { return std::string(crew::to_string(info.param)); });
INSTANTIATE_TEST_SUITE_P(AllStartMethods, PoolFaultTest,
                         ::testing::Values(StartMethod::forkserver, StartMethod::fork,
                                           StartMethod::spawn),
                         [](const auto& info) { return std::string(crew::to_string(info.param)); });

const char* program_path() {
    return CREW_PROCESS_PROGRAM;
}

// Starts process_program with command; collects the worker pids it prints until "ready".
crew::testing::StartedProgram start_pool_program(const std::string& command, StartMethod method,
                                                 std::vector<pid_t>& workers) {
    auto program = crew::testing::start_program(
        {program_path(), command, std::string(crew::to_string(method))});
    for (std::string line; (line = crew::testing::read_line(program.output, 30s)) != "ready";) {
        if (line.rfind("worker pid ", 0) != 0) {
            ADD_FAILURE() << "unexpected: " << line;
            break;
        }
        workers.push_back(std::atoi(line.c_str() + 11));
    }
    return program;
}

// Waits (at most 5 s) until none of the pids is a live process.
bool all_end(const std::vector<pid_t>& pids) {
    auto start = std::chrono::steady_clock::now();
    auto gone = [&] {
        for (pid_t pid : pids) {
            if (crew::testing::process_exists(pid)) return false;
        }
        return true;
    };
    while (!gone() && std::chrono::steady_clock::now() - start < 5s)
        std::this_thread::sleep_for(5ms);
    return gone();
}

// Ctrl-C while the program waits for a map: the map throws crew::Interrupted at once, the pool's
// workers are stopped, and the program goes on.
TEST_P(PoolTest, CtrlCStopsTheWorkersAndTheWaitingCallThrows) {
    std::vector<pid_t> workers;
    auto program = start_pool_program("interrupt-map", GetParam(), workers);
    ASSERT_EQ(workers.size(), 2u);
    ASSERT_EQ(kill(program.pid, SIGINT), 0);
    std::string line = crew::testing::read_line(program.output, 10s);
    EXPECT_EQ(line.rfind("interrupted after ", 0), 0u) << line;
    EXPECT_LT(std::atoi(line.c_str() + 18), 2000) << "the wait must end promptly: " << line;
    EXPECT_NE(line.find("SIGINT"), std::string::npos) << line;
    line = crew::testing::read_line(program.output, 10s);
    EXPECT_NE(line.find("closed"), std::string::npos) << "the pool was stopped: " << line;
    int status = 0;
    ASSERT_EQ(waitpid(program.pid, &status, 0), program.pid);
    close(program.output);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
    EXPECT_TRUE(all_end(workers)) << "the workers must be gone";
}

// Ctrl-C while no thread waits in crew: the program ends by SIGINT, as it would without crew,
// and its workers with it.
TEST_P(PoolTest, CtrlCOutsideCrewEndsTheProgramAsUsual) {
    std::vector<pid_t> workers;
    auto program = start_pool_program("interrupt-idle", GetParam(), workers);
    ASSERT_EQ(workers.size(), 2u);
    ASSERT_EQ(kill(program.pid, SIGINT), 0);
    int status = 0;
    ASSERT_EQ(waitpid(program.pid, &status, 0), program.pid);
    close(program.output);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT) << "status " << status;
    EXPECT_TRUE(all_end(workers)) << "the workers must be gone";
}

TEST(Pool, DefaultsToOneWorkerPerCpu) {
    crew::Pool pool;
    EXPECT_EQ(pool.processes(), crew::cpu_count());
    crew::Pool four(4);
    EXPECT_EQ(four.processes(), 4);
    EXPECT_THROW(crew::Pool({.processes = -1}), crew::Error);
}

constexpr long kItems = crew::testing::address_sanitizer ? 300'000 : 20'000'000;

TEST(Pool, ImapStreamsAnEndlessInputInBoundedMemory) {
    crew::Pool pool(2);
    long count = 0;
    long sum = 0;
    long rss_before = crew::testing::resident_kib();
    long rss_peak = rss_before;
    auto seventh = [](int x) { return x % 7; };
    for (int r : pool.imap(seventh, std::views::iota(0) | std::views::take(kItems))) {
        sum += r;
        if (++count % 1'000'000 == 0) rss_peak = std::max(rss_peak, crew::testing::resident_kib());
    }
    EXPECT_EQ(count, kItems);
    // 0 + 1 + ... + 6 for every full seven, then 0, 1, ... for what is left.
    EXPECT_EQ(sum, (kItems / 7) * 21 + (kItems % 7) * (kItems % 7 - 1) / 2);
    // All the items would be 80 MB as ints; the window holds a few chunks of at most 64 Ki.
    if (!crew::testing::address_sanitizer) {
        EXPECT_LT(rss_peak - rss_before, 64 * 1024) << "KiB grown while streaming";
    }
}

}  // namespace
