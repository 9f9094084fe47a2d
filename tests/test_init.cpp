// crew::init and crew::cpu_count.
#include <gtest/gtest.h>
#include <sched.h>

#include <crew/crew.hpp>

namespace {

TEST(Init, CpuCountIsTheAffinityMask) {
    cpu_set_t cpus;
    ASSERT_EQ(sched_getaffinity(0, sizeof cpus, &cpus), 0);
    EXPECT_EQ(crew::cpu_count(), CPU_COUNT(&cpus));
    EXPECT_GE(crew::cpu_count(), 1);
}

void exit_with_three() {
    std::exit(3);
}

TEST(Init, CallingInitAgainChangesNothing) {
    char program[] = "again";
    char* argv[] = {program, nullptr};
    crew::init(1, argv);  // main already called it
    crew::Process p({.start_method = crew::StartMethod::spawn}, exit_with_three);
    p.start();  // spawns with the argv of the first call, so this test binary runs the child
    p.join();
    EXPECT_EQ(p.exitcode(), 3);
}

}  // namespace
