// crew::log_to_stderr: crew's own log lines, as multiprocessing.log_to_stderr() gives them.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <crew/crew.hpp>
#include <cstdlib>
#include <regex>
#include <string>

#include "support.hpp"

namespace {

using namespace std::chrono_literals;

class LogTest : public ::testing::TestWithParam<crew::StartMethod> {};

TEST_P(LogTest, ProcessStartAndExitAreLoggedWithPids) {
    auto run = crew::testing::run_program(
        {CREW_PROCESS_PROGRAM, "log", std::string(crew::to_string(GetParam()))});
    ASSERT_EQ(run.exit_status, 0) << run.output;
    const std::string method(crew::to_string(GetParam()));
    std::smatch started;
    ASSERT_TRUE(
        std::regex_search(run.output, started,
                          std::regex(R"(\[INFO/MainProcess\] Process-1 started with pid (\d+) \()" +
                                     method + R"(\))")))
        << run.output;
    const std::string pid = started[1];
    EXPECT_NE(run.output.find("[INFO/Process-1] child process calling run()"), std::string::npos)
        << run.output;
    EXPECT_NE(run.output.find("[INFO/Process-1] process exiting with exitcode 0"),
              std::string::npos)
        << run.output;
    EXPECT_NE(
        run.output.find("[INFO/MainProcess] Process-1 (pid " + pid + ") ended with exitcode 0"),
        std::string::npos)
        << run.output;
}

// Python logs nothing for a child killed from outside; crew says so as it happens, not at the
// next join().
TEST_P(LogTest, AChildKilledFromOutsideIsLoggedWhenItDies) {
    auto program = crew::testing::start_program(
        {CREW_PROCESS_PROGRAM, "log-death", std::string(crew::to_string(GetParam()))});
    pid_t child = -1;
    std::string line;
    for (int lines = 0; lines < 10 && child < 0; ++lines) {
        line = crew::testing::read_line(program.output, 30s);
        if (line.starts_with("child pid ")) child = std::atoi(line.c_str() + 10);
        if (line.empty()) break;
    }
    EXPECT_GT(child, 0) << "no child pid, last line: " << line;
    if (child > 0) {
        ASSERT_EQ(::kill(child, SIGKILL), 0);
        const std::string expected =
            "Process-1 (pid " + std::to_string(child) + ") ended with exitcode -9";
        bool logged = false;
        for (int lines = 0; lines < 10 && !logged; ++lines) {
            line = crew::testing::read_line(program.output, 5s);
            logged = line.find(expected) != std::string::npos;
            if (line.empty()) break;
        }
        EXPECT_TRUE(logged) << "last line: " << line;
    }
    ::kill(program.pid, SIGKILL);
    int status = 0;
    EXPECT_EQ(::waitpid(program.pid, &status, 0), program.pid);
    ::close(program.output);
}

TEST_P(LogTest, NothingIsLoggedUnlessAskedFor) {
    auto run = crew::testing::run_program(
        {CREW_PROCESS_PROGRAM, "atexit", std::string(crew::to_string(GetParam()))});
    ASSERT_EQ(run.exit_status, 0) << run.output;
    EXPECT_EQ(run.output.find("[INFO/"), std::string::npos) << run.output;
}

INSTANTIATE_TEST_SUITE_P(AllStartMethods, LogTest,
                         ::testing::Values(crew::StartMethod::forkserver, crew::StartMethod::fork,
                                           crew::StartMethod::spawn),
                         [](const auto& info) { return std::string(crew::to_string(info.param)); });

}  // namespace
