// crew::log_to_stderr: crew's own log lines, as multiprocessing.log_to_stderr() gives them.
#include <gtest/gtest.h>

#include <crew/crew.hpp>
#include <regex>

#include "support.hpp"

namespace {

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
