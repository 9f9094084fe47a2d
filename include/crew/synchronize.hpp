// crew/synchronize.hpp: locks, semaphores, events, conditions and barriers shared between
// processes, Python's multiprocessing.synchronize.
//
//     void count(crew::Lock lock, int n) {
//         std::lock_guard hold(lock);  // or lock.acquire() ... lock.release()
//         std::cout << "child " << n << " has the lock\n";
//     }
//
//     int main(int argc, char** argv) {
//         crew::init(argc, argv);
//         crew::Lock lock;
//         crew::Process first(count, lock, 1), second(count, lock, 2);
//         first.start(); second.start();
//         first.join(); second.join();
//     }
//
// Each object lives in a small block of shared memory (nothing in /dev/shm: the block is gone
// when the last process using it lets go). A copy of the object, or the object handed to a
// crew::Process as an argument, is the same lock, not a new one. Threads may share them too.
//
// Blocking: waits sleep on a futex (Lock and RLock on a process-shared, robust pthread mutex,
// which is one). Every wait takes an optional timeout and then returns false when it passed,
// as Python's acquire(timeout=...) and wait(timeout) do; Barrier::wait throws instead, as Python.
//
// A process that dies holding a Lock or an RLock does not leave it held: the next acquire()
// throws crew::OwnerDied, after making the lock usable again and leaving it released. What the
// lock guarded may be half-updated: repair it, then acquire again. Lock and RLock are released by
// the thread that holds them (release() elsewhere throws crew::Error), and meet the standard's
// Lockable requirements (std::lock_guard, std::unique_lock, std::scoped_lock). A Semaphore
// may be released by anyone; a BoundedSemaphore released more often than acquired throws.
//
// Pool tasks take them as arguments too (their descriptors go to the worker beside the task).
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "crew/detail/byte_stream.hpp"
#include "crew/detail/callable.hpp"
#include "crew/detail/shared_block.hpp"
#include "crew/error.hpp"
#include "crew/timeout.hpp"

namespace crew {

class Condition;

namespace detail {

// A robust, process-shared pthread mutex in a SharedBlock; recursive or not.
class SharedMutex {
  public:
    explicit SharedMutex(bool recursive);
    bool acquire(bool blocking, const Timeout& timeout);
    // For a holder that repairs what the lock guards itself: takes the lock from a dead holder
    // too, without throwing, and says so.
    enum class Taken { no, yes, from_dead_owner };
    Taken acquire_for_repair(bool blocking, const Timeout& timeout);
    void release();
    bool locked();
    // Releases every level this thread holds; returns how many, for restore.
    unsigned release_all();
    void restore(unsigned levels);
    void encode_into(Writer& writer) const { block_.encode_into(writer); }
    static SharedMutex decode_from(Reader& reader) {
        return SharedMutex(SharedBlock::decode_from(reader));
    }

  private:
    explicit SharedMutex(SharedBlock block) : block_(std::move(block)) {}
    int lock(bool blocking, const Timeout& timeout);  // pthread's result
    struct State;
    State& state() const noexcept;
    SharedBlock block_;
};

}  // namespace detail

namespace detail {

// What Lock and RLock share: a SharedMutex behind Python's and the standard's lock calls.
class MutexLock {
  public:
    // Waits for the lock (at most timeout); false if it was not taken. blocking = false: a try.
    bool acquire(bool blocking = true, const Timeout& timeout = std::nullopt) {
        return mutex_.acquire(blocking, timeout);
    }
    void release() { mutex_.release(); }

    void lock() { acquire(); }
    bool try_lock() { return acquire(false); }
    template <class Rep, class Period>
    bool try_lock_for(std::chrono::duration<Rep, Period> timeout) {
        return acquire(true, detail::timeout_of(timeout));
    }
    void unlock() { release(); }

    void encode_into(Writer& writer) const { mutex_.encode_into(writer); }

  protected:
    explicit MutexLock(SharedMutex mutex) : mutex_(std::move(mutex)) {}
    SharedMutex& mutex() noexcept { return mutex_; }

  private:
    friend class crew::Condition;
    SharedMutex mutex_;
};

}  // namespace detail

// multiprocessing.Lock: not recursive; acquiring it again in the thread that holds it waits
// (until the timeout, if any).
class Lock : public detail::MutexLock {
  public:
    Lock() : MutexLock(detail::SharedMutex(false)) {}
    // Whether some thread holds it now.
    bool locked() { return mutex().locked(); }
    static Lock decode_from(detail::Reader& reader) {
        return Lock(detail::SharedMutex::decode_from(reader));
    }

  private:
    explicit Lock(detail::SharedMutex mutex) : MutexLock(std::move(mutex)) {}
};

// multiprocessing.RLock: the thread that holds it may acquire it again; it is free once released
// as often as acquired.
class RLock : public detail::MutexLock {
  public:
    RLock() : MutexLock(detail::SharedMutex(true)) {}
    static RLock decode_from(detail::Reader& reader) {
        return RLock(detail::SharedMutex::decode_from(reader));
    }

  private:
    explicit RLock(detail::SharedMutex mutex) : MutexLock(std::move(mutex)) {}
};

// multiprocessing.Semaphore: a counter; acquire() takes one (waiting while it is 0), release()
// gives n back. BoundedSemaphore also refuses to go above its initial value.
class Semaphore {
  public:
    explicit Semaphore(unsigned value = 1) : Semaphore(value, false) {}
    bool acquire(bool blocking = true, const Timeout& timeout = std::nullopt);
    void release(unsigned n = 1);
    unsigned get_value() const;

    void lock() { acquire(); }
    bool try_lock() { return acquire(false); }
    void unlock() { release(); }

    void encode_into(detail::Writer& writer) const { block_.encode_into(writer); }
    static Semaphore decode_from(detail::Reader& reader) {
        return Semaphore(detail::SharedBlock::decode_from(reader));
    }

  protected:
    Semaphore(unsigned value, bool bounded);
    explicit Semaphore(detail::SharedBlock block) : block_(std::move(block)) {}

  private:
    struct State;
    State& state() const noexcept;
    detail::SharedBlock block_;
};

class BoundedSemaphore : public Semaphore {
  public:
    explicit BoundedSemaphore(unsigned value = 1) : Semaphore(value, true) {}
    static BoundedSemaphore decode_from(detail::Reader& reader) {
        return BoundedSemaphore(detail::SharedBlock::decode_from(reader));
    }

  private:
    explicit BoundedSemaphore(detail::SharedBlock block) : Semaphore(std::move(block)) {}
};

// multiprocessing.Event: a flag that wait() waits for.
class Event {
  public:
    Event();
    bool is_set() const;
    void set();
    void clear();
    // Waits until the flag is set (at most timeout); returns the flag.
    bool wait(const Timeout& timeout = std::nullopt);

    void encode_into(detail::Writer& writer) const { block_.encode_into(writer); }
    static Event decode_from(detail::Reader& reader) {
        return Event(detail::SharedBlock::decode_from(reader));
    }

  private:
    explicit Event(detail::SharedBlock block) : block_(std::move(block)) {}
    struct State;
    State& state() const noexcept;
    detail::SharedBlock block_;
};

// multiprocessing.Condition: waiting for a change announced under a lock (an RLock of its own
// unless given one). wait() must be called holding the lock; it releases it while it waits and
// takes it back before it returns. A wait may also end without a notify: use wait_for.
class Condition {
  public:
    Condition() : Condition(RLock()) {}
    explicit Condition(Lock lock) : Condition(lock.mutex_) {}
    explicit Condition(RLock lock) : Condition(lock.mutex_) {}

    bool acquire(bool blocking = true, const Timeout& timeout = std::nullopt) {
        return mutex_.acquire(blocking, timeout);
    }
    void release() { mutex_.release(); }
    void lock() { acquire(); }
    bool try_lock() { return acquire(false); }
    void unlock() { release(); }

    // Returns false if the timeout passed.
    bool wait(const Timeout& timeout = std::nullopt);
    // Waits until predicate() holds (at most timeout); returns its last value.
    bool wait_for(const std::function<bool()>& predicate, const Timeout& timeout = std::nullopt);
    void notify(unsigned n = 1);
    void notify_all();

    void encode_into(detail::Writer& writer) const;
    static Condition decode_from(detail::Reader& reader);

  private:
    explicit Condition(detail::SharedMutex mutex);
    Condition(detail::SharedMutex mutex, detail::SharedBlock block)
        : mutex_(std::move(mutex)), block_(std::move(block)) {}
    struct State;
    State& state() const noexcept;
    detail::SharedMutex mutex_;
    detail::SharedBlock block_;
};

// multiprocessing.Barrier: parties processes (or threads) wait for each other. wait() returns a
// number from 0 to parties - 1, different for each; it throws crew::BrokenBarrierError when the
// barrier is aborted or reset while it waits, or its timeout passes (which aborts it).
//
// An action (Python's action=) is run by the last party to arrive, before any is released. It
// travels with the barrier to other processes, so it is what crew can send (a function, a lambda
// without captures, a function object with serialize) and takes no arguments. If it throws, the
// barrier breaks: that party's wait() throws the action's exception, the others'
// BrokenBarrierError.
//     crew::Barrier barrier(4, [] { std::puts("all four are here"); });
class Barrier {
  public:
    explicit Barrier(unsigned parties, const Timeout& timeout = std::nullopt);
    template <class Action>
    requires std::invocable < std::decay_t<Action>
    & > Barrier(unsigned parties, Action&& action, const Timeout& timeout = std::nullopt)
        : Barrier(parties, timeout) {
        detail::Writer call;
        detail::encode_call(call, std::decay_t<Action>(std::forward<Action>(action)));
        action_ = std::make_shared<const std::vector<std::byte>>(call.bytes().begin(),
                                                                 call.bytes().end());
    }
    unsigned wait(const Timeout& timeout = std::nullopt);
    // Breaks the barrier: waiting and later wait() calls throw, until reset().
    void abort();
    // Back to empty and unbroken; those waiting now throw.
    void reset();
    unsigned parties() const;
    unsigned n_waiting() const;
    bool broken() const;

    void encode_into(detail::Writer& writer) const;
    static Barrier decode_from(detail::Reader& reader);

  private:
    explicit Barrier(detail::SharedBlock block) : block_(std::move(block)) {}
    struct State;
    State& state() const noexcept;
    void run_action();
    detail::SharedBlock block_;
    std::shared_ptr<const std::vector<std::byte>> action_;  // an encoded call; null: none
};

}  // namespace crew
