// Each example in examples/ runs and prints what its seed document shows.
#include <gtest/gtest.h>

#include <algorithm>
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

TEST(Examples, PoolMapSquare) {
    auto run = run_example("pool_map_square");
    ASSERT_EQ(run.exit_status, 0) << run.output;
    EXPECT_EQ(run.output, "[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]\n");
}

TEST(Examples, ParallelRoots) {
    auto run = run_example("parallel_roots");
    ASSERT_EQ(run.exit_status, 0) << run.output;
    const std::string roots = "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n";
    EXPECT_EQ(run.output, roots + roots);
}

TEST(Examples, ParallelMapReduce) {
    auto run = run_example("parallel_map_reduce");
    ASSERT_EQ(run.exit_status, 0) << run.output;
    EXPECT_EQ(run.output, "sum of 100000000 squares: 33333332.8 (as the closed form says)\n");
}

TEST(Examples, ParallelSharedArgument) {
    auto run = run_example("parallel_shared_argument");
    ASSERT_EQ(run.exit_status, 0) << run.output;
    EXPECT_EQ(run.output,
              "1000 slices of 100 MiB: 6546966400 from a std::vector, 6546966400 from a "
              "crew::Array (both right)\n");
}

TEST(Examples, ParallelEstimate) {
    auto run = run_example("parallel_estimate");
    ASSERT_EQ(run.exit_status, 0) << run.output;
    // The verdicts depend on this machine; both are given, with their measured reasons.
    EXPECT_NE(run.output.find("N = 100000: "), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("N = 5000000: "), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("each call takes "), std::string::npos) << run.output;
}

TEST(Examples, ExecutorAsCompleted) {
    auto run = run_example("executor_as_completed");
    ASSERT_EQ(run.exit_status, 0) << run.output;
    for (int i = 0; i < 10; ++i) {
        std::string line = std::to_string(i) + ": " + std::to_string(i * i) + "\n";
        EXPECT_NE(run.output.find(line), std::string::npos) << line << run.output;
    }
    EXPECT_EQ(std::count(run.output.begin(), run.output.end(), '\n'), 10);
}

TEST(Examples, PoolSquaresAsync) {
    auto run = run_example("pool_squares_async");
    ASSERT_EQ(run.exit_status, 0) << run.output;
    EXPECT_EQ(run.output,
              "Input: [0, 1, 2, 3, 4]\nOutput: [0, 1, 4, 9, 16]\nOutput (map_async): [0, 1, 4, "
              "9, 16]\nOutput (apply_async): [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]\n");
}

TEST(Examples, SharedValueAndArray) {
    auto run = run_example("shared_value_and_array");
    ASSERT_EQ(run.exit_status, 0) << run.output;
    EXPECT_EQ(run.output, "3.1415927\n[0, -1, -2, -3, -4, -5, -6, -7, -8, -9]\n");
}

TEST(Examples, PipePingPong) {
    auto run = run_example("pipe_ping_pong");
    ASSERT_EQ(run.exit_status, 0) << run.output;
    EXPECT_EQ(run.output, "ball 2\nball 4\nball 6\nplayer exitcode 0\n");
}

TEST(Examples, QueueProcessed) {
    auto run = run_example("queue_processed");
    ASSERT_EQ(run.exit_status, 0) << run.output;
    EXPECT_EQ(run.output, "Processed!\n");
}

TEST(Examples, QueueMapReduce) {
    auto run = run_example("queue_map_reduce");
    ASSERT_EQ(run.exit_status, 0) << run.output;
    EXPECT_EQ(run.output, "sum of squares of 1..100: 338350\n");
    // Before queues grew, 110,000 numbers put before any result was read filled both queues.
    run = crew::testing::run_program(
        {std::string(CREW_EXAMPLES_DIR) + "/queue_map_reduce", "300000"});
    ASSERT_EQ(run.exit_status, 0) << run.output;
    EXPECT_EQ(run.output, "sum of squares of 1..300000: 9000045000050000\n");
}

TEST(Examples, Demo) {
    auto run = run_example("demo");
    ASSERT_EQ(run.exit_status, 0) << run.output;
    for (const char* expected :
         {"N = 5000000", "N = 100000", "crew::Pool.map", "crew::ThreadPoolExecutor",
          "Python, measured", "failed: crew: the worker", "signal 11",
          "the pool goes on: pool.apply(root, 144L) = 12.0"}) {
        EXPECT_NE(run.output.find(expected), std::string::npos) << expected << "\n" << run.output;
    }
    std::size_t first = run.output.find("results identical: yes");
    ASSERT_NE(first, std::string::npos) << run.output;
    EXPECT_NE(run.output.find("results identical: yes", first + 1), std::string::npos)
        << "both sizes must match the serial loop\n"
        << run.output;
}

}  // namespace
