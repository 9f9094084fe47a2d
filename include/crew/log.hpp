// crew/log.hpp: crew's own log lines, like multiprocessing.log_to_stderr().
//
//     crew::log_to_stderr();          // or crew::log_to_stderr(crew::LogLevel::debug)
//
// After the call, crew writes a line to stderr for each event at or above the level: a process
// started (with its pid and start method), a child calling its target, a child exiting and a
// process ended (with its exit code), logged as it ends, also when it was killed from outside and
// nothing has asked about it yet: a thread of crew's, started with the first process logged,
// watches the children. A line reads "[INFO/MainProcess] ..." or, from a child,
// "[INFO/Process-1] ...", and is written with one write(2), so lines from different processes do
// not mix. Children started afterwards log at the same level. LogLevel::off (the initial level)
// stops it again. Safe to call from any thread.
#pragma once

namespace crew {

enum class LogLevel { debug = 10, info = 20, warning = 30, error = 40, off = 100 };

void log_to_stderr(LogLevel level = LogLevel::info);

}  // namespace crew
