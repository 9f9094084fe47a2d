// Backends registered for crew::Parallel (joblib's register_parallel_backend): one that runs
// batches on threads of this process and one that sends them to a crew::Pool's processes
// (crew::testing::PoolBackend), as a cluster's would to its engines. Results in order on every
// call form, the failure path (typed, its input named, a lost batch, a crashed worker), what
// cannot travel (descriptors), large spans carried in the message, n_jobs as the factory sees
// it, the names (joblib's aliases, unknown names, built-ins refused), parallel_config,
// map_reduce, nesting, and run_batch's checks.
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>

#include <atomic>
#include <condition_variable>
#include <crew/crew.hpp>
#include <deque>
#include <mutex>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

namespace {

int square(int x) {
    return x * x;
}
int worker_pid(int) {
    return static_cast<int>(::getpid());
}
int fail_at_three(int x) {
    if (x == 3) throw std::invalid_argument("three is not allowed");
    return x;
}
int die_at_three(int x) {
    if (x == 3) std::raise(SIGKILL);
    return x;
}
std::int64_t sum_of(std::span<const std::int64_t> values) {
    return std::accumulate(values.begin(), values.end(), std::int64_t{0});
}
int read_value(crew::Value<int> value) {
    return value.value();
}
std::string nested_backend(int) {
    crew::Parallel inner({.n_jobs = 2});
    return inner.backend().name();
}

// Runs each batch on one of n threads of this process.
class OnThreads : public crew::ParallelBackendBase {
  public:
    explicit OnThreads(int n_jobs) : n_jobs_(n_jobs < 0 ? 3 : n_jobs) {
        for (int i = 0; i < n_jobs_; ++i) threads_.emplace_back([this] { serve(); });
    }
    ~OnThreads() override {
        {
            const std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        changed_.notify_all();
        for (std::thread& thread : threads_) thread.join();
    }
    int effective_n_jobs() const override { return n_jobs_; }
    void apply_async(std::vector<std::byte> batch, crew::BatchCallback done) override {
        batches_given.fetch_add(1);
        {
            const std::lock_guard lock(mutex_);
            queued_.emplace_back(std::move(batch), std::move(done));
        }
        changed_.notify_one();
    }

    static inline std::atomic<int> batches_given{0};

  private:
    void serve() {
        while (true) {
            std::unique_lock lock(mutex_);
            changed_.wait(lock, [&] { return stopping_ || !queued_.empty(); });
            if (queued_.empty()) return;
            auto [batch, done] = std::move(queued_.front());
            queued_.pop_front();
            lock.unlock();
            done(crew::run_batch(batch));
        }
    }

    int n_jobs_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<std::pair<std::vector<std::byte>, crew::BatchCallback>> queued_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

// Loses every batch, as a backend whose workers all vanished would.
class LosesEverything : public crew::ParallelBackendBase {
  public:
    int effective_n_jobs() const override { return 2; }
    void apply_async(std::vector<std::byte>, crew::BatchCallback done) override {
        done(std::make_exception_ptr(crew::Error("the test backend lost the batch")));
    }
};

// Refuses every batch by throwing from apply_async.
class Refuses : public crew::ParallelBackendBase {
  public:
    int effective_n_jobs() const override { return 2; }
    void apply_async(std::vector<std::byte>, crew::BatchCallback) override {
        throw std::runtime_error("the test backend is full");
    }
};

// Answers each batch twice: the second answer is refused.
class AnswersTwice : public crew::ParallelBackendBase {
  public:
    int effective_n_jobs() const override { return 2; }
    void apply_async(std::vector<std::byte> batch, crew::BatchCallback done) override {
        done(crew::run_batch(batch));
        try {
            done(crew::run_batch(batch));
        } catch (const crew::Error& error) {
            second_answer_refused.fetch_add(1);
            EXPECT_NE(std::string(error.what()).find("twice"), std::string::npos) << error.what();
        }
    }
    static inline std::atomic<int> second_answer_refused{0};
};

int factory_saw = 0;

class ParallelBackendTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        crew::register_parallel_backend("test-threads", [](int n_jobs) {
            factory_saw = n_jobs;
            return std::make_shared<OnThreads>(n_jobs);
        });
        crew::register_parallel_backend("test-pool", [](int n_jobs) {
            return std::make_shared<crew::testing::PoolBackend>(
                crew::PoolOptions{.processes = n_jobs < 0 ? 2 : n_jobs});
        });
        crew::register_parallel_backend("test-loses",
                                        [](int) { return std::make_shared<LosesEverything>(); });
        crew::register_parallel_backend("test-refuses",
                                        [](int) { return std::make_shared<Refuses>(); });
        crew::register_parallel_backend("test-answers-twice",
                                        [](int) { return std::make_shared<AnswersTwice>(); });
    }
};

std::vector<int> squares(int count) {
    std::vector<int> expected;
    for (int i = 0; i < count; ++i) expected.push_back(i * i);
    return expected;
}

TEST_F(ParallelBackendTest, ResultsComeInOrderFromThreadsOfThisProcess) {
    const int given_before = OnThreads::batches_given.load();
    crew::Parallel parallel({.n_jobs = 3, .backend = "test-threads"});
    EXPECT_EQ(parallel.n_jobs(), 3);
    EXPECT_EQ(parallel.backend().name(), "test-threads");
    EXPECT_EQ(parallel(crew::delayed(square), crew::range(1000)), squares(1000));
    EXPECT_EQ(parallel(crew::range(100) |
                       std::views::transform([](int i) { return crew::delayed(square)(i); })),
              squares(100));
    std::vector<int> in_order;
    for (int result : parallel.generator(crew::delayed(square), crew::range(500))) {
        in_order.push_back(result);
    }
    EXPECT_EQ(in_order, squares(500));
    std::multiset<int> any_order;
    for (int result : parallel.generator_unordered(crew::delayed(square), crew::range(500))) {
        any_order.insert(result);
    }
    const std::vector<int> expected = squares(500);
    EXPECT_EQ(any_order, std::multiset<int>(expected.begin(), expected.end()));
    EXPECT_GT(OnThreads::batches_given.load(), given_before) << "the backend ran nothing";
}

TEST_F(ParallelBackendTest, BatchesRunInThePoolsProcesses) {
    crew::Parallel parallel({.n_jobs = 2, .backend = "test-pool"});
    EXPECT_EQ(parallel.n_jobs(), 2);
    const std::vector<int> pids = parallel(crew::delayed(worker_pid), crew::range(2000));
    ASSERT_EQ(pids.size(), 2000u);
    const std::set<int> distinct(pids.begin(), pids.end());
    EXPECT_EQ(distinct.count(static_cast<int>(::getpid())), 0u) << "a call ran in the caller";
    EXPECT_LE(distinct.size(), 2u);
    EXPECT_EQ(parallel(crew::delayed(square), crew::range(3000)), squares(3000));
}

TEST_F(ParallelBackendTest, TheFirstFailureIsThrownWithItsTypeAndInput) {
    crew::Parallel parallel({.n_jobs = 2, .backend = "test-threads"});
    try {
        (void)parallel(crew::delayed(fail_at_three), crew::range(100));
        FAIL() << "no exception";
    } catch (const std::invalid_argument& error) {
        EXPECT_NE(std::string(error.what()).find("crew::Parallel input 3"), std::string::npos)
            << error.what();
    }
    EXPECT_EQ(parallel(crew::delayed(square), crew::range(10)), squares(10));
}

TEST_F(ParallelBackendTest, ACrashedWorkerFailsItsCallAndTheNextCallWorks) {
    crew::Parallel parallel({.n_jobs = 2, .backend = "test-pool", .batch_size = 1});
    EXPECT_THROW((void)parallel(crew::delayed(die_at_three), crew::range(8)), crew::WorkerDied);
    EXPECT_EQ(parallel(crew::delayed(square), crew::range(100)), squares(100));
}

TEST_F(ParallelBackendTest, ABatchTheBackendLosesOrRefusesFailsTheCall) {
    crew::Parallel losing({.n_jobs = 2, .backend = "test-loses"});
    try {
        (void)losing(crew::delayed(square), crew::range(10));
        FAIL() << "no exception";
    } catch (const crew::Error& error) {
        EXPECT_NE(std::string(error.what()).find("lost the batch"), std::string::npos)
            << error.what();
    }
    crew::Parallel refusing({.n_jobs = 2, .backend = "test-refuses"});
    EXPECT_THROW((void)refusing(crew::delayed(square), crew::range(10)), std::runtime_error);
}

TEST_F(ParallelBackendTest, ABatchIsAnsweredOnce) {
    const int refused_before = AnswersTwice::second_answer_refused.load();
    crew::Parallel parallel({.n_jobs = 2, .backend = "test-answers-twice"});
    EXPECT_EQ(parallel(crew::delayed(square), crew::range(50)), squares(50));
    EXPECT_GT(AnswersTwice::second_answer_refused.load(), refused_before);
}

TEST_F(ParallelBackendTest, AnArgumentWithADescriptorIsRefusedByName) {
    crew::Value<int> shared(7);
    crew::Parallel parallel({.n_jobs = 2, .backend = "test-threads"});
    try {
        (void)parallel(crew::range(4) | std::views::transform([&](int) {
                           return crew::delayed(read_value)(shared);
                       }));
        FAIL() << "no exception";
    } catch (const crew::Error& error) {
        const std::string what = error.what();
        EXPECT_NE(what.find("file descriptor"), std::string::npos) << what;
        EXPECT_NE(what.find("test-threads"), std::string::npos) << what;
    }
}

TEST_F(ParallelBackendTest, LargeSpansAndArraysTravelInTheMessage) {
    std::vector<std::int64_t> data(std::size_t{1} << 20);  // 8 MiB, above max_nbytes
    std::iota(data.begin(), data.end(), std::int64_t{0});
    const std::int64_t total = std::accumulate(data.begin(), data.end(), std::int64_t{0});
    crew::Parallel parallel({.n_jobs = 2, .backend = "test-pool"});
    const std::vector<std::int64_t> sums = parallel(
        crew::range(3) | std::views::transform([&](int) { return crew::delayed(sum_of)(data); }));
    EXPECT_EQ(sums, std::vector<std::int64_t>(3, total));
    crew::Array<std::int64_t> array(data.size());
    std::copy(data.begin(), data.end(), array.begin());
    const std::vector<std::int64_t> array_sums = parallel(
        crew::range(2) | std::views::transform([&](int) { return crew::delayed(sum_of)(array); }));
    EXPECT_EQ(array_sums, std::vector<std::int64_t>(2, total));
}

TEST_F(ParallelBackendTest, TheFactoryGetsNJobsAsAsked) {
    {
        crew::Parallel all({.n_jobs = -1, .backend = "test-threads"});
        EXPECT_EQ(factory_saw, -1);
        EXPECT_EQ(all.n_jobs(), 3);  // what the backend says it runs
    }
    {
        crew::Parallel all_but_one({.n_jobs = -2, .backend = "test-threads"});
        EXPECT_EQ(factory_saw, -2);
    }
    factory_saw = 0;
    crew::Parallel one({.n_jobs = 1, .backend = "test-threads"});
    EXPECT_EQ(one.backend(), crew::ParallelBackend::serial);
    EXPECT_EQ(factory_saw, 0) << "one job runs in the caller, with no backend made";
    EXPECT_EQ(one(crew::delayed(square), crew::range(5)), squares(5));
}

TEST_F(ParallelBackendTest, NamesAreCheckedAndJoblibsAliasesServe) {
    try {
        crew::Parallel unknown({.n_jobs = 2, .backend = "no-such-backend"});
        FAIL() << "no exception";
    } catch (const crew::Error& error) {
        const std::string what = error.what();
        EXPECT_NE(what.find("no-such-backend"), std::string::npos) << what;
        EXPECT_NE(what.find("register_parallel_backend"), std::string::npos) << what;
    }
    EXPECT_THROW(crew::register_parallel_backend(
                     "loky", [](int n_jobs) { return std::make_shared<OnThreads>(n_jobs); }),
                 crew::Error);
    EXPECT_THROW(crew::register_parallel_backend("empty-factory", {}), crew::Error);
    EXPECT_THROW(crew::ParallelBackend(""), crew::Error);
    EXPECT_EQ(crew::ParallelBackend("loky"), crew::ParallelBackend::processes);
    EXPECT_EQ(crew::ParallelBackend("threading"), crew::ParallelBackend::threads);
    EXPECT_EQ(crew::ParallelBackend("sequential"), crew::ParallelBackend::serial);
    crew::Parallel threading({.n_jobs = 2, .backend = "threading"});
    EXPECT_EQ(threading.backend(), crew::ParallelBackend::threads);
    EXPECT_THROW(crew::Parallel(
                     {.n_jobs = 2, .backend = "test-threads", .timeout = std::chrono::seconds(1)}),
                 crew::Error);
}

TEST_F(ParallelBackendTest, ParallelConfigNamesARegisteredBackend) {
    const auto scope = crew::parallel_config({.n_jobs = 2, .backend = "test-threads"});
    crew::Parallel parallel;
    EXPECT_EQ(parallel.backend().name(), "test-threads");
    EXPECT_EQ(parallel(crew::delayed(square), crew::range(20)), squares(20));
}

TEST_F(ParallelBackendTest, MapReduceAndEstimateRunOnIt) {
    crew::Parallel parallel({.n_jobs = 2, .backend = "test-pool"});
    const long total = parallel.map_reduce(square, std::plus<>(), crew::range(1000), 0L);
    long expected = 0;
    for (int i = 0; i < 1000; ++i) expected += static_cast<long>(i) * i;
    EXPECT_EQ(total, expected);
    const crew::Estimate estimate = parallel.estimate(square, crew::range(1000));
    EXPECT_EQ(estimate.backend.name(), "test-pool");
    EXPECT_EQ(estimate.items, 1000u);
}

TEST_F(ParallelBackendTest, AParallelInsideABatchRunsSerially) {
    crew::Parallel parallel({.n_jobs = 2, .backend = "test-threads"});
    for (const std::string& inner : parallel(crew::delayed(nested_backend), crew::range(4))) {
        EXPECT_EQ(inner, "serial");
    }
    crew::Parallel after({.n_jobs = 2});
    EXPECT_EQ(after.backend(), crew::ParallelBackend::processes) << "the caller is no worker";
}

TEST_F(ParallelBackendTest, RunBatchRefusesBytesThatAreNoBatch) {
    const std::vector<std::byte> short_bytes(3);
    EXPECT_THROW((void)crew::run_batch(short_bytes), crew::Error);
    std::vector<std::byte> garbage(256, std::byte{0x5a});
    EXPECT_THROW((void)crew::run_batch(garbage), crew::Error);
}

}  // namespace
