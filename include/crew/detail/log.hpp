// crew/detail/log.hpp: writing crew's log lines (see crew/log.hpp).
#pragma once

#include <string>
#include <string_view>

#include "crew/log.hpp"

namespace crew::detail {

LogLevel log_level();
bool log_enabled(LogLevel level);
// Writes "[LEVEL/<this process's name>] message" to stderr when level is enabled.
void log(LogLevel level, std::string_view message);
// "MainProcess", or the name of the crew child this process is.
void set_current_process_name(std::string name);

}  // namespace crew::detail
