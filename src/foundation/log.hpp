// foundation/log.hpp: writing crew's log lines (see crew/log.hpp).
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

#include "crew/log.hpp"

namespace crew::detail {

LogLevel log_level();
bool log_enabled(LogLevel level);
// Writes text to fd with as few write(2) calls as it takes (one, for a line of normal size), so
// that lines of several processes do not mix. Failures are ignored: stderr may be closed.
void write_all(int fd, std::string_view text) noexcept;
void write_to_stderr(std::string_view text) noexcept;

// Writes "[LEVEL/<this process's name>] message" to stderr.
void write_log_line(LogLevel level, std::string_view message);

// Formats and writes a log line when level is enabled; costs one atomic load when it is not.
template <class... Arguments>
void log(LogLevel level, fmt::format_string<Arguments...> format, Arguments&&... arguments) {
    if (log_enabled(level)) {
        write_log_line(level, fmt::format(format, std::forward<Arguments>(arguments)...));
    }
}
// "MainProcess", or the name of the crew child this process is.
void set_current_process_name(std::string name);
std::string current_process_name();

}  // namespace crew::detail
