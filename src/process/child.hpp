// process/child.hpp: what every crew child does between being forked and ending.
#pragma once

#include <sys/types.h>

#include <csignal>
#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "crew/log.hpp"

namespace crew::detail {

// What a fork server or a spawned program needs to become a child: its name, the log level, the
// program's argv (for spawn), the call written by encode_call and the numbers of the descriptors
// attached to the call, as they are in the child (filled in by whoever passes them on).
struct ChildRequest {
    std::string name;
    LogLevel log_level = LogLevel::off;
    std::string parent_name;  // the process asking, as crew::parent_process() will say
    pid_t parent_pid = 0;
    std::vector<std::string> argv;
    std::vector<std::byte> call;
    std::vector<int> fds;
};

// What crew::parent_process() says in this process; unset in the main process.
void set_parent_process(std::string name, pid_t pid);

std::vector<std::byte> encode_child_request(const ChildRequest& request);
ChildRequest decode_child_request(std::span<const std::byte> bytes);

// In a child just forked: closes the parent's crew descriptors but those passed to it (keep),
// restores default signal handling when restore_signals is set, and arranges to get
// death_signal when the parent, whose pid is given, dies: SIGKILL returns only if the parent is
// still alive; another signal (the fork server's, which cleans up) is raised at once if the
// parent died already; 0 asks for nothing.
void become_child(pid_t parent, bool restore_signals, std::span<const int> keep = {},
                  int death_signal = SIGKILL);

// Runs body as the child called name and ends the process: exit code 0 when body returns, 1 when
// it throws (the exception is printed to stderr). Never returns; never runs atexit handlers.
[[noreturn]] void run_child(const std::string& name, LogLevel log_level,
                            const std::function<void()>& body);

// Runs the call of a request as the child it names (run_child).
[[noreturn]] void run_child_request(const ChildRequest& request);

// Writes everything buffered in stdio and iostreams, so that a fork does not print it twice.
void flush_standard_streams();

}  // namespace crew::detail
