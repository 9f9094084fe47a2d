#include "support.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <crew/error.hpp>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace crew::testing {

TempDir::TempDir() {
    std::string pattern = "/tmp/crew-test-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
}

TempDir::~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream content;
    content << in.rdbuf();
    return content.str();
}

std::set<int> open_fds() {
    std::set<int> fds;
    DIR* directory = ::opendir("/proc/self/fd");
    if (directory == nullptr) throw std::runtime_error("cannot open /proc/self/fd");
    while (dirent* entry = ::readdir(directory)) {
        if (entry->d_name[0] != '.') fds.insert(std::atoi(entry->d_name));
    }
    fds.erase(::dirfd(directory));
    ::closedir(directory);
    return fds;
}

std::set<pid_t> child_pids() {
    std::set<pid_t> pids;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
        std::ifstream children(task.path() / "children");
        for (pid_t pid; children >> pid;) pids.insert(pid);
    }
    return pids;
}

bool process_exists(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return false;
    auto close = line.rfind(')');
    return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

std::string process_name(pid_t pid) {
    std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    std::getline(comm, name);
    return name;
}

std::vector<pid_t> children_of(pid_t pid) {
    std::vector<pid_t> pids;
    std::error_code ignored;
    const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
    for (const auto& task : std::filesystem::directory_iterator(tasks, ignored)) {
        std::ifstream children(task.path() / "children");
        for (pid_t child; children >> child;) pids.push_back(child);
    }
    return pids;
}

StartedProgram start_program(const std::vector<std::string>& argv) {
    int pipe_ends[2];
    if (::pipe2(pipe_ends, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        ::dup2(pipe_ends[1], STDOUT_FILENO);
        ::dup2(pipe_ends[1], STDERR_FILENO);
        std::vector<char*> args;
        for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    ::close(pipe_ends[1]);
    return {pid, pipe_ends[0]};
}

std::string read_line(int fd, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string line;
    while (std::chrono::steady_clock::now() < deadline) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd watched{fd, POLLIN, 0};
        if (::poll(&watched, 1, static_cast<int>(left.count()) + 1) <= 0) continue;
        char c;
        if (::read(fd, &c, 1) != 1) break;
        if (c == '\n') return line;
        line += c;
    }
    return line;
}

ProgramRun run_program(const std::vector<std::string>& argv, std::chrono::seconds timeout) {
    StartedProgram program = start_program(argv);
    ProgramRun run;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char buffer[4096];
    while (true) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            ::kill(program.pid, SIGKILL);
            run.output += "\n[killed after the test's timeout]\n";
            break;
        }
        pollfd watched{program.output, POLLIN, 0};
        if (::poll(&watched, 1, static_cast<int>(left.count())) <= 0) continue;
        ssize_t n = ::read(program.output, buffer, sizeof buffer);
        if (n <= 0) break;
        run.output.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(program.output);
    ::waitpid(program.pid, &run.exit_status, 0);
    return run;
}

std::string to_string(Fault fault) {
    switch (fault) {
        case Fault::exception:
            return "exception";
        case Fault::crash:
            return "crash";
        case Fault::abort:
            return "abort";
        case Fault::hang:
            return "hang";
    }
    return "?";
}

int fail_at_five(FaultyItem item) {
    if (item.value != 5) return item.value;
    switch (item.fault) {
        case Fault::exception:
            throw std::invalid_argument("five is not allowed");
        case Fault::crash:
            std::raise(SIGSEGV);
            break;
        case Fault::abort:
            std::abort();
        case Fault::hang:
            std::this_thread::sleep_for(std::chrono::minutes(1));
            break;
    }
    return item.value;
}

std::vector<FaultyItem> faulty_items(Fault fault, int count) {
    std::vector<FaultyItem> items;
    for (int value = 0; value < count; ++value) items.push_back({fault, value});
    return items;
}

std::string describe_failure(std::exception_ptr error) {
    try {
        std::rethrow_exception(error);
    } catch (const std::invalid_argument&) {
        return "std::invalid_argument";
    } catch (const RemoteError& remote) {
        return "RemoteError " + remote.type_name();
    } catch (const WorkerDied& died) {
        return died.signal() != 0 ? "WorkerDied signal " + std::to_string(died.signal())
                                  : "WorkerDied exit " + std::to_string(died.exitcode());
    } catch (const TimeoutError&) {
        return "TimeoutError";
    } catch (const std::exception& other) {
        return std::string("another error: ") + other.what();
    }
}

std::string expected_failure(Fault fault) {
    switch (fault) {
        case Fault::exception:
            return "std::invalid_argument";
        case Fault::crash:
            return "WorkerDied signal " + std::to_string(SIGSEGV);
        case Fault::abort:
            return "WorkerDied signal " + std::to_string(SIGABRT);
        case Fault::hang:
            return "TimeoutError";
    }
    return "?";
}

long resident_kib() {
    const std::string status = read_file("/proc/self/status");
    return std::atol(status.c_str() + status.find("VmRSS:") + 6);
}

namespace {

std::vector<std::byte> run_batch_here(std::vector<std::byte> batch) {
    return crew::run_batch(batch);
}

}  // namespace

void PoolBackend::apply_async(std::vector<std::byte> batch, crew::BatchCallback done) {
    pool_.apply_async(run_batch_here, std::move(batch),
                      crew::callback([done](const std::vector<std::byte>& reply) { done(reply); }),
                      crew::error_callback([done](std::exception_ptr error) { done(error); }));
}

}  // namespace crew::testing
