// Each example in examples/ runs and prints what its seed document shows.
#include <gtest/gtest.h>

#include <string>

#include "support.hpp"

namespace {

crew::testing::ProgramRun run_example(const std::string& name) {
    return crew::testing::run_program({std::string(CREW_EXAMPLES_DIR) + "/" + name});
}

TEST(Examples, DisplayMessage) {
    auto run = run_example("display_message");
    ASSERT_EQ(run.exit_status, 0) << run.output;
    EXPECT_NE(run.output.find("Hello from Process 1\n"), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("Hello from Process 2\n"), std::string::npos) << run.output;
    EXPECT_EQ(run.output.size(), 2 * std::string("Hello from Process 1\n").size()) << run.output;
}

TEST(Examples, BubbleSort) {
    auto run = run_example("bubble_sort");
    ASSERT_EQ(run.exit_status, 0) << run.output;
    EXPECT_EQ(run.output, "Array sorted:  [1, 2, 4, 4, 5, 6, 8, 9]\n");
}

TEST(Examples, ProcessSubclass) {
    auto run = run_example("process_subclass");
    ASSERT_EQ(run.exit_status, 0) << run.output;
    EXPECT_EQ(run.output, "I'm the process with id: 0\nI'm the process with id: 1\n");
}

TEST(Examples, Demo) {
    auto run = run_example("demo");
    ASSERT_EQ(run.exit_status, 0) << run.output;
    for (const char* expected :
         {"hello from forkserver", "hello from fork", "hello from spawn", "exitcode " /* of each */,
          "exitcode -11", "exitcode 1", "exitcode 7", "exitcode -15", "the parent is fine."}) {
        EXPECT_NE(run.output.find(expected), std::string::npos) << expected << "\n" << run.output;
    }
}

}  // namespace
