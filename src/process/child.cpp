#include "process/child.hpp"

#include <sys/prctl.h>
#include <unistd.h>
#include <csignal>

#include <fmt/format.h>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>
#include <typeinfo>

#include "crew/detail/callable.hpp"
#include "crew/detail/interrupt.hpp"
#include "crew/detail/unique_fd.hpp"
#include "foundation/log.hpp"

namespace crew::detail {
namespace {}  // namespace

std::vector<std::byte> encode_child_request(const ChildRequest& request) {
    Writer writer;
    encode(writer, request.name);
    encode(writer, request.log_level);
    encode(writer, request.parent_name);
    encode(writer, request.parent_pid);
    encode(writer, request.argv);
    encode(writer, request.call);
    encode(writer, request.fds);
    std::span<const std::byte> bytes = writer.bytes();
    return {bytes.begin(), bytes.end()};
}

ChildRequest decode_child_request(std::span<const std::byte> bytes) {
    Reader reader(bytes);
    ChildRequest request;
    request.name = decode<std::string>(reader);
    request.log_level = decode<LogLevel>(reader);
    request.parent_name = decode<std::string>(reader);
    request.parent_pid = decode<pid_t>(reader);
    request.argv = decode<std::vector<std::string>>(reader);
    request.call = decode<std::vector<std::byte>>(reader);
    request.fds = decode<std::vector<int>>(reader);
    return request;
}

void flush_standard_streams() {
    std::cout.flush();
    std::cerr.flush();
    std::clog.flush();
    std::fflush(nullptr);
}

void become_child(pid_t parent, bool restore_signals, std::span<const int> keep, int death_signal) {
    close_library_fds_in_child(parent, keep);
    forget_interrupt_handler();
    if (restore_signals) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        for (int signal : {SIGCHLD, SIGPIPE, SIGINT}) std::signal(signal, SIG_DFL);
    }
    // The parent may have died between fork and prctl; then nobody will send the signal.
    if (::prctl(PR_SET_PDEATHSIG, death_signal) != 0) ::_exit(1);
    if (::getppid() != parent) {
        if (death_signal == SIGKILL) ::_exit(1);
        if (death_signal != 0) ::raise(death_signal);
    }
}

void run_child(const std::string& name, LogLevel log_level, const std::function<void()>& body) {
    set_current_process_name(name);
    log_to_stderr(log_level);
    log(LogLevel::info, "child process calling run()");
    int exitcode = 0;
    try {
        body();
    } catch (const std::exception& error) {
        flush_standard_streams();
        write_to_stderr(fmt::format("Process {} (pid {}) ended by an exception:\n{}: {}\n", name,
                                    ::getpid(), current_exception_type_name(), error.what()));
        exitcode = 1;
    } catch (...) {
        flush_standard_streams();
        write_to_stderr(fmt::format("Process {} (pid {}) ended by an exception:\n{}\n", name,
                                    ::getpid(), current_exception_type_name()));
        exitcode = 1;
    }
    log(LogLevel::info, "process exiting with exitcode {}", exitcode);
    flush_standard_streams();
    ::_exit(exitcode);
}

void run_child_request(const ChildRequest& request) {
    set_parent_process(request.parent_name, request.parent_pid);
    run_child(request.name, request.log_level, [&] {
        Reader call(request.call, request.fds);
        Writer result;
        invoke_call(call, result);
    });
}

}  // namespace crew::detail
