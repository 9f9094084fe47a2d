// Chaos: workers killed from outside at random moments, Ctrl-C in the middle of every wait, tasks
// that break the worker they run in. This program keeps SIGPIPE at its default, as a user's does:
// a write crew made to a dead worker that raised it would end the whole test program.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <crew/crew.hpp>
#include <csignal>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

namespace {

using namespace std::chrono_literals;
using crew::StartMethod;
using crew::testing::children_of;
using crew::testing::process_name;

// Calls of 50 us on two workers: half a second of work, long enough for a dozen kills, as much
// under a sanitizer, as the calls spin for their time.
constexpr int kItems = 20'000;

// A call that keeps its worker busy for a while, so that kills land in the middle of calls.
long busy_square(long x) {
    const auto until = std::chrono::steady_clock::now() + 50us;
    while (std::chrono::steady_clock::now() < until) {
    }
    return x * x;
}

// This program's live pool workers, started directly (fork, spawn) or by the fork server.
std::vector<pid_t> pool_workers() {
    std::vector<pid_t> workers;
    for (pid_t child : children_of(getpid())) {
        std::vector<pid_t> candidates{child};
        if (process_name(child) == "crew-forkserver") candidates = children_of(child);
        for (pid_t candidate : candidates) {
            if (process_name(candidate).starts_with("crew-worker-") &&
                crew::testing::process_exists(candidate)) {
                workers.push_back(candidate);
            }
        }
    }
    return workers;
}

// SIGKILLs a random pool worker of this program every 10 to 40 ms, at most `limit` times, until
// stopped.
class WorkerKiller {
  public:
    explicit WorkerKiller(int limit) : limit_(limit), thread_([this] { run(); }) {}
    ~WorkerKiller() { stop(); }
    WorkerKiller(const WorkerKiller&) = delete;
    WorkerKiller& operator=(const WorkerKiller&) = delete;

    // Stops killing; returns how many workers were killed.
    int stop() {
        {
            std::lock_guard lock(mutex_);
            stopped_ = true;
        }
        wake_.notify_all();
        if (thread_.joinable()) thread_.join();
        return kills_;
    }

  private:
    void run() {
        std::mt19937 random(std::random_device{}());
        std::uniform_int_distribution<int> gap_ms(10, 40);
        std::unique_lock lock(mutex_);
        while (kills_ < limit_) {
            if (wake_.wait_for(lock, std::chrono::milliseconds(gap_ms(random)),
                               [this] { return stopped_; })) {
                return;
            }
            const std::vector<pid_t> workers = pool_workers();
            if (workers.empty()) continue;
            const pid_t victim = workers[random() % workers.size()];
            if (kill(victim, SIGKILL) == 0) ++kills_;
        }
    }

    const int limit_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopped_ = false;
    int kills_ = 0;
    std::thread thread_;
};

std::vector<long> squares(int count) {
    std::vector<long> expected;
    for (long x = 0; x < count; ++x) expected.push_back(x * x);
    return expected;
}

class ChaosTest : public ::testing::TestWithParam<StartMethod> {
  protected:
    crew::PoolOptions options(int retries, int processes = 2) const {
        return {.processes = processes, .start_method = GetParam(), .retries = retries};
    }
};

// With retries, a storm of kills changes nothing a caller sees: every result, exactly once.
TEST_P(ChaosTest, MapDeliversEveryResultOnceDespiteKills) {
    crew::Pool pool(options(3));
    WorkerKiller killer(12);
    std::vector<long> results = pool.map(busy_square, crew::range(kItems));
    EXPECT_GE(killer.stop(), 3) << "too few kills to prove anything";
    EXPECT_EQ(results, squares(kItems));
}

TEST_P(ChaosTest, ImapDeliversEveryResultOnceDespiteKills) {
    crew::Pool pool(options(3));
    WorkerKiller killer(12);
    std::vector<long> results;
    for (long result : pool.imap(busy_square, crew::range(kItems))) results.push_back(result);
    EXPECT_GE(killer.stop(), 3) << "too few kills to prove anything";
    EXPECT_EQ(results, squares(kItems));
}

TEST_P(ChaosTest, ImapUnorderedDeliversEveryResultOnceDespiteKills) {
    crew::Pool pool(options(3));
    WorkerKiller killer(12);
    std::vector<long> results;
    for (long result : pool.imap_unordered(busy_square, crew::range(kItems))) {
        results.push_back(result);
    }
    EXPECT_GE(killer.stop(), 3) << "too few kills to prove anything";
    std::sort(results.begin(), results.end());
    EXPECT_EQ(results, squares(kItems));
}

TEST_P(ChaosTest, ApplyAsyncDeliversEveryResultOnceDespiteKills) {
    crew::Pool pool(options(3));
    std::vector<crew::AsyncResult<long>> pending;
    WorkerKiller killer(12);
    for (long x = 0; x < kItems; ++x) pending.push_back(pool.apply_async(busy_square, x));
    std::vector<long> results;
    for (auto& result : pending) results.push_back(result.get());
    EXPECT_GE(killer.stop(), 3) << "too few kills to prove anything";
    EXPECT_EQ(results, squares(kItems));
}

// Without retries, a kill fails at most the one call its worker was running; the calls of the
// same chunk that had not run, and those that ran, still give their results, each once.
struct Tally {
    std::vector<long> results;
    int failures = 0;
};

void expect_only_killed_calls_failed(Tally tally, int kills, int count) {
    EXPECT_LE(tally.failures, kills);
    EXPECT_EQ(tally.results.size() + tally.failures, static_cast<std::size_t>(count));
    std::sort(tally.results.begin(), tally.results.end());
    EXPECT_EQ(std::adjacent_find(tally.results.begin(), tally.results.end()), tally.results.end())
        << "a result arrived twice";
    const std::vector<long> expected = squares(count);
    EXPECT_TRUE(
        std::includes(expected.begin(), expected.end(), tally.results.begin(), tally.results.end()))
        << "a result that no call gives";
}

// Reads each result of results with read(it): a lazy result's *it, a pending call's get().
template <class Results, class Read>
Tally tally_of(Results&& results, Read read) {
    Tally tally;
    for (auto it = results.begin(); it != results.end(); ++it) {
        try {
            tally.results.push_back(read(it));
        } catch (const crew::WorkerDied&) {
            ++tally.failures;
        }
    }
    return tally;
}

const auto dereference = [](auto& it) { return *it; };

// Stops the killer once tally is taken, and checks it against the kills.
void expect_only_killed_calls_failed(WorkerKiller& killer, Tally tally) {
    const int kills = killer.stop();
    EXPECT_GE(kills, 3) << "too few kills to prove anything";
    expect_only_killed_calls_failed(std::move(tally), kills, kItems);
}

TEST_P(ChaosTest, ImapKillsFailOnlyTheRunningCalls) {
    crew::Pool pool(options(0));
    WorkerKiller killer(12);
    expect_only_killed_calls_failed(
        killer, tally_of(pool.imap(busy_square, crew::range(kItems)), dereference));
}

TEST_P(ChaosTest, ImapUnorderedKillsFailOnlyTheRunningCalls) {
    crew::Pool pool(options(0));
    WorkerKiller killer(12);
    expect_only_killed_calls_failed(
        killer, tally_of(pool.imap_unordered(busy_square, crew::range(kItems)), dereference));
}

TEST_P(ChaosTest, ApplyAsyncKillsFailOnlyTheRunningCalls) {
    crew::Pool pool(options(0));
    std::vector<crew::AsyncResult<long>> pending;
    WorkerKiller killer(12);
    for (long x = 0; x < kItems; ++x) pending.push_back(pool.apply_async(busy_square, x));
    expect_only_killed_calls_failed(killer, tally_of(pending, [](auto& it) { return it->get(); }));
}

TEST_P(ChaosTest, ExecutorSubmitKillsFailOnlyTheRunningCalls) {
    crew::ProcessPoolExecutor executor({.max_workers = 2, .start_method = GetParam()});
    std::vector<crew::Future<long>> futures;
    WorkerKiller killer(12);
    for (long x = 0; x < kItems; ++x) futures.push_back(executor.submit(busy_square, x));
    expect_only_killed_calls_failed(
        killer, tally_of(crew::as_completed(futures), [](auto& it) { return (*it).result(); }));
}

// One kill among four busy workers costs one call, however large the chunks have grown.
TEST_P(ChaosTest, OneKillInAChunkFailsOneCall) {
    crew::Pool pool(options(0, 4));
    Tally tally;
    auto results = pool.imap(busy_square, crew::range(kItems));
    for (auto it = results.begin(); it != results.end(); ++it) {
        try {
            tally.results.push_back(*it);
        } catch (const crew::WorkerDied&) {
            ++tally.failures;
        }
        if (tally.results.size() == kItems / 10) {
            const std::vector<pid_t> workers = pool_workers();
            ASSERT_FALSE(workers.empty());
            ASSERT_EQ(kill(workers.front(), SIGKILL), 0);
        }
    }
    expect_only_killed_calls_failed(std::move(tally), 1, kItems);
}

int worker_pid(int) {
    return getpid();
}

// Kills during crew::Parallel calls: a call hit by one throws crew::WorkerDied (joblib's rule: the
// first failure ends the call), or, if the kills missed its calls, gives every result; no call
// hangs, and once the kills stop the same Parallel gives every result again.
TEST(ParallelChaos, KillsFailACallAndTheNextCallIsWhole) {
    crew::Parallel parallel({.n_jobs = 2});
    WorkerKiller killer(12);
    int failed_calls = 0;
    for (int call = 0; call < 10; ++call) {
        try {
            EXPECT_EQ(parallel(crew::delayed(busy_square), crew::range(kItems / 10)),
                      squares(kItems / 10));
        } catch (const crew::WorkerDied&) {
            ++failed_calls;
        }
    }
    const int kills = killer.stop();
    EXPECT_GE(kills, 3) << "too few kills to prove anything";
    EXPECT_LE(failed_calls, kills);
    EXPECT_EQ(parallel(crew::delayed(busy_square), crew::range(kItems)), squares(kItems));
}

// Through a registered backend whose pool runs killed batches again, kills change nothing the
// Parallel's caller sees: every result, once, in order. The pool sees a batch as one call, which
// it runs again whole: batches of one call keep a batch from being killed at each of its tries
// (automatic batches of thousands of calls were, once in a few dozen runs).
TEST_P(ChaosTest, ARegisteredBackendsRetriesHideKills) {
    const std::string name = "chaos-pool-" + std::string(crew::to_string(GetParam()));
    const crew::StartMethod method = GetParam();
    crew::register_parallel_backend(name, [method](int) {
        return std::make_shared<crew::testing::PoolBackend>(
            crew::PoolOptions{.processes = 2, .start_method = method, .retries = 3});
    });
    crew::Parallel parallel({.n_jobs = 2, .backend = name, .batch_size = 1});
    WorkerKiller killer(12);
    std::vector<long> results = parallel(crew::delayed(busy_square), crew::range(kItems));
    EXPECT_GE(killer.stop(), 3) << "too few kills to prove anything";
    EXPECT_EQ(results, squares(kItems));
}

void start_slowly(int milliseconds) {
    std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds));
}

// Workers killed from outside as they start (here, each within its 300 ms initializer) are
// replaced, however many in a row: a kill is not a start that fails of itself, which breaks the
// pool at the third (APoolWhoseWorkersCannotStartFailsItsCallsWithBrokenPool).
TEST_P(ChaosTest, WorkersKilledAsTheyStartAreReplaced) {
    crew::PoolOptions slow = options(0, 2);
    slow.initializer = crew::Initializer(start_slowly, 300);
    crew::Pool pool(slow);
    auto result = pool.apply_async(busy_square, 7L);
    std::set<pid_t> killed;
    const auto give_up = std::chrono::steady_clock::now() + 20s;
    while (killed.size() < 5 && std::chrono::steady_clock::now() < give_up) {
        for (pid_t worker : pool_workers()) {
            if (killed.insert(worker).second) {
                ASSERT_EQ(kill(worker, SIGKILL), 0);
            }
        }
        std::this_thread::sleep_for(1ms);
    }
    ASSERT_GE(killed.size(), 5u) << "the pool stopped starting workers";
    EXPECT_EQ(result.get(30s), 49);
    EXPECT_EQ(pool.map(busy_square, crew::range(100)), squares(100));
}

// A task handed to a worker that died idle has not started: it runs elsewhere, retries or not.
TEST_P(ChaosTest, AWorkerKilledIdleCostsNoCall) {
    crew::Pool pool(options(0, 1));
    for (int round = 0; round < 3; ++round) {
        const pid_t idle = pool.apply(worker_pid, 0);
        ASSERT_EQ(kill(idle, SIGKILL), 0);
        EXPECT_NE(pool.apply(worker_pid, 0), idle);
    }
}

TEST_P(ChaosTest, WorkersAreNamedCrewWorkerInPs) {
    crew::Pool pool(options(0));
    const std::vector<int> pids = pool.map(worker_pid, crew::range(20), 1);
    for (int pid : std::set<int>(pids.begin(), pids.end())) {
        EXPECT_TRUE(process_name(pid).starts_with("crew-worker-")) << process_name(pid);
    }
}

int close_every_descriptor(int) {
    for (int fd = 0; fd < 1024; ++fd) close(fd);
    return 1;
}

// The task that broke its worker is the one reported; the next one runs on a new worker.
TEST_P(ChaosTest, ATaskThatClosesEveryDescriptorFailsAlone) {
    crew::Pool pool(options(0, 1));
    try {
        pool.apply(close_every_descriptor, 0);
        ADD_FAILURE() << "the task's result came back through descriptors it closed";
    } catch (const crew::Error& error) {
        EXPECT_NE(std::string(error.what()).find("closed file descriptors"), std::string::npos)
            << error.what();
    }
    EXPECT_EQ(pool.apply(busy_square, 3), 9);
    EXPECT_EQ(pool.map(busy_square, crew::range(100)), squares(100));
}

// A task that starts a process and returns leaves it to its worker, which ends it with itself.
int leave_a_sleeper() {
    const pid_t child = fork();
    if (child == 0) {
        std::this_thread::sleep_for(60s);
        _exit(0);
    }
    return child;
}

TEST_P(ChaosTest, AProcessATaskLeftEndsWithThePool) {
    pid_t left = -1;
    {
        crew::Pool pool(options(0, 1));
        left = pool.apply(leave_a_sleeper);
        ASSERT_GT(left, 0);
        EXPECT_TRUE(crew::testing::process_exists(left));
    }
    const auto give_up = std::chrono::steady_clock::now() + 5s;
    while (crew::testing::process_exists(left) && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(5ms);
    }
    EXPECT_FALSE(crew::testing::process_exists(left));
}

TEST_P(ChaosTest, AProcessATaskLeftEndsWhenItsWorkerIsKilled) {
    crew::Pool pool(options(0, 1));
    const pid_t worker = pool.apply(worker_pid, 0);
    const pid_t left = pool.apply(leave_a_sleeper);
    ASSERT_GT(left, 0);
    ASSERT_EQ(kill(worker, SIGKILL), 0);
    EXPECT_NE(pool.apply(worker_pid, 0), worker);  // the pool has seen its worker die
    const auto give_up = std::chrono::steady_clock::now() + 5s;
    while (crew::testing::process_exists(left) && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(5ms);
    }
    EXPECT_FALSE(crew::testing::process_exists(left));
}

// task_timeout bounds the call, not the writing and transfer of its result, however large: here
// the call takes no time (it hands over what the initializer made), its result a second or more.
std::vector<char> prepared_result;
void prepare_result(int mebibytes) {
    prepared_result.assign(static_cast<std::size_t>(mebibytes) << 20, 'x');
}
std::vector<char> take_prepared_result() {
    return std::move(prepared_result);
}

TEST_P(ChaosTest, TaskTimeoutDoesNotCountTheResultsTransfer) {
    crew::PoolOptions timed = options(0, 1);
    timed.initializer = crew::Initializer(prepare_result, 256);
    timed.task_timeout = 100ms;
    crew::Pool pool(std::move(timed));
    EXPECT_EQ(pool.apply(take_prepared_result).size(), std::size_t{256} << 20);
}

#if defined(__SANITIZE_ADDRESS__)
// AddressSanitizer's allocator takes a lock of its own, which a child forked while another thread
// holds it inherits held: a fork-method worker started as the killer thread allocates can hang in
// its first malloc (seen in CI). glibc's malloc is safe there; the release build tests fork.
#define CHAOS_START_METHODS StartMethod::forkserver, StartMethod::spawn
#else
#define CHAOS_START_METHODS StartMethod::forkserver, StartMethod::fork, StartMethod::spawn
#endif
INSTANTIATE_TEST_SUITE_P(AllStartMethods, ChaosTest, ::testing::Values(CHAOS_START_METHODS),
                         [](const auto& info) { return std::string(crew::to_string(info.param)); });

// Ctrl-C in the middle of each kind of wait: the wait throws crew::Interrupted at once (crew
// looks every 20 ms), and no worker outlives the program.
class InterruptTest : public ::testing::TestWithParam<std::tuple<StartMethod, const char*>> {};

TEST_P(InterruptTest, CtrlCEndsTheWait) {
    const auto [method, wait] = GetParam();
    auto program = crew::testing::start_program(
        {CREW_PROCESS_PROGRAM, "interrupt-in", std::string(crew::to_string(method)), wait});
    std::vector<pid_t> workers;
    for (std::string line; (line = crew::testing::read_line(program.output, 30s)) != "ready";) {
        if (!line.starts_with("worker pid ")) {
            ADD_FAILURE() << "unexpected: " << line;
            break;
        }
        workers.push_back(std::atoi(line.c_str() + 11));
    }
    EXPECT_EQ(workers.size(), 4u);
    ASSERT_EQ(kill(program.pid, SIGINT), 0);
    // Each wait would go on for ten seconds or more: within five, the interrupt was heard.
    const std::string line = crew::testing::read_line(program.output, 5s);
    const bool thrown = line.starts_with("interrupted after ");
    if (!thrown) kill(program.pid, SIGKILL);  // a zombie by now, unless the interrupt went unheard
    int status = 0;
    ASSERT_EQ(waitpid(program.pid, &status, 0), program.pid);
    close(program.output);
    // A loop of waits runs the program's own code between them; a SIGINT that lands there does
    // what it does without crew: the default ends the program.
    const bool loop = std::string(wait) == "as-completed" || std::string(wait) == "imap";
    const bool ended_by_interrupt = WIFSIGNALED(status) && WTERMSIG(status) == SIGINT;
    if (thrown) {
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
    } else {
        EXPECT_TRUE(loop && line.empty() && ended_by_interrupt)
            << "the wait went on: '" << line << "', status " << status;
    }
    const auto give_up = std::chrono::steady_clock::now() + 5s;
    for (pid_t worker : workers) {
        while (crew::testing::process_exists(worker) &&
               std::chrono::steady_clock::now() < give_up) {
            std::this_thread::sleep_for(5ms);
        }
        EXPECT_FALSE(crew::testing::process_exists(worker)) << "worker " << worker;
    }
}

INSTANTIATE_TEST_SUITE_P(EveryWait, InterruptTest,
                         ::testing::Combine(::testing::Values(StartMethod::forkserver,
                                                              StartMethod::fork,
                                                              StartMethod::spawn),
                                            ::testing::Values("as-completed", "wait", "map", "imap",
                                                              "queue-get", "connection-wait")),
                         [](const auto& info) {
                             std::string name =
                                 std::string(crew::to_string(std::get<0>(info.param))) + "_" +
                                 std::get<1>(info.param);
                             std::replace(name.begin(), name.end(), '-', '_');
                             return name;
                         });

}  // namespace
