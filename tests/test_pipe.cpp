// crew::Pipe and crew::Connection: whole messages both ways, between threads and processes,
// and EOFError instead of a hang when the other end is gone.
#include <gtest/gtest.h>

#include <cerrno>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <crew/crew.hpp>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using crew::StartMethod;

// Answers each message in upper case until the other end closes.
void shout_back(crew::Connection<std::string> connection) {
    while (true) {
        std::string message;
        try {
            message = connection.recv();
        } catch (const crew::EOFError&) {
            return;
        }
        std::transform(message.begin(), message.end(), message.begin(),
                       [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
        connection.send(message);
    }
}

void sleep_long(crew::Connection<int> connection) {
    connection.send(1);
    std::this_thread::sleep_for(60s);  // until the test kills it
}

int send_from_task(crew::Connection<std::string> connection, int n) {
    connection.send("task " + std::to_string(n));
    return n;
}

class PipeTest : public ::testing::TestWithParam<StartMethod> {
  protected:
    crew::ProcessOptions options() const { return {.start_method = GetParam()}; }
};

// Python's send() to a pipe whose reader is gone raises BrokenPipeError at once; crew's throws
// crew::SystemError (EPIPE) at the first send, not once its ring is full.
TEST_P(PipeTest, SendToAPeerWhoseProcessEndedThrowsAtOnce) {
    auto [parent_end, child_end] = crew::Pipe<int>();
    crew::Process child(options(), sleep_long, std::move(child_end));
    child.start();
    EXPECT_EQ(parent_end.recv(), 1);
    child.kill();
    ASSERT_TRUE(child.join(10s));
    try {
        parent_end.send(2);
        ADD_FAILURE() << "send to a dead peer did not throw";
    } catch (const crew::SystemError& error) {
        EXPECT_EQ(error.error_number(), EPIPE);
    }
    EXPECT_THROW(parent_end.recv(), crew::EOFError);
    EXPECT_THROW(parent_end.recv(), crew::EOFError) << "and again, as in Python";
}

TEST_P(PipeTest, AChildAnswersUntilTheParentCloses) {
    auto [parent_end, child_end] = crew::Pipe<std::string>();
    crew::Process child(options(), shout_back, std::move(child_end));
    EXPECT_TRUE(child_end.closed()) << "moved into the process: the parent holds no copy";
    child.start();
    for (std::string word : {"hello", "", "pipes"}) {
        parent_end.send(word);
        std::transform(word.begin(), word.end(), word.begin(),
                       [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
        EXPECT_EQ(parent_end.recv(), word);
    }
    parent_end.close();
    EXPECT_TRUE(child.join(10s)) << "the child did not see the end of the pipe";
    EXPECT_EQ(child.exitcode(), 0);
}

TEST_P(PipeTest, RecvFromAKilledProcessThrowsEOFError) {
    auto [parent_end, child_end] = crew::Pipe<int>();
    crew::Process child(options(), sleep_long, std::move(child_end));
    child.start();
    EXPECT_EQ(parent_end.recv(), 1);
    child.kill();
    child.join();
    EXPECT_TRUE(parent_end.poll(10s)) << "an ended peer makes recv return at once";
    EXPECT_THROW(parent_end.recv(), crew::EOFError);
}

TEST_P(PipeTest, APoolTaskSendsOnAConnectionItWasHanded) {
    auto [reader, writer] = crew::Pipe<std::string>(false);
    crew::Pool pool({.processes = 1, .start_method = GetParam()});
    EXPECT_EQ(pool.apply(send_from_task, std::move(writer), 7), 7);
    EXPECT_TRUE(reader.poll(10s));
    EXPECT_EQ(reader.recv(), "task 7");
}

INSTANTIATE_TEST_SUITE_P(AllStartMethods, PipeTest,
                         ::testing::Values(StartMethod::forkserver, StartMethod::fork,
                                           StartMethod::spawn),
                         [](const auto& info) { return std::string(crew::to_string(info.param)); });

TEST(Pipe, ALargeMessageArrivesWhole) {
    auto [first, second] = crew::Pipe<std::vector<char>>();
    std::vector<char> big(64 << 20);
    for (std::size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>(i / 4096);
    std::thread sender([&, &second = second] { second.send(big); });
    std::vector<char> got = first.recv();
    sender.join();
    EXPECT_TRUE(got == big);
}

TEST(Pipe, PollBytesAndClosing) {
    auto [first, second] = crew::Pipe<int>();
    EXPECT_FALSE(first.poll());
    EXPECT_FALSE(first.poll(10ms));
    second.send(42);
    EXPECT_TRUE(first.poll());
    EXPECT_EQ(first.recv(), 42);
    const std::vector<std::byte> bytes{std::byte{1}, std::byte{2}, std::byte{3}};
    first.send_bytes(bytes);
    EXPECT_EQ(second.recv_bytes(), bytes);
    second.close();
    EXPECT_TRUE(second.closed());
    EXPECT_THROW(second.send(1), crew::Error);
    EXPECT_TRUE(first.poll()) << "at the end of the pipe, recv returns at once";
    EXPECT_THROW(first.recv(), crew::EOFError);
    EXPECT_THROW(first.send(1), crew::SystemError) << "nobody is there to read it";
}

TEST(Pipe, TheFirstSendAfterThePeerClosedThrows) {
    auto [first, second] = crew::Pipe<int>();
    first.send(1);
    second.close();
    EXPECT_THROW(first.send(2), crew::SystemError) << "without a recv or poll to notice first";
}

TEST(Pipe, AOneWayPipeSendsOnlyFromItsSecondEnd) {
    auto [reader, writer] = crew::Pipe<std::string>(false);
    writer.send("one way");
    EXPECT_EQ(reader.recv(), "one way");
    EXPECT_THROW(reader.send("back"), crew::SystemError);
}

}  // namespace
