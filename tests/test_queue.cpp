// crew::Queue, crew::SimpleQueue and crew::JoinableQueue: first in, first out between threads
// and processes, with Python's blocking, timeouts and errors, and no torn or duplicated message
// when a producer or a consumer is killed.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <crew/crew.hpp>
#include <cstdint>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace {

using namespace std::chrono_literals;
using crew::StartMethod;

constexpr std::uint64_t no_more = std::numeric_limits<std::uint64_t>::max();

std::uint64_t numbered(std::uint64_t producer, std::uint64_t sequence) {
    return producer << 32 | sequence;
}

void put_processed(crew::Queue<std::string> queue) {
    queue.put("Processed!");
}

void produce_numbers(crew::Queue<std::uint64_t> queue, std::uint32_t producer,
                     std::uint32_t count) {
    for (std::uint32_t sequence = 0; sequence < count; ++sequence) {
        queue.put(numbered(producer, sequence));
    }
}

// Marks each number got in seen (producer * per_producer + sequence) until no_more, and counts
// in order_errors the numbers of a producer that came before an earlier one of it.
void consume_numbers(crew::Queue<std::uint64_t> queue, crew::Array<std::uint32_t> seen,
                     std::uint32_t per_producer, crew::Array<std::uint32_t> order_errors) {
    std::vector<std::int64_t> last(order_errors.size(), -1);
    while (true) {
        const std::uint64_t message = queue.get();
        if (message == no_more) return;
        const std::uint64_t producer = message >> 32;
        const std::int64_t sequence = static_cast<std::uint32_t>(message);
        std::atomic_ref(seen[producer * per_producer + sequence]).fetch_add(1);
        if (sequence <= last[producer]) std::atomic_ref(order_errors[producer]).fetch_add(1);
        last[producer] = sequence;
    }
}

// Numbers never marked as got, and numbers got more than once.
struct Tally {
    std::size_t lost = 0;
    std::size_t duplicated = 0;
};
Tally count_marks(const crew::Array<std::uint32_t>& seen) {
    Tally tally;
    for (std::uint32_t count : seen) {
        tally.lost += count == 0;
        tally.duplicated += count > 1;
    }
    return tally;
}

std::vector<std::uint8_t> big_message(std::uint8_t id, std::size_t size) {
    return std::vector<std::uint8_t>(size, id);
}

void produce_big(crew::Queue<std::vector<std::uint8_t>> queue, std::uint8_t id, std::size_t size) {
    queue.put(big_message(id, size));
}

// Marks in seen the id of each message got, and in damaged those whose bytes are not all the id,
// until an empty message.
void consume_big(crew::Queue<std::vector<std::uint8_t>> queue, crew::Array<std::uint32_t> seen,
                 crew::Array<std::uint32_t> damaged) {
    while (true) {
        const std::vector<std::uint8_t> message = queue.get();
        if (message.empty()) return;
        const std::uint8_t id = message.front();
        std::atomic_ref(seen[id]).fetch_add(1);
        for (std::uint8_t byte : message) {
            if (byte != id) {
                std::atomic_ref(damaged[id]).fetch_add(1);
                break;
            }
        }
    }
}

// Puts a message of 512 MiB, with nobody reading.
void put_huge_then_wait(crew::Queue<std::vector<char>> queue, crew::Event started) {
    std::vector<char> huge(std::size_t{512} << 20, 'x');
    started.set();
    queue.put(huge);
}

// Bytes of queue backlogs (see crew/detail/ring_chain.hpp) this process has in memory.
std::size_t backlog_resident_bytes() {
    std::ifstream maps("/proc/self/smaps");
    std::string line;
    bool in_backlog = false;
    std::size_t bytes = 0;
    while (std::getline(maps, line)) {
        if (line.find("crew-queue-backlog") != std::string::npos) {
            in_backlog = true;
        } else if (line.rfind("Rss:", 0) == 0 && in_backlog) {
            bytes += std::stoul(line.substr(4)) * 1024;
            in_backlog = false;
        } else if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) &&
                   line.find('-') != std::string::npos && line.find(':') == std::string::npos) {
            in_backlog = false;
        }
    }
    return bytes;
}

// Puts count numbers and returns: the numbers outlive their producer.
void put_and_leave(crew::Queue<long> queue, long count) {
    for (long i = 0; i < count; ++i) queue.put(i);
}

void take_and_mark_done(crew::JoinableQueue<int> queue, crew::Value<long> total, int count) {
    for (int i = 0; i < count; ++i) {
        const int value = queue.get();
        std::this_thread::sleep_for(1ms);
        total.set(total.value() + value);  // the only writer
        queue.task_done();
    }
}

int put_square(crew::Queue<int> queue, int n) {
    queue.put(n * n);
    return n;
}

// Python's way of sharing a queue with a pool: an initializer that keeps it in a global.
std::optional<crew::Queue<int>> worker_queue;
void keep_queue(crew::Queue<int> queue) {
    worker_queue = queue;
}
int put_cube(int n) {
    worker_queue->put(n * n * n);
    return n;
}

class QueueTest : public ::testing::TestWithParam<StartMethod> {
  protected:
    crew::ProcessOptions options() const { return {.start_method = GetParam()}; }
};

TEST_P(QueueTest, AWorkerPutsProcessed) {
    crew::Queue<std::string> queue;
    crew::Process worker(options(), put_processed, queue);
    worker.start();
    EXPECT_EQ(queue.get(10s), "Processed!");
    worker.join();
    EXPECT_EQ(worker.exitcode(), 0);
}

TEST_P(QueueTest, FourProducersAndFourConsumersPassAMillionNumbers) {
    constexpr std::uint32_t producers = 4, consumers = 4, per_producer = 250'000;
    crew::Queue<std::uint64_t> queue;
    crew::Array<std::uint32_t> seen(producers * per_producer);
    crew::Array<std::uint32_t> order_errors(producers);
    std::vector<std::unique_ptr<crew::Process>> processes;
    for (std::uint32_t c = 0; c < consumers; ++c) {
        processes.push_back(std::make_unique<crew::Process>(options(), consume_numbers, queue, seen,
                                                            per_producer, order_errors));
    }
    for (std::uint32_t p = 0; p < producers; ++p) {
        processes.push_back(
            std::make_unique<crew::Process>(options(), produce_numbers, queue, p, per_producer));
    }
    for (auto& process : processes) process->start();
    for (std::uint32_t p = 0; p < producers; ++p) {
        ASSERT_TRUE(processes[consumers + p]->join(120s)) << "a producer did not finish";
    }
    for (std::uint32_t c = 0; c < consumers; ++c) queue.put(no_more);
    for (std::uint32_t c = 0; c < consumers; ++c) {
        ASSERT_TRUE(processes[c]->join(120s)) << "a consumer did not finish";
        EXPECT_EQ(processes[c]->exitcode(), 0);
    }
    const Tally tally = count_marks(seen);
    EXPECT_EQ(tally.lost, 0u);
    EXPECT_EQ(tally.duplicated, 0u);
    for (std::uint32_t errors : order_errors) EXPECT_EQ(errors, 0u) << "FIFO per producer";
    EXPECT_TRUE(queue.empty());
}

// Consumers SIGKILLed every 2 to 5 ms, and replaced, while four producers stream numbers: the
// queue never wedges, a kill loses at most the message its consumer was taking, none arrives
// twice, and once drained the queue is empty, with all its room back.
class QueueKillStormTest : public ::testing::TestWithParam<std::tuple<StartMethod, std::size_t>> {};

TEST_P(QueueKillStormTest, KilledConsumersCostAtMostTheirMessage) {
    const auto [method, maxsize] = GetParam();
    // An unbounded queue passes messages faster: it takes more of them to last as long.
#if defined(__SANITIZE_ADDRESS__)
    const std::uint32_t per_producer = maxsize == 0 ? 200'000 : 50'000;
#else
    const std::uint32_t per_producer = maxsize == 0 ? 1'000'000 : 250'000;
#endif
    constexpr std::uint32_t producers = 4, consumers = 4;
    crew::Queue<std::uint64_t> queue(maxsize);
    crew::Array<std::uint32_t> seen(producers * per_producer);
    crew::Array<std::uint32_t> order_errors(producers);
    // Daemons: should the queue wedge, the failed test still ends them.
    const crew::ProcessOptions options{.daemon = true, .start_method = method};
    auto consumer = [&] {
        auto process = std::make_unique<crew::Process>(options, consume_numbers, queue, seen,
                                                       per_producer, order_errors);
        process->start();
        return process;
    };
    std::vector<std::unique_ptr<crew::Process>> taking, putting;
    for (std::uint32_t c = 0; c < consumers; ++c) taking.push_back(consumer());
    for (std::uint32_t p = 0; p < producers; ++p) {
        putting.push_back(
            std::make_unique<crew::Process>(options, produce_numbers, queue, p, per_producer));
        putting.back()->start();
    }
    std::mt19937 random(std::random_device{}());
    std::uniform_int_distribution<int> gap_us(2'000, 5'000);
    int kills = 0;
    const auto give_up = std::chrono::steady_clock::now() + 20s;
    auto producing = [&] {
        return std::any_of(putting.begin(), putting.end(),
                           [](const auto& producer) { return producer->is_alive(); });
    };
    auto got = [&] {
        std::size_t marked = 0;
        for (std::uint32_t& count : seen) marked += std::atomic_ref(count).load() != 0;
        return marked;
    };
    while ((producing() || !queue.empty()) && kills < 400 &&
           std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(std::chrono::microseconds(gap_us(random)));
        auto& victim = taking[random() % consumers];
        victim->kill();
        victim->join();
        ++kills;
        victim = consumer();
    }
    // A wedged queue gets nowhere; a slow one, on a machine busy with other work, gets there in
    // the end: the producers are waited for while messages keep arriving (for at most 60 s).
    const auto last_chance = std::chrono::steady_clock::now() + 60s;
    for (auto& producer : putting) {
        std::size_t arrived = got();
        while (!producer->join(10s) && std::chrono::steady_clock::now() < last_chance) {
            const std::size_t now_arrived = got();
            ASSERT_GT(now_arrived, arrived)
                << "a producer is stuck: the queue wedged after " << kills << " kills, with "
                << queue.qsize() << " messages in it by its count and " << now_arrived << " of "
                << producers * per_producer << " got, none in the last 10 s";
            arrived = now_arrived;
        }
        ASSERT_FALSE(producer->is_alive()) << "the producers took more than 60 s after the kills";
    }
    for (std::uint32_t c = 0; c < consumers; ++c) queue.put(no_more, 10s);
    for (auto& survivor : taking) {
        ASSERT_TRUE(survivor->join(30s)) << "a consumer did not finish";
        EXPECT_EQ(survivor->exitcode(), 0);
    }
    EXPECT_GE(kills, 10) << "too few kills to prove anything";
    const Tally tally = count_marks(seen);
    EXPECT_LE(tally.lost, static_cast<std::size_t>(kills));
    EXPECT_EQ(tally.duplicated, 0u);
    for (std::uint32_t errors : order_errors) EXPECT_EQ(errors, 0u) << "FIFO per producer";
    EXPECT_EQ(queue.qsize(), 0u);
    EXPECT_TRUE(queue.empty());
    EXPECT_FALSE(queue.full());
    // All the room is back, and no more: a bounded queue takes maxsize messages at once, refuses
    // one more (a count of got run ahead of the messages would let it in), and gives them back.
    const std::size_t room = maxsize == 0 ? 100 : maxsize;
    for (std::size_t i = 0; i < room; ++i) EXPECT_NO_THROW(queue.put_nowait(i));
    if (maxsize != 0) {
        EXPECT_THROW(queue.put_nowait(room), crew::Full);
    }
    for (std::size_t i = 0; i < room; ++i) EXPECT_EQ(queue.get_nowait(), i);
    EXPECT_TRUE(queue.empty());
}

INSTANTIATE_TEST_SUITE_P(
    AllStartMethods, QueueKillStormTest,
    ::testing::Combine(::testing::Values(StartMethod::forkserver, StartMethod::fork,
                                         StartMethod::spawn),
                       ::testing::Values(std::size_t{0}, std::size_t{8}, std::size_t{16})),
    [](const auto& info) {
        const std::size_t maxsize = std::get<1>(info.param);
        return std::string(crew::to_string(std::get<0>(info.param))) +
               (maxsize == 0 ? "_unbounded" : "_maxsize_" + std::to_string(maxsize));
    });

// Python's feeder thread keeps a child that put much alive until it is read (the "joining
// processes that use queues" deadlock of its docs); crew's producer just leaves.
TEST_P(QueueTest, AProducerMayEndBeforeItsMessagesAreRead) {
    constexpr long count = 200'000;
    crew::Queue<long> queue;
    crew::Process producer(options(), put_and_leave, queue, count);
    producer.start();
    ASSERT_TRUE(producer.join(60s)) << "the producer waited for a reader";
    EXPECT_EQ(producer.exitcode(), 0);
    for (long i = 0; i < count; ++i) ASSERT_EQ(queue.get(10s), i);
    EXPECT_TRUE(queue.empty());
}

TEST_P(QueueTest, PoolTasksTakeAQueueAsAnArgument) {
    crew::Queue<int> queue;
    crew::Pool pool({.processes = 2, .start_method = GetParam()});
    std::vector<crew::AsyncResult<int>> results;
    for (int n = 0; n < 50; ++n) results.push_back(pool.apply_async(put_square, queue, n));
    for (auto& result : results) result.get(30s);
    long total = 0;
    for (int n = 0; n < 50; ++n) total += queue.get(10s);
    EXPECT_EQ(total, 49L * 50 * 99 / 6);
    EXPECT_THROW(queue.get_nowait(), crew::Empty);
}

TEST_P(QueueTest, APoolsInitializerKeepsAQueueForItsTasks) {
    crew::Queue<int> queue;
    crew::Pool pool({.processes = 2,
                     .initializer = crew::Initializer(keep_queue, queue),
                     .start_method = GetParam()});
    EXPECT_EQ(pool.map(put_cube, crew::range(1, 21)).size(), 20u);
    long total = 0;
    for (int n = 0; n < 20; ++n) total += queue.get(10s);
    EXPECT_EQ(total, 210L * 210);
}

INSTANTIATE_TEST_SUITE_P(AllStartMethods, QueueTest,
                         ::testing::Values(StartMethod::forkserver, StartMethod::fork,
                                           StartMethod::spawn),
                         [](const auto& info) { return std::string(crew::to_string(info.param)); });

TEST(Queue, FirstInFirstOutWithSizesAndErrors) {
    crew::Queue<int> queue;
    EXPECT_TRUE(queue.empty());
    EXPECT_FALSE(queue.full()) << "no maxsize: never full";
    for (int i = 0; i < 100; ++i) queue.put(i);
    EXPECT_EQ(queue.qsize(), 100u);
    EXPECT_FALSE(queue.empty());
    for (int i = 0; i < 100; ++i) EXPECT_EQ(queue.get(), i);
    EXPECT_TRUE(queue.empty());
    EXPECT_THROW(queue.get_nowait(), crew::Empty);
    const auto before = std::chrono::steady_clock::now();
    EXPECT_THROW(queue.get(50ms), crew::Empty);
    EXPECT_GE(std::chrono::steady_clock::now() - before, 50ms);
}

TEST(Queue, MaxsizeBlocksPutUntilAGet) {
    crew::Queue<std::string> queue(2);
    queue.put("a");
    queue.put_nowait("b");
    EXPECT_TRUE(queue.full());
    EXPECT_THROW(queue.put_nowait("c"), crew::Full);
    const auto before = std::chrono::steady_clock::now();
    EXPECT_THROW(queue.put("c", 50ms), crew::Full);
    EXPECT_GE(std::chrono::steady_clock::now() - before, 50ms);
    std::thread getter([&] {
        std::this_thread::sleep_for(20ms);
        EXPECT_EQ(queue.get(), "a");
    });
    queue.put("c", 10s);  // waits for the getter
    getter.join();
    EXPECT_EQ(queue.get(), "b");
    EXPECT_EQ(queue.get(), "c");
}

// Python's put() never waits on a queue without maxsize: neither does crew's, however much waits
// unread, and the memory that took is given back once it is read.
class UnboundedQueueTest : public ::testing::TestWithParam<long> {};

TEST_P(UnboundedQueueTest, PutNeverWaitsWhenTheReaderComesLater) {
    const long count = GetParam();
    crew::Queue<long> queue;
    for (long i = 0; i < count; ++i) ASSERT_NO_THROW(queue.put_nowait(i)) << "put " << i;
    EXPECT_EQ(queue.qsize(), static_cast<std::size_t>(count));
    EXPECT_GT(backlog_resident_bytes(), std::size_t{1} << 20) << "the backlog grew past 1 MiB";
    for (long i = 0; i < count; ++i) ASSERT_EQ(queue.get_nowait(), i);
    // The writer goes back to the warm ring once all is read, and the reader gives the rest back.
    queue.put(-1);
    EXPECT_EQ(queue.get_nowait(), -1);
    EXPECT_LE(backlog_resident_bytes(), crew::detail::RingChain::segments * 4096)
        << "only a page of counters a ring stays";
    EXPECT_TRUE(queue.empty());
}

INSTANTIATE_TEST_SUITE_P(Counts, UnboundedQueueTest, ::testing::Values(300'000L, 1'000'000L));

TEST(Queue, AMaxsizeCountsMessagesNotBytes) {
    crew::Queue<std::vector<char>> queue(2);
    const std::vector<char> big(4 << 20, 'b');
    queue.put_nowait(big);
    queue.put_nowait(big);
    EXPECT_THROW(queue.put_nowait(big), crew::Full);
    EXPECT_EQ(queue.get_nowait(), big);
    EXPECT_EQ(queue.get_nowait(), big);
}

TEST(Queue, MessagesLargerThanTheBufferPassBetweenThreads) {
    crew::Queue<std::vector<std::uint8_t>> queue;
    std::thread producer([&] {
        for (std::uint8_t id = 1; id <= 3; ++id) queue.put(big_message(id, (8 << 20) + id));
    });
    for (std::uint8_t id = 1; id <= 3; ++id) {
        EXPECT_TRUE(queue.get(30s) == big_message(id, (8 << 20) + id));
    }
    producer.join();
}

TEST(Queue, ThreadsShareCopiesOfOneQueue) {
    crew::Queue<int> queue;
    std::atomic<long> total{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([copy = queue]() mutable {
            for (int i = 1; i <= 10'000; ++i) copy.put(i);
        });
        threads.emplace_back([copy = queue, &total]() mutable {
            for (int i = 0; i < 10'000; ++i) total += copy.get(30s);
        });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(total, 4L * 10'000 * 10'001 / 2);
    EXPECT_TRUE(queue.empty());
}

TEST(Queue, CloseStopsThisProcessesPutsAndGets) {
    crew::Queue<int> queue;
    crew::Queue<int> copy = queue;
    queue.put(1);
    copy.close();
    EXPECT_THROW(queue.put(2), crew::Error);
    EXPECT_THROW(queue.get(), crew::Error);
}

TEST(Queue, RefusesMessagesCarryingDescriptors) {
    crew::Queue<crew::Lock> queue;
    EXPECT_THROW(queue.put(crew::Lock()), crew::Error);
    EXPECT_TRUE(queue.empty());
}

TEST(Queue, FourProducersAndFourConsumersPass100MiBMessages) {
    constexpr std::uint32_t processes_each = 4;
    crew::Queue<std::vector<std::uint8_t>> queue;
    crew::Array<std::uint32_t> seen(processes_each + 1), damaged(processes_each + 1);
    std::vector<std::unique_ptr<crew::Process>> consumers, producers;
    for (std::uint32_t i = 0; i < processes_each; ++i) {
        consumers.push_back(std::make_unique<crew::Process>(consume_big, queue, seen, damaged));
        producers.push_back(std::make_unique<crew::Process>(
            produce_big, queue, static_cast<std::uint8_t>(i + 1), std::size_t{100} << 20));
    }
    for (auto& process : consumers) process->start();
    for (auto& process : producers) process->start();
    for (auto& process : producers) ASSERT_TRUE(process->join(300s));
    for (std::uint32_t i = 0; i < processes_each; ++i) queue.put({});
    for (auto& process : consumers) {
        ASSERT_TRUE(process->join(300s));
        EXPECT_EQ(process->exitcode(), 0);
    }
    for (std::uint32_t id = 1; id <= processes_each; ++id) {
        EXPECT_EQ(seen[id], 1u) << "message " << id;
        EXPECT_EQ(damaged[id], 0u) << "message " << id;
    }
}

TEST(Queue, AConsumerKilledMidStreamLosesAtMostTheMessageItHeld) {
    constexpr std::uint32_t count = 200'000;
    crew::Queue<std::uint64_t> queue;
    crew::Array<std::uint32_t> seen(count), order_errors(1);
    crew::Process producer(produce_numbers, queue, 0u, count);
    crew::Process victim(consume_numbers, queue, seen, count, order_errors);
    producer.start();
    victim.start();
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    while (std::atomic_ref(seen[count / 4]).load() == 0 &&
           std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(100us);
    }
    victim.kill();
    victim.join();
    crew::Process survivor(consume_numbers, queue, seen, count, order_errors);
    survivor.start();
    ASSERT_TRUE(producer.join(60s));
    queue.put(no_more);
    ASSERT_TRUE(survivor.join(60s));
    EXPECT_EQ(survivor.exitcode(), 0);
    const Tally tally = count_marks(seen);
    EXPECT_LE(tally.lost, 1u);
    EXPECT_EQ(tally.duplicated, 0u);
    EXPECT_EQ(order_errors[0], 0u);
}

TEST(Queue, AConsumerKilledInsideALargeMessageLeavesTheNextWhole) {
    crew::Queue<std::vector<std::uint8_t>> queue;
    crew::Array<std::uint32_t> seen(8), damaged(8);
    crew::Process victim(consume_big, queue, seen, damaged);
    victim.start();
    std::thread producer([&] {
        for (std::uint8_t id = 1; id <= 6; ++id) queue.put(big_message(id, 4 << 20));
        queue.put({});
    });
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    while (std::atomic_ref(seen[1]).load() == 0 && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(100us);
    }
    std::this_thread::sleep_for(1ms);  // most likely inside the second message
    victim.kill();
    victim.join();
    std::vector<std::uint8_t> got;
    while (true) {
        std::vector<std::uint8_t> message = queue.get(60s);
        if (message.empty()) break;
        EXPECT_TRUE(message == big_message(message.front(), 4 << 20)) << "torn message";
        got.push_back(message.front());
    }
    producer.join();
    for (std::size_t i = 1; i < got.size(); ++i) EXPECT_LT(got[i - 1], got[i]);
    std::uint32_t received = static_cast<std::uint32_t>(got.size());
    for (std::uint8_t id = 1; id <= 6; ++id) {
        received += seen[id];
        EXPECT_EQ(damaged[id], 0u);
    }
    EXPECT_GE(received, 5u) << "at most the message the killed consumer held is lost";
    EXPECT_EQ(queue.qsize(), 0u) << "a message lost with its consumer still counts as got";
    EXPECT_TRUE(queue.empty());
}

TEST(Queue, AProducerKilledInsideAMessageLeavesNothingTorn) {
    crew::Queue<std::vector<char>> queue;
    crew::Event started;
    crew::Process producer(put_huge_then_wait, queue, started);
    producer.start();
    ASSERT_TRUE(started.wait(30s));
    // Writing 512 MiB into fresh shared pages takes a second or more: most likely, the producer
    // dies half-way through its message.
    std::this_thread::sleep_for(200ms);
    producer.kill();
    producer.join();
    queue.put({'a'}, 30s);
    // The huge message arrives whole or not at all, and the next one after it.
    for (int message = 0; message < 2; ++message) {
        const std::vector<char> got = queue.get(60s);
        if (got == std::vector<char>{'a'}) break;
        EXPECT_EQ(got.size(), std::size_t{512} << 20) << "torn message";
        EXPECT_EQ(std::count(got.begin(), got.end(), 'x'), std::ptrdiff_t{512} << 20);
    }
    EXPECT_TRUE(queue.empty());
    EXPECT_THROW(queue.get_nowait(), crew::Empty);
}

TEST(JoinableQueue, JoinWaitsUntilEveryMessageIsDone) {
    crew::JoinableQueue<int> queue;
    crew::Value<long> total(0);
    crew::Process consumer(take_and_mark_done, queue, total, 20);
    consumer.start();
    for (int i = 1; i <= 20; ++i) queue.put(i);
    queue.join();
    EXPECT_EQ(total.value(), 210) << "join returned before every task_done";
    consumer.join();
    EXPECT_THROW(queue.task_done(), crew::Error) << "more task_done calls than messages";
}

TEST(SimpleQueue, PutGetEmptyAndClose) {
    crew::SimpleQueue<std::string> queue;
    EXPECT_TRUE(queue.empty());
    queue.put("one");
    queue.put("two");
    EXPECT_FALSE(queue.empty());
    EXPECT_EQ(queue.get(), "one");
    EXPECT_EQ(queue.get(), "two");
    queue.close();
    EXPECT_THROW(queue.put("three"), crew::Error);
}

}  // namespace
