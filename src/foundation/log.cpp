#include "foundation/log.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include <fmt/format.h>
#include <atomic>

namespace crew {
namespace {

std::atomic<LogLevel> current_level{LogLevel::off};

std::string& process_name() {
    static std::string* name = new std::string("MainProcess");
    return *name;
}

std::string_view level_name(LogLevel level) {
    switch (level) {
        case LogLevel::debug:
            return "DEBUG";
        case LogLevel::info:
            return "INFO";
        case LogLevel::warning:
            return "WARNING";
        case LogLevel::error:
            return "ERROR";
        case LogLevel::off:
            break;
    }
    return "OFF";
}

}  // namespace

void log_to_stderr(LogLevel level) {
    current_level.store(level);
}

namespace detail {

LogLevel log_level() {
    return current_level.load();
}

bool log_enabled(LogLevel level) {
    LogLevel threshold = current_level.load();
    return threshold != LogLevel::off && level >= threshold;
}

// Writes with SIGPIPE blocked in this thread, so that a closed reader (stderr piped into a
// program that has ended) costs the text and not the process, whatever the program's SIGPIPE
// disposition; a SIGPIPE the write raises is taken back before the thread's mask is restored.
void write_all(int fd, std::string_view text) noexcept {
    const int saved_errno = errno;
    sigset_t pipe_signal;
    sigset_t previous_mask;
    sigset_t pending;
    sigemptyset(&pipe_signal);
    sigaddset(&pipe_signal, SIGPIPE);
    sigemptyset(&pending);
    ::pthread_sigmask(SIG_BLOCK, &pipe_signal, &previous_mask);
    ::sigpending(&pending);
    const bool already_pending = sigismember(&pending, SIGPIPE) == 1;
    bool broken = false;
    for (std::size_t written = 0; written < text.size();) {
        ssize_t n = ::write(fd, text.data() + written, text.size() - written);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            broken = n < 0 && errno == EPIPE;
            break;
        }
        written += static_cast<std::size_t>(n);
    }
    if (broken && !already_pending) {
        const timespec no_wait{};
        while (::sigtimedwait(&pipe_signal, nullptr, &no_wait) < 0 && errno == EINTR) {
        }
    }
    ::pthread_sigmask(SIG_SETMASK, &previous_mask, nullptr);
    errno = saved_errno;
}

void write_to_stderr(std::string_view text) noexcept {
    write_all(STDERR_FILENO, text);
}

void write_log_line(LogLevel level, std::string_view message) {
    std::string line = fmt::format("[{}/{}] {}\n", level_name(level), process_name(), message);
    write_to_stderr(line);
}

void set_current_process_name(std::string name) {
    process_name() = std::move(name);
}

std::string current_process_name() {
    return process_name();
}

}  // namespace detail
}  // namespace crew
