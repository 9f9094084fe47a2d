// crew/detail/interrupt.hpp: Ctrl-C while a thread waits in crew.
//
// Once a pool or a queue exists, crew handles SIGINT (unless the program ignores it). While some
// thread waits in crew (for a future, a map or imap result, a queue's message or room), a SIGINT
// only marks an interrupt: the waiting threads notice it within a few tens of milliseconds, stop
// every pool's workers and throw crew::Interrupted. An interrupt that came as a wait was ending
// with its result is thrown by the next wait. While no thread waits, SIGINT does what it did
// before crew handled it (the default ends the program, as ever). Pool workers ignore SIGINT,
// which the terminal sends to them too: their pool decides their fate.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>

#include "crew/timeout.hpp"

namespace crew::detail {

// Installs the handler, once (the first pool calls it).
void handle_interrupts();
// In a new child process: SIGINT back to what the program had before crew's handler.
void forget_interrupt_handler();
// Pools register so that an interrupt can stop their workers.
void register_for_interrupts(std::function<void()> stop, const void* owner);
void unregister_for_interrupts(const void* owner);

// Marks the scope of one wait: a SIGINT that comes within it, or one no wait has thrown for yet,
// makes throw_if_interrupted() stop every pool and throw crew::Interrupted. A signal handler
// cannot wake a sleeper, so a watched wait sleeps in slices and looks between them.
class InterruptWatch {
  public:
    InterruptWatch();
    ~InterruptWatch();
    InterruptWatch(const InterruptWatch&) = delete;
    InterruptWatch& operator=(const InterruptWatch&) = delete;

    bool interrupted() const;
    void throw_if_interrupted() const;
    // When to look again: deadline, or sooner while crew handles SIGINT.
    Deadline slice(Deadline deadline) const;

  private:
    bool watched_;
    unsigned seen_;
};

// Waits until ready() holds (true) or until deadline passes (false), calling sleep(until) to
// sleep at most until then (forever when until is empty; it may return early); throws
// crew::Interrupted, after stopping every pool, if SIGINT arrives meanwhile.
bool wait_interruptibly(const std::function<bool()>& ready,
                        const std::function<void(Deadline until)>& sleep, Deadline deadline);

// The same, sleeping on condition with lock held around ready(), as condition_variable::wait_until.
bool wait_interruptibly(std::condition_variable& condition, std::unique_lock<std::mutex>& lock,
                        Deadline deadline, const std::function<bool()>& ready);

}  // namespace crew::detail
