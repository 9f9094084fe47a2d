#include "crew/detail/interrupt.hpp"

#include <csignal>
#include <vector>

#include "crew/error.hpp"

namespace crew::detail {
namespace {

// Touched by the signal handler: lock-free atomics and what sigaction set, nothing else.
std::atomic<int> waiting{0};
std::atomic<unsigned> interrupts{0};
// Interrupts some wait has thrown for. One that came while a wait was ending with its result is
// not handled yet: the next wait throws for it rather than let Ctrl-C go unheard.
std::atomic<unsigned> handled{0};
std::atomic<bool> installed{false};
struct sigaction before_crew {};

// How often a waiting thread looks for an interrupt: a handler may not wake a condition variable.
constexpr std::chrono::milliseconds interrupt_poll{20};

static_assert(std::atomic<int>::is_always_lock_free && std::atomic<unsigned>::is_always_lock_free);

void on_interrupt(int signal, siginfo_t* info, void* context) {
    if (waiting.load() > 0) {
        interrupts.fetch_add(1);
        return;
    }
    if (before_crew.sa_flags & SA_SIGINFO) {
        before_crew.sa_sigaction(signal, info, context);
    } else if (before_crew.sa_handler == SIG_IGN) {
        return;
    } else if (before_crew.sa_handler != SIG_DFL) {
        before_crew.sa_handler(signal);
    } else {
        // The default: the program ends by SIGINT, as it would have without crew.
        ::sigaction(SIGINT, &before_crew, nullptr);
        ::raise(SIGINT);
    }
}

struct Stopper {
    std::function<void()> stop;
    const void* owner;
};
std::mutex stoppers_mutex;
std::vector<Stopper> stoppers;

[[noreturn]] void stop_everything_and_throw() {
    handled.store(interrupts.load());
    {
        std::lock_guard lock(stoppers_mutex);
        for (auto& stopper : stoppers) stopper.stop();
    }
    throw Interrupted();
}

}  // namespace

void handle_interrupts() {
    static std::once_flag once;
    std::call_once(once, [] {
        // A program that ignores SIGINT (a pool worker, a job started with nohup) keeps ignoring
        // it, as Python leaves an ignored SIGINT alone.
        struct sigaction current {};
        if (::sigaction(SIGINT, nullptr, &current) != 0) {
            throw_system_error("cannot read the SIGINT disposition");
        }
        if (!(current.sa_flags & SA_SIGINFO) && current.sa_handler == SIG_IGN) return;
        struct sigaction action {};
        action.sa_sigaction = on_interrupt;
        action.sa_flags = SA_SIGINFO | SA_RESTART;
        sigemptyset(&action.sa_mask);
        if (::sigaction(SIGINT, &action, &before_crew) != 0) {
            throw_system_error("cannot install crew's SIGINT handler");
        }
        installed.store(true);
    });
}

void forget_interrupt_handler() {
    if (installed.load()) ::sigaction(SIGINT, &before_crew, nullptr);
}

void register_for_interrupts(std::function<void()> stop, const void* owner) {
    std::lock_guard lock(stoppers_mutex);
    stoppers.push_back({std::move(stop), owner});
}

void unregister_for_interrupts(const void* owner) {
    std::lock_guard lock(stoppers_mutex);
    std::erase_if(stoppers, [&](const Stopper& stopper) { return stopper.owner == owner; });
}

InterruptWatch::InterruptWatch() : watched_(installed.load()), seen_(interrupts.load()) {
    if (watched_) waiting.fetch_add(1);
}

InterruptWatch::~InterruptWatch() {
    if (watched_) waiting.fetch_sub(1);
}

bool InterruptWatch::interrupted() const {
    if (!watched_) return false;
    const unsigned now_seen = interrupts.load();
    return now_seen != seen_ || now_seen != handled.load();
}

void InterruptWatch::throw_if_interrupted() const {
    if (interrupted()) stop_everything_and_throw();
}

Deadline InterruptWatch::slice(Deadline deadline) const {
    if (!watched_) return deadline;
    const auto next_look = std::chrono::steady_clock::now() + interrupt_poll;
    return deadline && *deadline < next_look ? deadline : next_look;
}

bool wait_interruptibly(const std::function<bool()>& ready,
                        const std::function<void(Deadline until)>& sleep, Deadline deadline) {
    const InterruptWatch watch;
    while (true) {
        watch.throw_if_interrupted();
        if (ready()) return true;
        if (deadline && *deadline <= std::chrono::steady_clock::now()) return false;
        sleep(watch.slice(deadline));
    }
}

bool wait_interruptibly(std::condition_variable& condition, std::unique_lock<std::mutex>& lock,
                        Deadline deadline, const std::function<bool()>& ready) {
    return wait_interruptibly(
        ready,
        [&](Deadline until) {
            if (until) {
                condition.wait_until(lock, *until);
            } else {
                condition.wait(lock);
            }
        },
        deadline);
}

}  // namespace crew::detail
