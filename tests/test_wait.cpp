// crew::wait over connections, queues, processes and descriptors (Python's
// multiprocessing.connection.wait): it returns what is ready, in the order given, as soon as
// something is, including a process that died however it died; it takes nothing, and leaves no
// thread behind.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <crew/crew.hpp>
#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using crew::StartMethod;
using Clock = std::chrono::steady_clock;

std::size_t thread_count() {
    const auto tasks = std::filesystem::directory_iterator("/proc/self/task");
    return static_cast<std::size_t>(std::distance(begin(tasks), end(tasks)));
}

void put_after(crew::Queue<int> queue, int milliseconds, int value) {
    std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds));
    queue.put(value);
}

void send_after(crew::Connection<int> connection, int milliseconds, int value) {
    std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds));
    connection.send(value);
}

void segfault_after(crew::Queue<int> queue, int milliseconds) {
    std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds));
    (void)queue;
    ::raise(SIGSEGV);
}

void sleep_long(crew::Queue<int> queue) {
    (void)queue;
    std::this_thread::sleep_for(60s);
}

class WaitTest : public ::testing::TestWithParam<StartMethod> {
  protected:
    crew::ProcessOptions options() const { return {.start_method = GetParam()}; }
};

TEST_P(WaitTest, AMessageFromAnotherProcessEndsTheWaitAndStaysInTheQueue) {
    crew::Queue<int> queue;
    crew::Process producer(options(), put_after, queue, 200, 42);
    producer.start();
    const std::size_t threads_before = thread_count();
    const auto ready = crew::wait({queue, producer}, 30s);
    ASSERT_FALSE(ready.empty());
    EXPECT_TRUE(ready[0] == queue);  // and the producer too, if it has ended since
    EXPECT_EQ(thread_count(), threads_before) << "a watcher thread outlived the wait";
    EXPECT_EQ(queue.get_nowait(), 42);
    producer.join();
}

// The trap Python users know: a consumer waits on a queue whose producer has crashed.
TEST_P(WaitTest, AProducerThatSegfaultsEndsTheWait) {
    crew::Queue<int> queue;
    crew::Process producer(options(), segfault_after, queue, 100);
    producer.start();
    const auto ready = crew::wait({queue, producer}, 30s);
    ASSERT_EQ(ready.size(), 1u);
    EXPECT_TRUE(ready[0] == producer);
    producer.join();
    EXPECT_EQ(producer.exitcode(), -SIGSEGV);
}

TEST_P(WaitTest, AProducerKilledFromOutsideEndsTheWait) {
    crew::Queue<int> queue;
    auto [receiving, sending] = crew::Pipe<int>();
    crew::Process producer(options(), sleep_long, queue);
    producer.start();
    std::thread killer([&] {
        std::this_thread::sleep_for(150ms);
        ::kill(*producer.pid(), SIGKILL);
    });
    const auto ready = crew::wait({receiving, queue, producer}, 30s);
    killer.join();
    ASSERT_EQ(ready.size(), 1u);
    EXPECT_TRUE(ready[0] == producer);
    producer.join();
    EXPECT_EQ(producer.exitcode(), -SIGKILL);
}

TEST_P(WaitTest, AConnectionIsReadyForAMessageAndAgainWhenItsOtherEndEnds) {
    auto [receiving, sending] = crew::Pipe<int>();
    crew::Process sender(options(), send_after, std::move(sending), 100, 7);
    sender.start();
    auto ready = crew::wait({receiving}, 30s);
    ASSERT_EQ(ready.size(), 1u);
    EXPECT_TRUE(ready[0] == receiving);
    EXPECT_EQ(receiving.recv(), 7);
    sender.join();
    ready = crew::wait({receiving}, 30s);
    ASSERT_EQ(ready.size(), 1u) << "the sender's end closed with its process";
    EXPECT_THROW(receiving.recv(), crew::EOFError);
}

INSTANTIATE_TEST_SUITE_P(AllStartMethods, WaitTest,
                         ::testing::Values(StartMethod::forkserver, StartMethod::fork,
                                           StartMethod::spawn),
                         [](const auto& info) { return std::string(crew::to_string(info.param)); });

TEST(Wait, ATimeoutWithNothingReadyReturnsNothing) {
    crew::Queue<int> queue;
    auto [receiving, sending] = crew::Pipe<int>();
    const auto start = Clock::now();
    EXPECT_TRUE(crew::wait({queue, receiving}, 150ms).empty());
    EXPECT_GE(Clock::now() - start, 150ms);
    EXPECT_TRUE(crew::wait({queue, receiving}, 0ms).empty());
}

TEST(Wait, EverythingReadyComesBackInTheOrderGiven) {
    crew::Queue<int> first;
    crew::JoinableQueue<int> second;
    crew::SimpleQueue<int> third;
    auto [receiving, sending] = crew::Pipe<int>();
    second.put(2);
    third.put(3);
    sending.send(4);
    const auto ready = crew::wait({first, receiving, third, second}, 0ms);
    ASSERT_EQ(ready.size(), 3u);
    EXPECT_TRUE(ready[0] == receiving);
    EXPECT_TRUE(ready[1] == third);
    EXPECT_TRUE(ready[2] == second);
    EXPECT_FALSE(ready[0] == first);
}

TEST(Wait, MessagesFromThreadsWakeEachKindOfObject) {
    crew::Queue<int> queue;
    auto [receiving, sending] = crew::Pipe<int>();
    int pipe_fds[2];
    ASSERT_EQ(::pipe(pipe_fds), 0);
    for (int round = 0; round < 3; ++round) {
        std::thread writer([&, round] {
            std::this_thread::sleep_for(50ms);
            if (round == 0) {
                queue.put(1);
            } else if (round == 1) {
                sending.send(1);
            } else {
                EXPECT_EQ(::write(pipe_fds[1], "x", 1), 1);
            }
        });
        const auto ready = crew::wait({queue, receiving, pipe_fds[0]}, 30s);
        writer.join();
        ASSERT_EQ(ready.size(), 1u) << "round " << round;
        const crew::Waitable expected[] = {queue, receiving, pipe_fds[0]};
        EXPECT_TRUE(ready[0] == expected[round]) << "round " << round;
        if (round == 0) {
            EXPECT_EQ(queue.get_nowait(), 1);
        } else if (round == 1) {
            EXPECT_EQ(receiving.recv(), 1);
        }
    }
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
}

// Copies of a queue are the same queue; a process is its sentinel.
TEST(Wait, AWaitableIsTheObjectItWasMadeFrom) {
    crew::Queue<int> queue;
    crew::Queue<int> copy = queue;
    crew::Queue<int> other;
    EXPECT_TRUE(crew::Waitable(queue) == copy);
    EXPECT_FALSE(crew::Waitable(queue) == other);
    crew::Process process(sleep_long, queue);
    process.start();
    EXPECT_TRUE(crew::Waitable(process) == process.sentinel());
    process.kill();
    process.join();
}

TEST(Wait, BadInputIsRefusedWithAClearError) {
    auto [receiving, sending] = crew::Pipe<int>();
    receiving.close();
    EXPECT_THROW(crew::wait({receiving}, 0ms), crew::Error);
    EXPECT_THROW(crew::wait(std::span<const crew::Waitable>{}), crew::Error);
    crew::Process not_started(sleep_long, crew::Queue<int>());
    EXPECT_THROW((void)crew::Waitable(not_started), crew::Error);
    int pipe_fds[2];
    ASSERT_EQ(::pipe(pipe_fds), 0);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    try {
        (void)crew::wait({pipe_fds[0]}, 0ms);
        ADD_FAILURE() << "a closed descriptor was waited for";
    } catch (const crew::Error& error) {
        EXPECT_NE(std::string(error.what()).find("not open"), std::string::npos) << error.what();
    }
}

// Many waits in a row, each sleeping on a queue while the producer thread puts: no message is
// missed (each wait ends) and no watcher thread is left.
TEST(Wait, ALoopOfWaitsSeesEveryMessage) {
    crew::Queue<int> queue;
    const std::size_t threads_before = thread_count();
    std::thread producer([&] {
        for (int i = 0; i < 200; ++i) {
            std::this_thread::sleep_for(std::chrono::microseconds(200 + (i % 7) * 100));
            queue.put(i);
        }
    });
    int got = 0;
    for (int attempt = 0; attempt < 10'000 && got < 200; ++attempt) {
        if (crew::wait({queue}, 10s).empty()) break;
        while (got < 200) {
            try {
                EXPECT_EQ(queue.get_nowait(), got);
                ++got;
            } catch (const crew::Empty&) {
                break;
            }
        }
    }
    producer.join();
    EXPECT_EQ(got, 200);
    EXPECT_EQ(thread_count(), threads_before);
}

}  // namespace
