// foundation/signal_free_thread.hpp: a thread of crew's own that takes no signals.
//
// crew's helper threads (the death log, crew::wait's queue watchers) must not run the program's
// signal handlers, nor take a signal meant for a thread of the program's that waits in sigwait:
// they start with every signal blocked, as the program's threads keep their own masks.
#pragma once

#include <signal.h>

#include <functional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "crew/error.hpp"

namespace crew::detail {

// Starts body on a new thread with every signal blocked; throws crew::SystemError "cannot start
// <what>" when the thread cannot start. The calling thread's mask is as it was either way.
inline std::thread start_signal_free_thread(std::function<void()> body, const char* what) {
    sigset_t all, previous;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_BLOCK, &all, &previous);
    std::thread thread;
    try {
        thread = std::thread(std::move(body));
    } catch (const std::system_error& error) {
        ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
        throw SystemError(std::string("cannot start ") + what, error.code().value());
    }
    ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    return thread;
}

}  // namespace crew::detail
