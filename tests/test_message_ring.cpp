// The shared-memory message ring under pools and queues: order, sizes, waiting, processes, death.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <crew/detail/message_ring.hpp>
#include <crew/detail/shared_mapping.hpp>
#include <crew/detail/unique_fd.hpp>
#include <crew/error.hpp>
#include <crew/process.hpp>
#include <csignal>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

namespace {

using crew::detail::RingReader;
using crew::detail::RingWriter;
using crew::detail::SharedMapping;

constexpr std::size_t kCapacity = 1 << 16;

SharedMapping make_ring() {
    return SharedMapping::create(crew::detail::ring_footprint(kCapacity), "crew-test-ring");
}

// Message i: i % 5000 bytes, every byte (i + position) mod 251, so that order and content show.
std::vector<std::byte> message(std::size_t i, std::size_t size) {
    std::vector<std::byte> bytes(size);
    for (std::size_t k = 0; k < size; ++k) bytes[k] = std::byte((i + k) % 251);
    return bytes;
}

bool is_message(std::span<const std::byte> got, std::size_t i, std::size_t size) {
    if (got.size() != size) return false;
    for (std::size_t k = 0; k < size; ++k) {
        if (got[k] != std::byte((i + k) % 251)) return false;
    }
    return true;
}

std::size_t size_of_message(std::size_t i) {
    switch (i % 7) {
        case 0:
            return 0;
        case 1:
            return 1;
        case 2:
            return 8;
        case 3:
            return kCapacity / 4 - 8;  // the largest read in place
        case 4:
            return kCapacity * 3;  // several pieces
        default:
            return i % 5000;
    }
}

TEST(MessageRing, MessagesOfEverySizeArriveInOrderBetweenThreads) {
    SharedMapping memory = make_ring();
    constexpr std::size_t kMessages = 3000;
    std::thread producer([&] {
        RingWriter writer(memory.data(), kCapacity);
        for (std::size_t i = 0; i < kMessages; ++i) writer.write(message(i, size_of_message(i)));
    });
    RingReader reader(memory.data(), kCapacity);
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < kMessages; ++i) {
        if (!is_message(reader.read(), i, size_of_message(i))) ++wrong;
        reader.release();
    }
    producer.join();
    EXPECT_EQ(wrong, 0u);
    EXPECT_FALSE(reader.try_read().has_value());
}

TEST(MessageRing, ReadingAgainBeforeReleaseIsAnError) {
    SharedMapping memory = make_ring();
    RingWriter writer(memory.data(), kCapacity);
    RingReader reader(memory.data(), kCapacity);
    writer.write(message(1, 10));
    writer.write(message(2, 10));
    ASSERT_TRUE(reader.try_read().has_value());
    EXPECT_THROW(reader.try_read(), crew::Error);
    reader.release();
    EXPECT_TRUE(is_message(*reader.try_read(), 2, 10));
}

TEST(MessageRing, ACapacityThatIsNoPowerOfTwoIsRefused) {
    SharedMapping memory = make_ring();
    EXPECT_THROW(RingWriter(memory.data(), 5000), crew::Error);
    EXPECT_THROW(RingReader(memory.data(), 1024), crew::Error);
}

// Writes kMessages messages into the ring in memory; for a child process started with fork.
class Producer : public crew::Process {
  public:
    Producer(std::byte* ring, std::size_t messages) : ring_(ring), messages_(messages) {}
    void run() override {
        RingWriter writer(ring_, kCapacity);
        for (std::size_t i = 0; i < messages_; ++i) writer.write(message(i, size_of_message(i)));
    }

  private:
    std::byte* ring_;
    std::size_t messages_;
};

TEST(MessageRing, BetweenProcesses) {
    SharedMapping memory = make_ring();
    constexpr std::size_t kMessages = 3000;
    Producer producer(memory.data(), kMessages);
    producer.start();
    RingReader reader(memory.data(), kCapacity);
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < kMessages; ++i) {
        if (!is_message(reader.read(), i, size_of_message(i))) ++wrong;
        reader.release();
    }
    producer.join();
    EXPECT_EQ(producer.exitcode(), 0);
    EXPECT_EQ(wrong, 0u);
}

// Writes one small message, then starts a huge one and dies half-way through it.
class DyingProducer : public crew::Process {
  public:
    explicit DyingProducer(std::byte* ring) : ring_(ring) {}
    void run() override {
        RingWriter writer(ring_, kCapacity);
        writer.write(message(7, 100));
        writer.write(message(8, kCapacity * 8));  // blocks on a full ring: killed there
    }

  private:
    std::byte* ring_;
};

TEST(MessageRing, AWriterThatDiesMidMessageLeavesNothingTorn) {
    SharedMapping memory = make_ring();
    DyingProducer producer(memory.data());
    producer.start();
    RingReader reader(memory.data(), kCapacity);
    EXPECT_TRUE(is_message(reader.read(), 7, 100));
    reader.release();
    // The writer fills the ring with pieces and waits for space: kill it there.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    producer.kill();
    producer.join();
    EXPECT_EQ(producer.exitcode(), -SIGKILL);
    EXPECT_FALSE(reader.try_read().has_value()) << "the pieces that came are not a message";
    EXPECT_FALSE(reader.try_read().has_value());
}

// A ring whose writer wakes the reader through an eventfd, as a pool's workers wake its broker.
struct RingWithEventfd {
    SharedMapping memory = make_ring();
    crew::detail::UniqueFd wake{eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
    RingWriter writer{memory.data(), kCapacity, wake.get()};
    RingReader reader{memory.data(), kCapacity};
};

// Whether the eventfd was signalled, reading it back to zero.
bool signalled(int wake) {
    pollfd watched{wake, POLLIN, 0};
    if (poll(&watched, 1, 0) != 1) return false;
    std::uint64_t count = 0;
    return read(wake, &count, sizeof count) == sizeof count;
}

TEST(MessageRing, AReaderSleepingElsewhereIsWokenThroughAnEventfd) {
    RingWithEventfd ring;
    ASSERT_GE(ring.wake.get(), 0);
    auto& [memory, wake_fd, writer, reader] = ring;
    const int wake = wake_fd.get();
    ASSERT_TRUE(reader.prepare_to_sleep());
    std::thread later([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        writer.write(message(3, 30));
    });
    pollfd watched{wake, POLLIN, 0};
    EXPECT_EQ(poll(&watched, 1, 10'000), 1);
    later.join();
    EXPECT_TRUE(is_message(*reader.try_read(), 3, 30));
    reader.release();
    EXPECT_TRUE(reader.prepare_to_sleep());
    writer.write(message(4, 4));
    EXPECT_FALSE(reader.prepare_to_sleep()) << "data is there: the reader must not sleep";
}

TEST(MessageRing, AMessageWrittenToWakeLaterWakesTheReaderOnlyWhenAsked) {
    RingWithEventfd ring;
    ASSERT_GE(ring.wake.get(), 0);
    auto& [memory, wake_fd, writer, reader] = ring;
    const int wake = wake_fd.get();
    ASSERT_TRUE(reader.prepare_to_sleep());
    writer.write(message(1, 10), RingWriter::later);
    writer.write(message(2, 20), RingWriter::later);
    EXPECT_FALSE(signalled(wake));
    writer.wake_reader();
    EXPECT_TRUE(signalled(wake));
    writer.wake_reader();
    EXPECT_FALSE(signalled(wake)) << "nothing more was owed";
    EXPECT_TRUE(is_message(*reader.try_read(), 1, 10));
    reader.release();
    EXPECT_TRUE(is_message(*reader.try_read(), 2, 20));
    reader.release();
}

TEST(MessageRing, AWriterOutOfSpaceWakesTheReaderItLeftAsleep) {
    RingWithEventfd ring;
    ASSERT_GE(ring.wake.get(), 0);
    auto& [memory, wake_fd, writer, reader] = ring;
    const int wake = wake_fd.get();
    ASSERT_TRUE(reader.prepare_to_sleep());
    constexpr std::size_t count = 40;  // 40 of kCapacity / 8 bytes: five times the ring
    std::thread producer([&] {
        for (std::size_t i = 0; i < count; ++i) {
            writer.write(message(i, kCapacity / 8), RingWriter::later);
        }
        writer.wake_reader();
    });
    // The reader reads only when signalled: a writer that waits for space without waking it
    // would leave both waiting until poll gives up.
    std::size_t got = 0;
    bool woken = true;
    while (got < count && woken) {
        if (reader.prepare_to_sleep()) {
            pollfd watched{wake, POLLIN, 0};
            woken = poll(&watched, 1, 10'000) == 1 && signalled(wake);
        }
        while (auto next = reader.try_read()) {
            EXPECT_TRUE(is_message(*next, got, kCapacity / 8));
            reader.release();
            ++got;
        }
    }
    EXPECT_TRUE(woken) << "left asleep after " << got << " messages";
    while (got < count) {  // frees the producer whatever happened
        if (auto next = reader.try_read()) {
            reader.release();
            ++got;
        }
    }
    producer.join();
    EXPECT_EQ(got, count);
}

TEST(MessageRing, MoreWaitingTellsWhetherAnotherMessageFollows) {
    SharedMapping memory = make_ring();
    RingWriter writer(memory.data(), kCapacity);
    RingReader reader(memory.data(), kCapacity);
    EXPECT_FALSE(reader.more_waiting());
    writer.write(message(1, 100));
    EXPECT_TRUE(reader.more_waiting());
    writer.write(message(2, 200));
    ASSERT_TRUE(reader.try_read().has_value());
    EXPECT_TRUE(reader.more_waiting());
    reader.release();
    ASSERT_TRUE(reader.try_read().has_value());
    EXPECT_FALSE(reader.more_waiting());
    reader.release();
    EXPECT_FALSE(reader.more_waiting());
}

TEST(MessageRing, ACancelledSleepIsNotWoken) {
    RingWithEventfd ring;
    ASSERT_GE(ring.wake.get(), 0);
    auto& [memory, wake_fd, writer, reader] = ring;
    const int wake = wake_fd.get();
    ASSERT_TRUE(reader.prepare_to_sleep());
    reader.cancel_sleep();
    writer.write(message(5, 5));
    EXPECT_FALSE(signalled(wake));
    EXPECT_TRUE(is_message(*reader.try_read(), 5, 5));
    reader.release();
}

// A reader sleeping on a pipe its writer signals (as pool workers do).
struct RingWithPipe {
    SharedMapping memory = make_ring();
    crew::detail::UniqueFd reading_end;
    crew::detail::UniqueFd writing_end;
    std::optional<RingWriter> writer;
    std::optional<RingReader> reader;
    RingWithPipe() {
        int ends[2];
        if (pipe2(ends, O_CLOEXEC) != 0) return;
        reading_end = crew::detail::UniqueFd(ends[0]);
        writing_end = crew::detail::UniqueFd(ends[1]);
        if (fcntl(ends[1], F_SETFL, O_NONBLOCK) != 0) return;
        writer.emplace(memory.data(), kCapacity, ends[1]);
        reader.emplace(memory.data(), kCapacity, RingReader::default_pauses_between_looks, ends[0]);
    }
};

TEST(MessageRing, AReaderSleepingOnAPipeIsWokenByEachMessage) {
    RingWithPipe ring;
    ASSERT_TRUE(ring.writer && ring.reader);
    constexpr std::size_t count = 20;
    std::thread producer([&] {
        for (std::size_t i = 0; i < count; ++i) {
            // Long enough apart that the reader has gone to sleep before each message.
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
            ring.writer->write(message(i, i * 10));
        }
    });
    for (std::size_t i = 0; i < count; ++i) {
        auto got = ring.reader->read_before(crew::detail::deadline_for(std::chrono::seconds(10)));
        ASSERT_TRUE(got) << "message " << i << " never woke the reader";
        EXPECT_TRUE(is_message(*got, i, i * 10));
        ring.reader->release();
    }
    producer.join();
}

TEST(MessageRing, AReaderSleepingOnAPipeGivesUpAtItsDeadline) {
    RingWithPipe ring;
    ASSERT_TRUE(ring.writer && ring.reader);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(
        ring.reader->read_before(crew::detail::deadline_for(std::chrono::milliseconds(50))));
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(50));
    ring.writer->write(message(1, 10));
    auto got = ring.reader->read_before(crew::detail::deadline_for(std::chrono::seconds(10)));
    ASSERT_TRUE(got);
    EXPECT_TRUE(is_message(*got, 1, 10));
    ring.reader->release();
}

TEST(MessageRing, AReaderSleepingOnAPipeWhoseWriterIsGoneGetsAnError) {
    RingWithPipe ring;
    ASSERT_TRUE(ring.writer && ring.reader);
    ring.writing_end.reset();
    EXPECT_THROW(
        (void)ring.reader->read_before(crew::detail::deadline_for(std::chrono::seconds(10))),
        crew::Error);
}

}  // namespace
