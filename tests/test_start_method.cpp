// Start methods: what each child sees of its parent, and choosing the method.
#include <gtest/gtest.h>

#include <crew/crew.hpp>
#include <cstdlib>

#include "support.hpp"

namespace {

using crew::StartMethod;

int observed_value = 1;  // changed by the tests after crew::init started the fork server

void exit_with_observed_value() {
    std::exit(observed_value);
}

int exitcode_seen_by(std::optional<StartMethod> method) {
    crew::Process p({.start_method = method}, exit_with_observed_value);
    p.start();
    p.join();
    return p.exitcode().value_or(-1);
}

class StartMethodTest : public ::testing::Test {
  protected:
    void TearDown() override {
        observed_value = 1;
        crew::set_start_method(StartMethod::forkserver);
    }
};

TEST_F(StartMethodTest, ForkserverIsTheDefault) {
    EXPECT_EQ(crew::get_start_method(), StartMethod::forkserver);
}

TEST_F(StartMethodTest, Names) {
    EXPECT_EQ(crew::to_string(StartMethod::forkserver), "forkserver");
    EXPECT_EQ(crew::to_string(StartMethod::fork), "fork");
    EXPECT_EQ(crew::to_string(StartMethod::spawn), "spawn");
}

TEST_F(StartMethodTest, ForkSeesTheParentAsItIsNow) {
    observed_value = 2;
    EXPECT_EQ(exitcode_seen_by(StartMethod::fork), 2);
}

TEST_F(StartMethodTest, ForkserverSeesTheProgramAsItWasAtInit) {
    observed_value = 2;
    EXPECT_EQ(exitcode_seen_by(StartMethod::forkserver), 1);
}

TEST_F(StartMethodTest, SpawnSeesAFreshProgram) {
    observed_value = 2;
    EXPECT_EQ(exitcode_seen_by(StartMethod::spawn), 1);
}

TEST_F(StartMethodTest, SetStartMethodAppliesToLaterProcesses) {
    observed_value = 3;
    crew::set_start_method(StartMethod::fork);
    EXPECT_EQ(crew::get_start_method(), StartMethod::fork);
    EXPECT_EQ(exitcode_seen_by(std::nullopt), 3);
    crew::set_start_method(StartMethod::spawn);
    EXPECT_EQ(exitcode_seen_by(std::nullopt), 1);
}

TEST_F(StartMethodTest, SpawnWithoutInitIsAnError) {
    auto run = crew::testing::run_program({CREW_PROCESS_PROGRAM, "spawn-without-init", "spawn"});
    EXPECT_EQ(run.exit_status, 0) << run.output;
    EXPECT_NE(run.output.find("needs crew::init(argc, argv)"), std::string::npos) << run.output;
}

}  // namespace
