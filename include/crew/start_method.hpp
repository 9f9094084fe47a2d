// crew/start_method.hpp: how a child process is started (Python's multiprocessing start methods).
//
//   forkserver (the default, as in Python 3.14): a small single-threaded server is forked once,
//       at crew::init (else on first use), and every child is forked from it. Safe in threaded
//       programs; children see the program as it was when the server started, not as it is now.
//   fork: the child is forked from the caller and sees its memory as it is now (copy-on-write),
//       the cheap way to share large read-only data. A child started with fork is also ended when
//       the thread that started it ends (Linux's parent-death signal follows the thread).
//   spawn: the program is executed anew and crew::init (which must be the first line of main)
//       turns it into the child. The slowest, and the cleanest: nothing is inherited.
//
//     crew::set_start_method(crew::StartMethod::spawn);    // for every later child
//     crew::Process p({.start_method = crew::StartMethod::fork}, work);  // for one
//
// set_start_method may be called at any time; it applies to processes started afterwards.
#pragma once

#include <string_view>

namespace crew {

enum class StartMethod { forkserver, fork, spawn };

void set_start_method(StartMethod method);
StartMethod get_start_method();

// "forkserver", "fork" or "spawn".
std::string_view to_string(StartMethod method);

}  // namespace crew
