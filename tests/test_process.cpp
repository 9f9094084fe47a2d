// crew::Process: Python's multiprocessing.Process semantics, under every start method.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <crew/crew.hpp>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

namespace {

using namespace std::chrono_literals;
using crew::StartMethod;

void do_nothing() {}
void exit_with(int code) {
    std::exit(code);
}
void segfault_at(std::uintptr_t address) {
    *reinterpret_cast<volatile int*>(address) = 1;
}
void abort_now() {
    std::abort();
}
void throw_error() {
    throw std::runtime_error("boom");
}
void sleep_for_ms(int milliseconds) {
    std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds));
}

void write_arguments(std::string path, std::vector<int> numbers, std::map<std::string, int> counts,
                     std::string text, double real) {
    std::ofstream out(path);
    for (int n : numbers) out << n << ',';
    for (const auto& [key, value] : counts) out << key << '=' << value << ',';
    out << text << ',' << real;
}

// Starts a grandchild that exits with 5, and exits with its exit code plus one.
// Exit status 0 when the process knows who it is and who started it; else which check failed.
void check_identity(std::string expected_name, pid_t parent_pid) {
    const crew::ProcessInfo self = crew::current_process();
    if (self.name != expected_name) _exit(10);
    if (self.pid != getpid()) _exit(11);
    const std::optional<crew::ProcessInfo> parent = crew::parent_process();
    if (!parent) _exit(12);
    if (parent->pid != parent_pid || parent->name != "MainProcess") _exit(13);
    _exit(0);
}
void wait_for_event(crew::Event event) {
    _exit(event.wait(20s) ? 0 : 1);
}
void exit_with_grandchild_code_plus_one(StartMethod method) {
    crew::Process grandchild({.start_method = method}, exit_with, 5);
    grandchild.start();
    grandchild.join();
    std::exit(grandchild.exitcode().value_or(100) + 1);
}

// Exits with 0 if every descriptor open here is in allowed, else with the first other one.
void exit_with_unexpected_fd(std::vector<int> allowed) {
    for (int fd : crew::testing::open_fds()) {
        if (std::find(allowed.begin(), allowed.end(), fd) == allowed.end()) std::exit(fd);
    }
    std::exit(0);
}

void write_text_to(crew::detail::SentFd out, std::string text) {
    if (write(out.fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) std::exit(9);
}

class ProcessTest : public ::testing::TestWithParam<StartMethod> {
  protected:
    crew::ProcessOptions options() const { return {.start_method = GetParam()}; }
};

TEST_P(ProcessTest, ReturningTargetExitsWithZero) {
    crew::Process p(options(), do_nothing);
    EXPECT_FALSE(p.pid().has_value());
    EXPECT_FALSE(p.exitcode().has_value());
    EXPECT_FALSE(p.is_alive());
    p.start();
    ASSERT_TRUE(p.pid().has_value());
    EXPECT_NE(*p.pid(), getpid());
    p.join();
    EXPECT_FALSE(p.is_alive());
    EXPECT_EQ(p.exitcode(), 0);
}

TEST_P(ProcessTest, ExitStatusIsTheExitcode) {
    crew::Process p(options(), exit_with, 7);
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 7);
}

TEST_P(ProcessTest, SegfaultIsMinusSigsegv) {
    // Not null: the sanitizers would catch a null store before the kernel does.
    crew::Process p(options(), segfault_at, std::uintptr_t{16});
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), -SIGSEGV);
}

TEST_P(ProcessTest, AbortIsMinusSigabrt) {
    crew::Process p(options(), abort_now);
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), -SIGABRT);
}

TEST_P(ProcessTest, ThrowingTargetExitsWithOne) {
    crew::Process p(options(), throw_error);
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 1);
}

TEST_P(ProcessTest, TerminateAndKillEndASleepingChild) {
    crew::Process terminated(options(), sleep_for_ms, 60'000);
    crew::Process killed(options(), sleep_for_ms, 60'000);
    terminated.start();
    killed.start();
    EXPECT_TRUE(terminated.is_alive());
    terminated.terminate();
    killed.kill();
    terminated.join();
    killed.join();
    EXPECT_EQ(terminated.exitcode(), -SIGTERM);
    EXPECT_EQ(killed.exitcode(), -SIGKILL);
    terminated.terminate();  // after the end: nothing happens
    EXPECT_EQ(terminated.exitcode(), -SIGTERM);
}

TEST_P(ProcessTest, JoinWithTimeout) {
    crew::Process p(options(), sleep_for_ms, 60'000);
    p.start();
    EXPECT_FALSE(p.join(50ms));
    EXPECT_TRUE(p.is_alive());
    EXPECT_FALSE(p.exitcode().has_value());
    p.terminate();
    EXPECT_TRUE(p.join(30s));
    EXPECT_FALSE(p.is_alive());
    EXPECT_EQ(p.exitcode(), -SIGTERM);
    EXPECT_TRUE(p.join(0ms));
}

TEST_P(ProcessTest, ArgumentsArriveIntact) {
    crew::testing::TempDir dir;
    std::string path = dir.file("arguments");
    crew::Process p(options(), write_arguments, path, std::vector<int>{3, 1, 2},
                    std::map<std::string, int>{{"a", 1}, {"b", 2}}, "text", 2.5);
    p.start();
    p.join();
    ASSERT_EQ(p.exitcode(), 0);
    EXPECT_EQ(crew::testing::read_file(path), "3,1,2,a=1,b=2,text,2.5");
}

TEST_P(ProcessTest, LambdaWithoutCapturesAsTarget) {
    crew::Process p(
        options(), [](int a, int b) { std::exit(a * b); }, 6, 7);
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 42);
}

TEST_P(ProcessTest, DescriptorsTravelAsArguments) {
    int ends[2];
    ASSERT_EQ(pipe2(ends, O_CLOEXEC), 0);
    crew::Process p(options(), write_text_to, crew::detail::SentFd{ends[1]}, "through a pipe");
    close(ends[1]);  // the Process keeps its own copy until the child has it
    p.start();
    std::string received;
    char buffer[64];
    for (ssize_t n; (n = read(ends[0], buffer, sizeof buffer)) > 0;) received.append(buffer, n);
    close(ends[0]);  // reached end of file: nobody but the child held the write end
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
    EXPECT_EQ(received, "through a pipe");
}

TEST_P(ProcessTest, SixtyFourChildrenAtOnce) {
    std::vector<crew::Process> children;
    for (int i = 0; i < 64; ++i) children.emplace_back(options(), exit_with, i);
    for (auto& child : children) child.start();
    for (int i = 0; i < 64; ++i) {
        children[i].join();
        EXPECT_EQ(children[i].exitcode(), i) << children[i].name();
    }
}

TEST_P(ProcessTest, AChildStartsAndJoinsItsOwnChild) {
    crew::Process p(options(), exit_with_grandchild_code_plus_one, GetParam());
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 6);
}

TEST_P(ProcessTest, NoDescriptorIsLeaked) {
    std::set<int> before = crew::testing::open_fds();
    for (int i = 0; i < 5; ++i) {
        crew::Process quick(options(), do_nothing);
        crew::Process slow(options(), sleep_for_ms, 60'000);
        quick.start();
        slow.start();
        quick.join();
        slow.kill();
    }
    EXPECT_EQ(crew::testing::open_fds(), before);
}

TEST_P(ProcessTest, ChildrenInheritNoDescriptorOpenedForOtherChildren) {
    std::set<int> before = crew::testing::open_fds();
    crew::Process other(options(), sleep_for_ms, 60'000);
    other.start();
    ASSERT_NE(crew::testing::open_fds(), before) << "the first child should hold descriptors";
    crew::Process checker(options(), exit_with_unexpected_fd,
                          std::vector<int>(before.begin(), before.end()));
    checker.start();
    checker.join();
    EXPECT_EQ(checker.exitcode(), 0) << "the child inherited descriptor " << *checker.exitcode();
    other.kill();
}

TEST_P(ProcessTest, DestroyingANonDaemonProcessWaitsForIt) {
    crew::testing::TempDir dir;
    std::string path = dir.file("done");
    {
        crew::Process p(
            options(),
            [](std::string done) {
                std::this_thread::sleep_for(200ms);
                std::ofstream(done) << "finished";
            },
            path);
        p.start();
    }
    EXPECT_EQ(crew::testing::read_file(path), "finished");
}

TEST_P(ProcessTest, DestroyingADaemonProcessTerminatesIt) {
    pid_t pid = 0;
    {
        crew::ProcessOptions daemon_options = options();
        daemon_options.daemon = true;
        crew::Process p(daemon_options, sleep_for_ms, 60'000);
        EXPECT_TRUE(p.daemon());
        p.start();
        pid = *p.pid();
        EXPECT_TRUE(crew::testing::process_exists(pid));
    }
    EXPECT_FALSE(crew::testing::process_exists(pid));
}

TEST_P(ProcessTest, NamesAreProcessNOrChosen) {
    crew::Process unnamed(options(), do_nothing);
    EXPECT_EQ(unnamed.name().rfind("Process-", 0), 0u) << unnamed.name();
    crew::ProcessOptions named = options();
    named.name = "worker";
    crew::Process p(named, do_nothing);
    EXPECT_EQ(p.name(), "worker");
    p.set_name("renamed");
    EXPECT_EQ(p.name(), "renamed");
}

TEST_P(ProcessTest, MisuseIsAnError) {
    crew::Process p(options(), do_nothing);
    EXPECT_THROW(p.join(), crew::Error);
    EXPECT_THROW(p.join(1ms), crew::Error);
    EXPECT_THROW(p.terminate(), crew::Error);
    EXPECT_THROW(p.kill(), crew::Error);
    p.start();
    EXPECT_THROW(p.start(), crew::Error);
    EXPECT_THROW(p.set_daemon(true), crew::Error);
    p.join();
    EXPECT_THROW(p.start(), crew::Error);
}

TEST_P(ProcessTest, CurrentAndParentProcessNameTheProcesses) {
    EXPECT_EQ(crew::current_process().name, "MainProcess");
    EXPECT_EQ(crew::current_process().pid, getpid());
    EXPECT_FALSE(crew::parent_process().has_value());
    crew::ProcessOptions named = options();
    named.name = "Reporter";
    crew::Process child(named, check_identity, std::string("Reporter"), getpid());
    child.start();
    child.join();
    EXPECT_EQ(child.exitcode(), 0);
}

TEST_P(ProcessTest, ActiveChildrenAreThoseStillRunning) {
    crew::Event go;
    crew::Process first(options(), wait_for_event, go);
    crew::Process second(options(), wait_for_event, go);
    EXPECT_TRUE(crew::active_children().empty());
    first.start();
    second.start();
    std::set<pid_t> pids;
    for (const crew::ProcessInfo& child : crew::active_children()) pids.insert(child.pid);
    EXPECT_EQ(pids, (std::set<pid_t>{*first.pid(), *second.pid()}));
    go.set();
    first.join();
    second.join();
    EXPECT_TRUE(crew::active_children().empty());
}

// The sentinel is a descriptor to poll beside others; close() frees it once the child ended.
TEST_P(ProcessTest, SentinelBecomesReadableAtTheEndAndCloseReleasesIt) {
    crew::Process child(options(), sleep_for_ms, 20'000);
    EXPECT_THROW((void)child.sentinel(), crew::Error) << "before start()";
    child.start();
    pollfd watched{.fd = child.sentinel(), .events = POLLIN, .revents = 0};
    EXPECT_EQ(::poll(&watched, 1, 0), 0) << "readable while the child runs";
    EXPECT_THROW(child.close(), crew::Error) << "closing a running process";
    child.kill();
    EXPECT_EQ(::poll(&watched, 1, 10'000), 1);
    child.join();
    EXPECT_EQ(child.exitcode(), -SIGKILL);
    const int sentinel = child.sentinel();
    child.close();
    EXPECT_EQ(::fcntl(sentinel, F_GETFD), -1) << "the sentinel is closed";
    EXPECT_THROW((void)child.is_alive(), crew::Error);
    EXPECT_THROW(child.join(), crew::Error);
    EXPECT_THROW((void)child.sentinel(), crew::Error);
    EXPECT_THROW(child.start(), crew::Error);
    EXPECT_EQ(child.name().rfind("Process-", 0), 0u);
    EXPECT_NO_THROW(child.close()) << "closing twice does nothing";
}

// Destroying a closed Process has nothing to finish, and says nothing about it.
TEST_P(ProcessTest, DestroyingAClosedProcessLogsNothing) {
    crew::log_to_stderr(crew::LogLevel::error);
    ::testing::internal::CaptureStderr();
    {
        crew::Process child(options(), do_nothing);
        child.start();
        child.join();
        child.close();
    }
    const std::string text = ::testing::internal::GetCapturedStderr();
    crew::log_to_stderr(crew::LogLevel::off);
    EXPECT_EQ(text, "");
}

INSTANTIATE_TEST_SUITE_P(AllStartMethods, ProcessTest,
                         ::testing::Values(StartMethod::forkserver, StartMethod::fork,
                                           StartMethod::spawn),
                         [](const auto& info) { return std::string(crew::to_string(info.param)); });

// A subclass overriding run(): always started with fork.
class Counter : public crew::Process {
  public:
    explicit Counter(int start) : count_(start) {}
    void run() override { std::exit(count_ + 1); }

  private:
    int count_;
};

// Asks its own Process for its pid and name in the child, as Python's self.pid and self.name.
class SelfAware : public crew::Process {
  public:
    explicit SelfAware(std::string path) : crew::Process({.name = "self-aware"}), path_(path) {}
    void run() override {
        std::ofstream(path_) << (pid() == getpid()) << ' ' << name() << ' ' << is_alive();
        try {
            join();
        } catch (const crew::Error&) {
            std::exit(3);  // joining itself is refused, not a hang
        }
    }

  private:
    std::string path_;
};

class ExplicitSpawn : public crew::Process {
  public:
    ExplicitSpawn() : crew::Process({.start_method = StartMethod::spawn}) {}
    void run() override {}
};

TEST(ProcessSubclass, RunsItsOwnRunWithItsMembers) {
    crew::set_start_method(StartMethod::spawn);  // a subclass starts with fork all the same
    Counter counter(41);
    counter.start();
    counter.join();
    crew::set_start_method(StartMethod::forkserver);
    EXPECT_EQ(counter.exitcode(), 42);
}

TEST(ProcessSubclass, SeesItsOwnPidAndNameInTheChild) {
    crew::testing::TempDir dir;
    SelfAware p(dir.file("seen"));
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 3);
    EXPECT_EQ(crew::testing::read_file(dir.file("seen")), "1 self-aware 1");
}

TEST(ProcessSubclass, AskingForAnotherStartMethodIsAnError) {
    ExplicitSpawn p;
    EXPECT_THROW(p.start(), crew::Error);
}

// Programs observed from outside: the child's stderr, the parent's exit and the parent's death.
std::string program_path() {
    return CREW_PROCESS_PROGRAM;
}

TEST_P(ProcessTest, AnExceptionIsPrintedToTheChildsStderr) {
    auto run = crew::testing::run_program(
        {program_path(), "throw", std::string(crew::to_string(GetParam()))});
    EXPECT_EQ(run.exit_status, 0) << run.output;
    EXPECT_NE(run.output.find("std::runtime_error: thrown in the child"), std::string::npos)
        << run.output;
    EXPECT_NE(run.output.find("exitcode 1"), std::string::npos) << run.output;
}

TEST_P(ProcessTest, ChildrenNeverRunTheParentsAtexitHandlers) {
    auto run = crew::testing::run_program(
        {program_path(), "atexit", std::string(crew::to_string(GetParam()))});
    EXPECT_EQ(run.exit_status, 0) << run.output;
    std::size_t first = run.output.find("atexit handler ran");
    ASSERT_NE(first, std::string::npos) << run.output;
    EXPECT_EQ(run.output.find("atexit handler ran", first + 1), std::string::npos) << run.output;
}

TEST_P(ProcessTest, AtNormalExitDaemonsAreTerminatedAndOthersJoined) {
    auto run = crew::testing::run_program(
        {program_path(), "exit-with-children", std::string(crew::to_string(GetParam()))});
    EXPECT_EQ(run.exit_status, 0) << run.output;
    EXPECT_NE(run.output.find("the non-daemon child finished"), std::string::npos) << run.output;
    pid_t daemon_pid = std::atoi(run.output.substr(run.output.find("daemon pid ") + 11).c_str());
    ASSERT_GT(daemon_pid, 0) << run.output;
    EXPECT_FALSE(crew::testing::process_exists(daemon_pid));
}

}  // namespace

namespace {

// A parent killed with SIGKILL takes its children with it. This process becomes a subreaper so
// that the orphans are handed to it, and it can see them end and reap them.
TEST_P(ProcessTest, ChildrenDieWithTheirParent) {
    constexpr int kChildren = 3;
    ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    const std::set<pid_t> children_before = crew::testing::child_pids();
    auto program = crew::testing::start_program({program_path(), "orphans",
                                                 std::string(crew::to_string(GetParam())),
                                                 std::to_string(kChildren)});
    std::vector<pid_t> children;
    for (std::string line; (line = crew::testing::read_line(program.output, 30s)) != "ready";) {
        ASSERT_EQ(line.rfind("child pid ", 0), 0u) << "unexpected: " << line;
        children.push_back(std::atoi(line.c_str() + 10));
    }
    ASSERT_EQ(children.size(), std::size_t{kChildren});

    kill(program.pid, SIGKILL);
    waitpid(program.pid, nullptr, 0);
    auto killed = std::chrono::steady_clock::now();
    // Reap whatever is handed to us, until every child is gone or a second has passed.
    auto all_gone = [&] {
        while (waitpid(-1, nullptr, WNOHANG) > 0) {
        }
        for (pid_t child : children) {
            if (crew::testing::process_exists(child)) return false;
        }
        return true;
    };
    while (!all_gone() && std::chrono::steady_clock::now() - killed < 1s) {
        std::this_thread::sleep_for(5ms);
    }
    EXPECT_TRUE(all_gone()) << "children still alive a second after their parent was killed";
    // The killed program's fork server is handed to us too: wait for it and reap it.
    while (crew::testing::child_pids() != children_before &&
           std::chrono::steady_clock::now() - killed < 10s) {
        while (waitpid(-1, nullptr, WNOHANG) > 0) {
        }
        std::this_thread::sleep_for(5ms);
    }
    EXPECT_EQ(crew::testing::child_pids(), children_before);
    close(program.output);
    prctl(PR_SET_CHILD_SUBREAPER, 0);
}

}  // namespace
