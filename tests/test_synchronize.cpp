// Locks, semaphores, events, conditions and barriers shared between processes and threads.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <crew/crew.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using crew::StartMethod;

// Children report through their exit status: the tests need no other channel.
void try_lock_then_exit(crew::Lock lock) {
    _exit(lock.acquire(false) ? 0 : 1);
}
void lock_within_then_exit(crew::Lock lock) {
    _exit(lock.acquire(true, 10s) ? 0 : 1);
}
void die_holding(crew::Lock lock, crew::Event holding) {
    lock.acquire();
    holding.set();
    std::this_thread::sleep_for(60s);  // until the test kills it
}
void die_holding_rlock(crew::RLock lock) {
    lock.acquire();
    lock.acquire();
    raise(SIGKILL);
}
void release_twice(crew::Semaphore semaphore) {
    semaphore.release(2);
}
void set_event(crew::Event event) {
    std::this_thread::sleep_for(20ms);
    event.set();
}
void notify_when_set(crew::Condition condition, crew::Event done) {
    std::lock_guard hold(condition);
    done.set();
    condition.notify_all();
}
int worker_answer() {
    return 42;
}
// A barrier's action: appends this process's pid to a file, one line a trip.
struct AppendPid {
    std::string path;
    void operator()() const { std::ofstream(path, std::ios::app) << getpid() << '\n'; }
    template <class Archive>
    void serialize(Archive& archive) {
        archive(path);
    }
};
std::size_t lines_in(const std::string& path) {
    std::ifstream file(path);
    std::size_t lines = 0;
    for (std::string line; std::getline(file, line);) ++lines;
    return lines;
}
// Three trips; after each, the action must have run already. Exit status 0, or which trip failed.
void trip_three_times(crew::Barrier barrier, std::string path) {
    for (int trip = 0; trip < 3; ++trip) {
        barrier.wait(20s);
        if (lines_in(path) < static_cast<std::size_t>(trip) + 1) _exit(10 + trip);
    }
    _exit(0);
}
struct ThrowingAction {
    void operator()() const { throw std::invalid_argument("the action failed"); }
};
void wait_at_barrier(crew::Barrier barrier) {
    _exit(static_cast<int>(barrier.wait(20s)));
}

class SynchronizeTest : public ::testing::TestWithParam<StartMethod> {
  protected:
    crew::ProcessOptions options() const { return {.start_method = GetParam()}; }
};

TEST_P(SynchronizeTest, ALockIsTheSameLockInAChildProcess) {
    crew::Lock lock;
    lock.acquire();
    crew::Process refused(options(), try_lock_then_exit, lock);
    refused.start();
    refused.join();
    EXPECT_EQ(refused.exitcode(), 1) << "the child took a lock the parent holds";
    crew::Process waits(options(), lock_within_then_exit, lock);
    waits.start();
    std::this_thread::sleep_for(20ms);
    lock.release();
    waits.join();
    EXPECT_EQ(waits.exitcode(), 0) << "the child did not get the lock once released";
    EXPECT_FALSE(lock.locked());
}

TEST_P(SynchronizeTest, AHolderKilledWithSigkillIsReportedToTheNextAcquirer) {
    crew::Lock lock;
    crew::Event holding;
    crew::Process holder(options(), die_holding, lock, holding);
    holder.start();
    ASSERT_TRUE(holding.wait(10s));
    EXPECT_TRUE(lock.locked());
    holder.kill();
    holder.join();
    EXPECT_THROW(lock.acquire(), crew::OwnerDied);
    EXPECT_FALSE(lock.locked()) << "the recovered lock is left released";
    EXPECT_TRUE(lock.acquire(false));
    lock.release();
}

TEST_P(SynchronizeTest, AnRLockHeldTwiceByADeadProcessIsRecovered) {
    crew::RLock lock;
    crew::Process holder(options(), die_holding_rlock, lock);
    holder.start();
    holder.join();
    EXPECT_EQ(holder.exitcode(), -SIGKILL);
    EXPECT_THROW(lock.acquire(), crew::OwnerDied);
    EXPECT_TRUE(lock.acquire(true, 1s));
    lock.release();
}

TEST_P(SynchronizeTest, SemaphoreEventAndConditionWorkAcrossProcesses) {
    crew::Semaphore semaphore(0);
    crew::Process releaser(options(), release_twice, semaphore);
    releaser.start();
    EXPECT_TRUE(semaphore.acquire(true, 10s));
    EXPECT_TRUE(semaphore.acquire(true, 10s));
    EXPECT_FALSE(semaphore.acquire(false));
    releaser.join();

    crew::Event event;
    crew::Process setter(options(), set_event, event);
    setter.start();
    EXPECT_TRUE(event.wait(10s));
    setter.join();

    crew::Condition condition;
    crew::Event done;
    std::unique_lock hold(condition);
    crew::Process notifier(options(), notify_when_set, condition, done);
    notifier.start();
    EXPECT_TRUE(condition.wait_for([&] { return done.is_set(); }, 10s));
    hold.unlock();
    notifier.join();
    EXPECT_EQ(notifier.exitcode(), 0);
}

TEST_P(SynchronizeTest, EightProcessesMeetAtABarrier) {
    crew::Barrier barrier(8);
    std::vector<std::unique_ptr<crew::Process>> children;
    for (int i = 0; i < 8; ++i) {
        children.push_back(std::make_unique<crew::Process>(options(), wait_at_barrier, barrier));
        children.back()->start();
    }
    std::set<int> indexes;
    for (auto& child : children) {
        child->join();
        indexes.insert(child->exitcode().value_or(-1));
    }
    EXPECT_EQ(indexes, (std::set<int>{0, 1, 2, 3, 4, 5, 6, 7}));
    EXPECT_FALSE(barrier.broken());
    EXPECT_EQ(barrier.n_waiting(), 0u);
}

// Python's Barrier(parties, action): the last to arrive runs it, in whichever process that is,
// before any party is released.
TEST_P(SynchronizeTest, TheLastPartyRunsTheBarriersActionBeforeAnyIsReleased) {
    char path[] = "/tmp/crew-barrier-action-XXXXXX";
    const int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    close(fd);
    struct Remove {
        const char* path;
        ~Remove() { std::remove(path); }
    } remove{path};
    crew::Barrier barrier(4, AppendPid{path});
    std::vector<std::unique_ptr<crew::Process>> children;
    std::set<pid_t> pids;
    for (int i = 0; i < 4; ++i) {
        children.push_back(std::make_unique<crew::Process>(options(), trip_three_times, barrier,
                                                           std::string(path)));
        children.back()->start();
        pids.insert(children.back()->pid().value_or(-1));
    }
    for (auto& child : children) {
        child->join();
        EXPECT_EQ(child->exitcode(), 0);
    }
    std::ifstream file(path);
    int trips = 0;
    for (pid_t pid; file >> pid; ++trips) EXPECT_TRUE(pids.contains(pid)) << pid;
    EXPECT_EQ(trips, 3);
    EXPECT_FALSE(barrier.broken());
}

INSTANTIATE_TEST_SUITE_P(AllStartMethods, SynchronizeTest,
                         ::testing::Values(StartMethod::forkserver, StartMethod::fork,
                                           StartMethod::spawn),
                         [](const auto& info) { return std::string(crew::to_string(info.param)); });

bool take(crew::Lock lock) {
    return lock.acquire(false);
}

TEST(Lock, PoolTasksTakeItAsAnArgument) {
    crew::Pool pool(2);
    crew::Lock lock;
    lock.acquire();
    EXPECT_FALSE(pool.apply(take, lock)) << "the task took a lock the caller holds";
    lock.release();
    EXPECT_TRUE(pool.apply(take, lock));
    EXPECT_TRUE(lock.locked()) << "the task's acquire is the same lock's";
    EXPECT_EQ(pool.apply(worker_answer), 42);
}

TEST(Lock, AcquireWithATimeoutGivesUp) {
    crew::Lock lock;
    lock.acquire();
    std::thread other([&] {
        const auto start = std::chrono::steady_clock::now();
        EXPECT_FALSE(lock.acquire(true, 50ms));
        EXPECT_GE(std::chrono::steady_clock::now() - start, 45ms);
        EXPECT_FALSE(lock.try_lock());
    });
    other.join();
    EXPECT_FALSE(lock.acquire(true, 10ms)) << "a Lock is not recursive";
    lock.release();
    EXPECT_FALSE(lock.locked());
}

TEST(Lock, OnlyTheHolderReleases) {
    crew::Lock lock;
    EXPECT_THROW(lock.release(), crew::Error);
    lock.acquire();
    std::thread other([&] { EXPECT_THROW(lock.release(), crew::Error); });
    other.join();
    lock.release();
}

TEST(Lock, WorksWithTheStandardLockHolders) {
    crew::Lock lock;
    crew::Lock copy = lock;  // the same lock
    {
        std::lock_guard hold(lock);
        EXPECT_TRUE(copy.locked());
        std::thread other([&] {
            std::unique_lock attempt(copy, std::defer_lock);
            EXPECT_FALSE(attempt.try_lock_for(10ms));
        });
        other.join();
    }
    EXPECT_FALSE(copy.locked());
    crew::RLock rlock;
    std::scoped_lock both(lock, rlock);
    EXPECT_TRUE(lock.locked());
}

TEST(RLock, IsReentrantAndCountsItsLevels) {
    crew::RLock lock;
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(lock.acquire());
    std::thread other([&] { EXPECT_FALSE(lock.acquire(false)); });
    other.join();
    for (int i = 0; i < 3; ++i) lock.release();
    EXPECT_THROW(lock.release(), crew::Error);
    std::thread taker([&] {
        EXPECT_TRUE(lock.acquire(false));
        lock.release();
    });
    taker.join();
}

TEST(Semaphore, CountsAndBlocksAtZero) {
    crew::Semaphore semaphore(2);
    EXPECT_EQ(semaphore.get_value(), 2u);
    EXPECT_TRUE(semaphore.acquire());
    EXPECT_TRUE(semaphore.acquire());
    EXPECT_FALSE(semaphore.acquire(false));
    EXPECT_FALSE(semaphore.acquire(true, 20ms));
    std::thread releaser([&] {
        std::this_thread::sleep_for(10ms);
        semaphore.release();
    });
    EXPECT_TRUE(semaphore.acquire(true, 10s));
    releaser.join();
    semaphore.release(5);
    EXPECT_EQ(semaphore.get_value(), 5u) << "an unbounded semaphore goes above its start";
}

TEST(BoundedSemaphore, RefusesToBeReleasedMoreThanAcquired) {
    crew::BoundedSemaphore semaphore(1);
    EXPECT_THROW(semaphore.release(), crew::Error);
    EXPECT_TRUE(semaphore.acquire());
    semaphore.release();
    EXPECT_EQ(semaphore.get_value(), 1u);
}

TEST(Event, SetClearAndWait) {
    crew::Event event;
    EXPECT_FALSE(event.is_set());
    EXPECT_FALSE(event.wait(10ms));
    event.set();
    EXPECT_TRUE(event.wait());
    EXPECT_TRUE(event.is_set());
    event.clear();
    EXPECT_FALSE(event.is_set());
    std::vector<std::thread> waiters;
    std::atomic<int> woken{0};
    for (int i = 0; i < 4; ++i) {
        waiters.emplace_back([&] {
            if (event.wait(10s)) ++woken;
        });
    }
    std::this_thread::sleep_for(10ms);
    event.set();
    for (auto& waiter : waiters) waiter.join();
    EXPECT_EQ(woken.load(), 4);
}

TEST(Condition, WaitReleasesTheLockAndNotifyWakesWaiters) {
    crew::Condition condition(crew::Lock{});
    int ready = 0;  // guarded by the condition's lock
    std::vector<std::thread> waiters;
    std::atomic<int> saw{0};
    for (int i = 0; i < 3; ++i) {
        waiters.emplace_back([&] {
            std::unique_lock hold(condition);
            if (condition.wait_for([&] { return ready != 0; }, 10s)) ++saw;
        });
    }
    {
        std::lock_guard hold(condition);  // waiters release the lock while they wait
        ready = 1;
        condition.notify_all();
    }
    for (auto& waiter : waiters) waiter.join();
    EXPECT_EQ(saw.load(), 3);
    std::unique_lock hold(condition);
    EXPECT_FALSE(condition.wait(10ms)) << "nobody notified";
    hold.unlock();
    EXPECT_THROW(condition.wait(10ms), crew::Error) << "wait without the lock";
}

TEST(Condition, AnRLockHeldTwiceIsReleasedWhileWaiting) {
    crew::RLock lock;
    crew::Condition condition(lock);
    condition.acquire();
    condition.acquire();
    std::thread notifier([&] {
        std::lock_guard hold(lock);  // possible only if the wait released both levels
        condition.notify();
    });
    EXPECT_TRUE(condition.wait(10s));
    condition.release();
    condition.release();
    notifier.join();
    EXPECT_TRUE(lock.acquire(false));
    lock.release();
}

TEST(Barrier, AbortResetAndTimeoutBreakIt) {
    crew::Barrier barrier(2);
    EXPECT_EQ(barrier.parties(), 2u);
    std::thread waiter([&] { EXPECT_THROW(barrier.wait(10s), crew::BrokenBarrierError); });
    for (int i = 0; i < 1000 && barrier.n_waiting() == 0; ++i) std::this_thread::sleep_for(1ms);
    EXPECT_EQ(barrier.n_waiting(), 1u);
    barrier.abort();
    waiter.join();
    EXPECT_TRUE(barrier.broken());
    EXPECT_THROW(barrier.wait(), crew::BrokenBarrierError);
    barrier.reset();
    EXPECT_FALSE(barrier.broken());
    EXPECT_THROW(barrier.wait(20ms), crew::BrokenBarrierError) << "the timeout breaks it";
    EXPECT_TRUE(barrier.broken());
    barrier.reset();
    std::thread partner([&] { barrier.wait(10s); });
    EXPECT_NO_THROW(barrier.wait(10s));
    partner.join();
    EXPECT_THROW(crew::Barrier(0), crew::Error);
}

// An action that throws breaks the barrier: its party gets the exception, the others
// BrokenBarrierError, as in Python.
TEST(Barrier, AThrowingActionBreaksIt) {
    crew::Barrier barrier(2, ThrowingAction{});
    std::thread waiter([&] { EXPECT_THROW(barrier.wait(10s), crew::BrokenBarrierError); });
    for (int i = 0; i < 1000 && barrier.n_waiting() == 0; ++i) std::this_thread::sleep_for(1ms);
    EXPECT_THROW(barrier.wait(10s), std::invalid_argument);
    waiter.join();
    EXPECT_TRUE(barrier.broken());
}

}  // namespace
