#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <crew/init.hpp>
#include <crew/parallel.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>

#include "support.hpp"

namespace {

// The names in /dev/shm that this test program's tests made: tests name their segments with
// their pid, as ctest runs several test programs at once.
std::set<std::string> shared_memory_names() {
    // Appended, not concatenated: GCC 12 at -O3 warns (-Wrestrict) about operator+ of a literal.
    std::string ours = "-";
    ours += std::to_string(getpid());
    ours += '-';
    std::set<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator("/dev/shm")) {
        std::string name = entry.path().filename().string();
        if (name.find(ours) != std::string::npos) names.insert(std::move(name));
    }
    return names;
}

// The live processes a test started, directly or through the fork server (which stays).
std::set<pid_t> started_processes() {
    std::set<pid_t> started;
    for (pid_t child : crew::testing::child_pids()) {
        if (!crew::testing::process_exists(child)) continue;
        if (crew::testing::process_name(child) == "crew-forkserver") {
            for (pid_t served : crew::testing::children_of(child)) {
                if (crew::testing::process_exists(served)) started.insert(served);
            }
        } else {
            started.insert(child);
        }
    }
    return started;
}

// Every test must leave no process it started and nothing in /dev/shm, pass or fail.
class NothingLeftBehind : public testing::EmptyTestEventListener {
    void OnTestStart(const testing::TestInfo&) override {
        shared_memory_ = shared_memory_names();
        processes_ = started_processes();
    }
    void OnTestEnd(const testing::TestInfo&) override {
        crew::Parallel::end_idle_workers();  // what the test's Parallels left warm goes too
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        std::set<pid_t> left;
        do {
            left.clear();
            for (pid_t pid : started_processes()) {
                if (!processes_.contains(pid)) left.insert(pid);
            }
            if (left.empty()) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        } while (std::chrono::steady_clock::now() < give_up);
        for (pid_t pid : left) {
            ADD_FAILURE() << "the test left process " << pid << " ("
                          << crew::testing::process_name(pid) << ") running";
        }
        for (const std::string& name : shared_memory_names()) {
            if (!shared_memory_.contains(name)) {
                ADD_FAILURE() << "the test left /dev/shm/" << name;
                std::filesystem::remove("/dev/shm/" + name);
            }
        }
    }

    std::set<std::string> shared_memory_;
    std::set<pid_t> processes_;
};

}  // namespace

int main(int argc, char** argv) {
    crew::init(argc, argv);  // first: in a spawn child of a test, this runs the child and ends
    testing::InitGoogleTest(&argc, argv);
    testing::UnitTest::GetInstance()->listeners().Append(new NothingLeftBehind);
    return RUN_ALL_TESTS();
}
