// crew/detail/interrupt.hpp: Ctrl-C while a thread waits for a result.
//
// Once a pool exists, crew handles SIGINT. While some thread waits in crew (for a future, a map, an
// imap result), a SIGINT only marks an interrupt: the waiting threads notice it within a few tens
// of milliseconds, stop every pool's workers and throw crew::Interrupted. While no thread waits,
// SIGINT does what it did before crew handled it (the default ends the program, as ever). Pool
// workers ignore SIGINT, which the terminal sends to them too: their pool decides their fate.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>

namespace crew::detail {

// Installs the handler, once (the first pool calls it).
void handle_interrupts();
// In a new child process: SIGINT back to what the program had before crew's handler.
void forget_interrupt_handler();
// Pools register so that an interrupt can stop their workers.
void register_for_interrupts(std::function<void()> stop, const void* owner);
void unregister_for_interrupts(const void* owner);

// Waits until ready() holds (true) or until deadline passes (false), calling sleep(until) to
// sleep at most until then (forever when until is empty; it may return early); throws
// crew::Interrupted, after stopping every pool, if SIGINT arrives meanwhile.
bool wait_interruptibly(
    const std::function<bool()>& ready,
    const std::function<void(std::optional<std::chrono::steady_clock::time_point> until)>& sleep,
    std::optional<std::chrono::steady_clock::time_point> deadline);

// The same, sleeping on condition with lock held around ready(), as condition_variable::wait_until.
bool wait_interruptibly(std::condition_variable& condition, std::unique_lock<std::mutex>& lock,
                        std::optional<std::chrono::steady_clock::time_point> deadline,
                        const std::function<bool()>& ready);

}  // namespace crew::detail
