#include "crew/synchronize.hpp"

#include <pthread.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <ctime>
#include <new>

#include "crew/detail/futex.hpp"
#include "crew/serialization.hpp"

namespace crew {
namespace detail {

struct SharedMutex::State {
    pthread_mutex_t mutex;
};

SharedMutex::State& SharedMutex::state() const noexcept {
    return *std::launder(reinterpret_cast<State*>(block_.data()));
}

SharedMutex::SharedMutex(bool recursive)
    : block_(sizeof(State), recursive ? "crew-rlock" : "crew-lock") {
    pthread_mutexattr_t attributes;
    int error = pthread_mutexattr_init(&attributes);
    if (error == 0) error = pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
    if (error == 0) error = pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
    if (error == 0) {
        error = pthread_mutexattr_settype(
            &attributes, recursive ? PTHREAD_MUTEX_RECURSIVE : PTHREAD_MUTEX_NORMAL);
    }
    if (error == 0) error = pthread_mutex_init(&(new (block_.data()) State)->mutex, &attributes);
    pthread_mutexattr_destroy(&attributes);
    if (error != 0) throw SystemError("cannot create a process-shared lock", error);
}

int SharedMutex::lock(bool blocking, const Timeout& timeout) {
    pthread_mutex_t& mutex = state().mutex;
    if (!blocking) return pthread_mutex_trylock(&mutex);
    auto lock_within = [&](std::chrono::nanoseconds wait) {
        timespec now{};
        clock_gettime(CLOCK_MONOTONIC, &now);
        const auto total = std::chrono::seconds(now.tv_sec) +
                           std::chrono::nanoseconds(now.tv_nsec) +
                           std::max(wait, std::chrono::nanoseconds(0));
        const timespec deadline = to_timespec(total);
        return pthread_mutex_clocklock(&mutex, CLOCK_MONOTONIC, &deadline);
    };
    if (timeout) return lock_within(*timeout);
    // In slices: a holder killed as it unlocks can leave the lock free and its waiters asleep
    // (the kernel does not always wake a robust futex's waiter for its dying owner).
    int result = pthread_mutex_trylock(&mutex);
    while (result == EBUSY) {
        result = lock_within(lost_wake_up_interval);
        if (result == ETIMEDOUT) result = EBUSY;
    }
    return result;
}

bool SharedMutex::acquire(bool blocking, const Timeout& timeout) {
    switch (acquire_for_repair(blocking, timeout)) {
        case Taken::yes:
            return true;
        case Taken::no:
            return false;
        case Taken::from_dead_owner:
            pthread_mutex_unlock(&state().mutex);
            throw OwnerDied();
    }
    return false;
}

SharedMutex::Taken SharedMutex::acquire_for_repair(bool blocking, const Timeout& timeout) {
    switch (const int result = lock(blocking, timeout)) {
        case 0:
            return Taken::yes;
        case EBUSY:
        case ETIMEDOUT:
        case EDEADLK:  // a Lock the calling thread holds: as Python, it is not taken
            return Taken::no;
        case EOWNERDEAD:
            pthread_mutex_consistent(&state().mutex);
            return Taken::from_dead_owner;
        default:
            throw SystemError("cannot acquire a process-shared lock", result);
    }
}

void SharedMutex::release() {
    const int result = pthread_mutex_unlock(&state().mutex);
    if (result == EPERM) {
        throw Error(
            "crew: release() of a lock this thread does not hold; a Lock or RLock is released by "
            "the thread that acquired it (a Semaphore may be released by anyone)");
    }
    if (result != 0) throw SystemError("cannot release a process-shared lock", result);
}

bool SharedMutex::locked() {
    pthread_mutex_t& mutex = state().mutex;
    const int result = pthread_mutex_trylock(&mutex);
    if (result == EBUSY) return true;
    if (result == EOWNERDEAD) pthread_mutex_consistent(&mutex);
    if (result == 0 || result == EOWNERDEAD) {
        pthread_mutex_unlock(&mutex);
        return false;
    }
    throw SystemError("cannot look at a process-shared lock", result);
}

unsigned SharedMutex::release_all() {
    unsigned levels = 0;
    // A robust mutex refuses an unlock from a thread that does not hold it: that ends the loop.
    while (pthread_mutex_unlock(&state().mutex) == 0) ++levels;
    if (levels == 0) {
        throw Error(
            "crew: wait() on a Condition whose lock this thread does not hold; acquire it first");
    }
    return levels;
}

void SharedMutex::restore(unsigned levels) {
    for (unsigned level = 0; level < levels; ++level) acquire(true, std::nullopt);
}

}  // namespace detail

using detail::Clock;
using detail::futex_wake;
using detail::futex_wake_all;

// Semaphore

struct Semaphore::State {
    std::atomic<std::uint32_t> value{0};
    std::atomic<std::uint32_t> waiters{0};
    std::uint32_t limit = 0;  // bounded: the most value may be; else 0
};

Semaphore::State& Semaphore::state() const noexcept {
    return *std::launder(reinterpret_cast<State*>(block_.data()));
}

Semaphore::Semaphore(unsigned value, bool bounded)
    : block_(sizeof(State), bounded ? "crew-bounded-semaphore" : "crew-semaphore") {
    State* state = new (block_.data()) State;
    state->value.store(value);
    state->limit = bounded ? value : 0;
}

bool Semaphore::acquire(bool blocking, const Timeout& timeout) {
    State& shared = state();
    const auto deadline = detail::deadline_for(timeout);
    while (true) {
        std::uint32_t value = shared.value.load();
        while (value > 0) {
            if (shared.value.compare_exchange_weak(value, value - 1)) return true;
        }
        if (!blocking) return false;
        shared.waiters.fetch_add(1);
        const bool in_time = detail::sleep_while(shared.value, 0, deadline);
        shared.waiters.fetch_sub(1);
        if (!in_time) return false;
    }
}

void Semaphore::release(unsigned n) {
    State& shared = state();
    if (shared.limit != 0) {
        std::uint32_t value = shared.value.load();
        do {
            if (value + n > shared.limit) {
                throw Error("crew: a BoundedSemaphore was released more often than acquired");
            }
        } while (!shared.value.compare_exchange_weak(value, value + n));
    } else {
        shared.value.fetch_add(n);
    }
    if (shared.waiters.load() != 0)
        futex_wake(shared.value, static_cast<int>(std::min(n, unsigned{INT_MAX})));
}

unsigned Semaphore::get_value() const {
    return state().value.load();
}

// Event

struct Event::State {
    std::atomic<std::uint32_t> flag{0};
    std::atomic<std::uint32_t> waiters{0};
};

Event::State& Event::state() const noexcept {
    return *std::launder(reinterpret_cast<State*>(block_.data()));
}

Event::Event() : block_(sizeof(State), "crew-event") {
    new (block_.data()) State;
}

bool Event::is_set() const {
    return state().flag.load() != 0;
}

void Event::set() {
    State& shared = state();
    shared.flag.store(1);
    if (shared.waiters.load() != 0) futex_wake_all(shared.flag);
}

void Event::clear() {
    state().flag.store(0);
}

bool Event::wait(const Timeout& timeout) {
    State& shared = state();
    const auto deadline = detail::deadline_for(timeout);
    while (shared.flag.load() == 0) {
        shared.waiters.fetch_add(1);
        const bool in_time = detail::sleep_while(shared.flag, 0, deadline);
        shared.waiters.fetch_sub(1);
        if (!in_time) break;
    }
    return shared.flag.load() != 0;
}

// Condition

struct Condition::State {
    std::atomic<std::uint32_t> sequence{0};  // moves on at each notify
    std::atomic<std::uint32_t> waiters{0};
};

Condition::State& Condition::state() const noexcept {
    return *std::launder(reinterpret_cast<State*>(block_.data()));
}

Condition::Condition(detail::SharedMutex mutex)
    : mutex_(std::move(mutex)), block_(sizeof(State), "crew-condition") {
    new (block_.data()) State;
}

bool Condition::wait(const Timeout& timeout) {
    State& shared = state();
    const auto deadline = detail::deadline_for(timeout);
    const std::uint32_t sequence = shared.sequence.load();
    const unsigned levels = mutex_.release_all();
    shared.waiters.fetch_add(1);
    bool in_time = true;
    while (in_time && shared.sequence.load() == sequence) {
        in_time = detail::sleep_while(shared.sequence, sequence, deadline);
    }
    shared.waiters.fetch_sub(1);
    mutex_.restore(levels);
    return in_time;
}

bool Condition::wait_for(const std::function<bool()>& predicate, const Timeout& timeout) {
    const auto deadline = detail::deadline_for(timeout);
    bool result = predicate();
    while (!result) {
        const Timeout left = detail::time_left(deadline);
        if (left && left->count() <= 0) break;
        wait(left);
        result = predicate();
    }
    return result;
}

void Condition::notify(unsigned n) {
    State& shared = state();
    shared.sequence.fetch_add(1);
    if (shared.waiters.load() != 0)
        futex_wake(shared.sequence, static_cast<int>(std::min(n, unsigned{INT_MAX})));
}

void Condition::notify_all() {
    State& shared = state();
    shared.sequence.fetch_add(1);
    if (shared.waiters.load() != 0) futex_wake_all(shared.sequence);
}

void Condition::encode_into(detail::Writer& writer) const {
    mutex_.encode_into(writer);
    block_.encode_into(writer);
}

Condition Condition::decode_from(detail::Reader& reader) {
    auto mutex = detail::SharedMutex::decode_from(reader);
    auto block = detail::SharedBlock::decode_from(reader);
    return Condition(std::move(mutex), std::move(block));
}

// Barrier

struct Barrier::State {
    std::atomic<std::uint32_t> wake{0};        // moves on whenever waiters should look again
    std::atomic<std::uint32_t> generation{0};  // rounds completed
    std::atomic<std::uint32_t> resets{0};
    std::atomic<std::uint32_t> arrived{0};
    std::atomic<std::uint32_t> broken{0};
    std::uint32_t parties = 0;
    std::int64_t timeout_ns = -1;  // the default for wait(); -1: none
};

Barrier::State& Barrier::state() const noexcept {
    return *std::launder(reinterpret_cast<State*>(block_.data()));
}

Barrier::Barrier(unsigned parties, const Timeout& timeout) : block_(sizeof(State), "crew-barrier") {
    if (parties == 0) throw Error("crew: a Barrier needs at least one party");
    State* state = new (block_.data()) State;
    state->parties = parties;
    if (timeout) state->timeout_ns = std::max<std::int64_t>(0, timeout->count());
}

unsigned Barrier::wait(const Timeout& timeout) {
    State& shared = state();
    if (shared.broken.load() != 0) throw BrokenBarrierError();
    Timeout limit = timeout;
    if (!limit && shared.timeout_ns >= 0) limit = std::chrono::nanoseconds(shared.timeout_ns);
    const auto deadline = detail::deadline_for(limit);
    const std::uint32_t generation = shared.generation.load();
    const std::uint32_t resets = shared.resets.load();
    const std::uint32_t index = shared.arrived.fetch_add(1);
    if (index + 1 == shared.parties) {
        if (action_) {
            try {
                run_action();
            } catch (...) {
                abort();
                throw;
            }
        }
        shared.arrived.store(0);
        shared.generation.fetch_add(1);
        shared.wake.fetch_add(1);
        futex_wake_all(shared.wake);
        return index;
    }
    while (true) {
        const std::uint32_t seen = shared.wake.load();
        if (shared.generation.load() != generation) return index;
        if (shared.broken.load() != 0 || shared.resets.load() != resets) throw BrokenBarrierError();
        if (!detail::sleep_while(shared.wake, seen, deadline)) {
            abort();
            throw BrokenBarrierError();
        }
    }
}

void Barrier::run_action() {
    detail::Reader call(*action_);
    detail::Writer ignored;
    detail::invoke_call(call, ignored);
}

void Barrier::encode_into(detail::Writer& writer) const {
    block_.encode_into(writer);
    detail::encode(writer, action_ ? *action_ : std::vector<std::byte>());
}

Barrier Barrier::decode_from(detail::Reader& reader) {
    Barrier barrier(detail::SharedBlock::decode_from(reader));
    auto action = detail::decode<std::vector<std::byte>>(reader);
    if (!action.empty()) {
        barrier.action_ = std::make_shared<const std::vector<std::byte>>(std::move(action));
    }
    return barrier;
}

void Barrier::abort() {
    State& shared = state();
    shared.broken.store(1);
    shared.wake.fetch_add(1);
    futex_wake_all(shared.wake);
}

void Barrier::reset() {
    State& shared = state();
    shared.resets.fetch_add(1);
    shared.arrived.store(0);
    shared.broken.store(0);
    shared.wake.fetch_add(1);
    futex_wake_all(shared.wake);
}

unsigned Barrier::parties() const {
    return state().parties;
}

unsigned Barrier::n_waiting() const {
    const State& shared = state();
    return shared.broken.load() != 0 ? 0 : shared.arrived.load();
}

bool Barrier::broken() const {
    return state().broken.load() != 0;
}

}  // namespace crew
