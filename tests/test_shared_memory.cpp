// crew::SharedMemory: named and unnamed segments shared by processes, and nothing left in
// /dev/shm by a creator that is destroyed, unlinks, or is killed.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <crew/crew.hpp>
#include <csignal>
#include <filesystem>
#include <string>
#include <thread>

#include "support.hpp"

namespace {

using namespace std::chrono_literals;
using crew::StartMethod;

// A name no other test run uses.
std::string unique_name(const std::string& what) {
    static int counter = 0;
    return "crew-test-" + what + "-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
}

bool in_dev_shm(const std::string& name) {
    return std::filesystem::exists("/dev/shm/" + name);
}

void write_pattern(crew::SharedMemory memory) {
    for (std::size_t i = 0; i < memory.size(); ++i) memory.buf()[i] = std::byte(i % 251);
}

void write_by_name(std::string name) {
    crew::SharedMemory memory = crew::SharedMemory::attach(name);
    memory.buf()[0] = std::byte{42};
}

bool has_pattern(const crew::SharedMemory& memory) {
    for (std::size_t i = 0; i < memory.size(); ++i) {
        if (memory.buf()[i] != std::byte(i % 251)) return false;
    }
    return true;
}

class SharedMemoryTest : public ::testing::TestWithParam<StartMethod> {
  protected:
    crew::ProcessOptions options() const { return {.start_method = GetParam()}; }
};

TEST_P(SharedMemoryTest, AChildWritesAnUnnamedSegment) {
    crew::SharedMemory memory(100'000);
    EXPECT_EQ(memory.size(), 100'000u);
    EXPECT_TRUE(memory.name().empty());
    EXPECT_TRUE(std::ranges::all_of(memory.buf(), [](std::byte b) { return b == std::byte{0}; }));
    crew::Process child(options(), write_pattern, memory);
    child.start();
    child.join();
    EXPECT_EQ(child.exitcode(), 0);
    EXPECT_TRUE(has_pattern(memory));
}

TEST_P(SharedMemoryTest, AChildWritesANamedSegmentHandedOverOrAttachedByName) {
    const std::string name = unique_name("named");
    crew::SharedMemory memory = crew::SharedMemory::create(name, 8192);
    EXPECT_EQ(memory.name(), name);
    EXPECT_TRUE(in_dev_shm(name));
    crew::Process writer(options(), write_pattern, memory);
    writer.start();
    writer.join();
    EXPECT_TRUE(has_pattern(memory));
    crew::Process by_name(options(), write_by_name, name);
    by_name.start();
    by_name.join();
    EXPECT_EQ(by_name.exitcode(), 0);
    EXPECT_EQ(memory.buf()[0], std::byte{42});
}

INSTANTIATE_TEST_SUITE_P(AllStartMethods, SharedMemoryTest,
                         ::testing::Values(StartMethod::forkserver, StartMethod::fork,
                                           StartMethod::spawn),
                         [](const auto& info) { return std::string(crew::to_string(info.param)); });

TEST(SharedMemory, AttachSeesTheSameBytes) {
    const std::string name = unique_name("attach");
    auto created = crew::SharedMemory::create("/" + name, 4096);  // a leading slash is allowed
    EXPECT_EQ(created.name(), name);
    auto attached = crew::SharedMemory::attach(name);
    EXPECT_EQ(attached.size(), 4096u);
    created.buf()[10] = std::byte{9};
    EXPECT_EQ(attached.buf()[10], std::byte{9});
}

TEST(SharedMemory, TheCreatorsEndUnlinksTheNameAnAttachersDoesNot) {
    const std::string name = unique_name("lifetime");
    {
        auto created = crew::SharedMemory::create(name, 4096);
        auto copy = created;
        { auto attached = crew::SharedMemory::attach(name); }
        EXPECT_TRUE(in_dev_shm(name)) << "an attacher going does not unlink";
        created = crew::SharedMemory(16);
        EXPECT_TRUE(in_dev_shm(name)) << "a copy of the creator still lives";
    }
    EXPECT_FALSE(in_dev_shm(name));
}

TEST(SharedMemory, UnlinkRemovesTheNameAndKeepsTheMapping) {
    const std::string name = unique_name("unlink");
    auto memory = crew::SharedMemory::create(name, 4096);
    memory.buf()[0] = std::byte{5};
    memory.unlink();
    EXPECT_FALSE(in_dev_shm(name));
    EXPECT_EQ(memory.buf()[0], std::byte{5});
    EXPECT_THROW(memory.unlink(), crew::SystemError);
    EXPECT_THROW(crew::SharedMemory::attach(name), crew::SystemError);
}

TEST(SharedMemory, BadNamesSizesAndTakenNamesThrow) {
    const std::string name = unique_name("errors");
    auto memory = crew::SharedMemory::create(name, 4096);
    try {
        crew::SharedMemory::create(name, 4096);
        ADD_FAILURE() << "created a segment whose name was taken";
    } catch (const crew::SystemError& error) {
        EXPECT_EQ(error.error_number(), EEXIST);
    }
    try {
        crew::SharedMemory::attach(unique_name("missing"));
        ADD_FAILURE() << "attached a segment that does not exist";
    } catch (const crew::SystemError& error) {
        EXPECT_EQ(error.error_number(), ENOENT);
    }
    EXPECT_THROW(crew::SharedMemory::create("", 4096), crew::Error);
    EXPECT_THROW(crew::SharedMemory::create("a/b", 4096), crew::Error);
    EXPECT_THROW(crew::SharedMemory::create(std::string(300, 'x'), 4096), crew::Error);
    EXPECT_THROW(crew::SharedMemory::create(unique_name("empty"), 0), crew::Error);
    EXPECT_THROW(crew::SharedMemory(0), crew::Error);
    EXPECT_THROW(crew::SharedMemory(16).unlink(), crew::Error) << "unnamed: nothing to unlink";
}

// A program killed with SIGKILL while its child maps a named segment: its fork server ends the
// child and unlinks the segment.
TEST(SharedMemory, AKilledProgramLeavesNothingInDevShm) {
    const std::string name = unique_name("crash");
    auto program =
        crew::testing::start_program({CREW_PROCESS_PROGRAM, "shared-memory", "fork", name});
    const std::string child_line = crew::testing::read_line(program.output, 30s);
    ASSERT_EQ(child_line.rfind("child pid ", 0), 0u) << child_line;
    const pid_t child = std::atoi(child_line.c_str() + 10);
    ASSERT_EQ(crew::testing::read_line(program.output, 30s), "ready");
    EXPECT_TRUE(in_dev_shm(name));
    ASSERT_EQ(kill(program.pid, SIGKILL), 0);
    ASSERT_EQ(waitpid(program.pid, nullptr, 0), program.pid);
    close(program.output);
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (in_dev_shm(name) && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(5ms);
    }
    EXPECT_FALSE(in_dev_shm(name)) << "left in /dev/shm";
    if (in_dev_shm(name)) std::filesystem::remove("/dev/shm/" + name);
    while (crew::testing::process_exists(child) && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(5ms);
    }
    EXPECT_FALSE(crew::testing::process_exists(child));
}

}  // namespace
