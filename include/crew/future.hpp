// crew/future.hpp: crew::Future, crew::as_completed and crew::wait, as in concurrent.futures.
//
//     crew::ProcessPoolExecutor executor({.max_workers = 4});
//     std::vector<crew::Future<int>> futures;
//     for (int i = 0; i < 10; ++i) futures.push_back(executor.submit(compute_square, i));
//     for (crew::Future<int> future : crew::as_completed(futures)) {
//         std::cout << future.result() << '\n';          // in the order they finish
//     }
//
// A Future is a handle: copies share one result. It is pending, then running (a worker took it),
// then done: with a value, with an exception, or cancelled. cancel() succeeds only while it is
// pending. result() waits and returns the value or throws the task's exception (crew::Cancelled
// for a cancelled one); result(timeout) throws crew::TimeoutError when time runs out. Waiting
// for a process pool's future collects its reply itself for a while (about 1 µs for a quick
// task, no thread woken), then sleeps. as_completed(futures, {.timeout, .progress}) yields them
// as they finish, with a progress bar if asked. Callbacks
// added with add_done_callback run once it is done, in the thread that completes it (or at once,
// in the caller's, if it already is); they must not block. An exception a callback throws is
// logged (crew::log_to_stderr shows it) and ignored, as in concurrent.futures: it cannot break
// the thread that completed the future, a pool's broker say.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <compare>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <variant>
#include <vector>

#include "crew/detail/futex.hpp"
#include "crew/detail/interrupt.hpp"
#include "crew/detail/progress.hpp"
#include "crew/detail/pull_iterator.hpp"
#include "crew/detail/spin.hpp"
#include "crew/error.hpp"
#include "crew/timeout.hpp"

namespace crew {

// The result of a Future that was cancelled.
class Cancelled : public Error {
  public:
    Cancelled() : Error("crew: the future was cancelled before it ran") {}
};

template <class T>
class Future;

namespace detail {

// What an executor needs of a future to cancel it at shutdown, whatever its type.
class Cancellable {
  public:
    virtual ~Cancellable() = default;
    virtual bool cancel() = 0;
};

// Logs the exception a done callback threw (see call below).
void ignore_failed_callback(std::exception_ptr error) noexcept;

// A future's state. Its life is one atomic word: the phase (pending, running, being finished,
// done) and three flags: a thread sleeps on the word (a futex) waiting for done; a thread adds a
// done callback (a lock of a few instructions: done is not published while it is held); there
// are callbacks to run. Starting, finishing and reading a done state take no lock, so that a
// thread pool's trivial task costs a few atomic operations, not six lock operations.
template <class T>
class FutureState : public Cancellable {
  public:
    using Stored = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
    enum class Status { pending, running, done };

    // pending -> running; false if it is done already, i.e. cancelled (then it must not run).
    // A task sent again after its worker died is running already, and may run.
    bool set_running() {
        std::uint32_t word = word_.load(std::memory_order_relaxed);
        while (true) {
            const std::uint32_t phase = word & phase_mask;
            if (phase == running) return true;
            if (phase != pending) return false;
            if (word_.compare_exchange_weak(word, (word & ~phase_mask) | running,
                                            std::memory_order_acquire)) {
                return true;
            }
        }
    }
    void set_value(Stored value) {
        finish([&] { value_.emplace(std::move(value)); });
    }
    void set_error(std::exception_ptr error) {
        finish([&] { error_ = std::move(error); });
    }
    bool cancel() override {
        std::uint32_t word = word_.load(std::memory_order_relaxed);
        while ((word & phase_mask) == pending) {
            if (word_.compare_exchange_weak(word, (word & ~phase_mask) | finishing,
                                            std::memory_order_acquire)) {
                cancelled_ = true;
                error_ = std::make_exception_ptr(Cancelled());
                publish_done();
                return true;
            }
        }
        if ((word & phase_mask) == running) return false;
        // Being finished by another thread, or done: the outcome tells.
        while (!is_done()) cpu_relax();
        return cancelled_;
    }

    bool wait(const Timeout& timeout) const {
        if (is_done()) return true;
        const Deadline deadline = deadline_for(timeout);
        work_toward_done(deadline);
        if (is_done()) return true;
        return wait_interruptibly([&] { return is_done(); },
                                  [&](auto until) { sleep_while_not_done(until); }, deadline);
    }
    // Whether it is done, without waiting.
    bool is_done() const noexcept {
        return (word_.load(std::memory_order_acquire) & phase_mask) == done;
    }
    Status status() const {
        switch (word_.load(std::memory_order_acquire) & phase_mask) {
            case pending:
                return Status::pending;
            case done:
                return Status::done;
            default:
                return Status::running;  // or being finished: not done yet
        }
    }
    bool cancelled() const { return is_done() && cancelled_; }
    // Once done: the exception it ended with, or null. Null while not done.
    std::exception_ptr error() const { return is_done() ? error_ : nullptr; }
    // Once done: the value (nothing for void), or the exception it ended with.
    T value() const {
        if (error_) std::rethrow_exception(error_);
        if constexpr (!std::is_void_v<T>) return *value_;
    }
    // Runs once with the outcome (the value, or null and the exception) as it is set, before any
    // waiter can see the state done: Python's AsyncResult callbacks, after which get() returns.
    // Set before anything can finish the state; the same rules as a done callback's hold.
    using ReadyCallback = std::function<void(const Stored*, const std::exception_ptr&)>;
    void call_when_ready(ReadyCallback callback) { ready_ = std::move(callback); }
    // Waits, then moves the value out: for a caller that is the state's only reader.
    T take_value() {
        wait(std::nullopt);
        if (error_) std::rethrow_exception(error_);
        if constexpr (!std::is_void_v<T>) return std::move(*value_);
    }
    // self: the state's own handle, which the callbacks get (and keep until they have run).
    void on_done(std::function<void(Future<T>)> callback,
                 const std::shared_ptr<FutureState>& self) {
        std::uint32_t word = word_.load(std::memory_order_relaxed);
        while (true) {
            if ((word & phase_mask) == done) {
                call(callback, Future<T>(self));
                return;
            }
            if (word & adding_callback) {
                cpu_relax();
                word = word_.load(std::memory_order_relaxed);
            } else if (word_.compare_exchange_weak(word, word | adding_callback,
                                                   std::memory_order_acquire)) {
                break;
            }
        }
        // Not done, and it cannot become done before the flag is down again.
        try {
            if (!callbacks_) callbacks_ = std::make_unique<Callbacks>(Callbacks{self, {}});
            callbacks_->waiting.push_back(std::move(callback));
        } catch (...) {
            word_.fetch_and(~adding_callback, std::memory_order_release);
            throw;
        }
        word = word_.load(std::memory_order_relaxed);
        while (!word_.compare_exchange_weak(word, (word & ~adding_callback) | has_callbacks,
                                            std::memory_order_release)) {
        }
    }

  protected:
    // Before a waiting thread sleeps: a state that the waiter can help finish (a process pool's
    // task, whose reply it may collect itself, with no thread woken) does so for a while here.
    virtual void work_toward_done(detail::Deadline) const {}

  private:
    static constexpr std::uint32_t phase_mask = 3;
    static constexpr std::uint32_t pending = 0;
    static constexpr std::uint32_t running = 1;
    static constexpr std::uint32_t finishing = 2;  // one thread sets the outcome
    static constexpr std::uint32_t done = 3;
    static constexpr std::uint32_t sleepers = 4;
    static constexpr std::uint32_t adding_callback = 8;
    static constexpr std::uint32_t has_callbacks = 16;

    static void call(const std::function<void(Future<T>)>& callback, Future<T> future) noexcept {
        try {
            callback(std::move(future));
        } catch (...) {
            ignore_failed_callback(std::current_exception());
        }
    }

    // Sleeps on the word until it changes (done, say), at most until then; may return early.
    void sleep_while_not_done(detail::Deadline until) const {
        const std::uint32_t word = word_.fetch_or(sleepers, std::memory_order_seq_cst) | sleepers;
        if ((word & phase_mask) == done) return;
        if (!until) {
            futex_wait_private(word_, word);
            return;
        }
        const auto left = *until - std::chrono::steady_clock::now();
        if (left <= std::chrono::nanoseconds(0)) return;
        const timespec relative = to_timespec(left);
        futex_wait_private(word_, word, &relative);
    }

    // The first to finish sets the outcome; later ones do nothing.
    template <class Set>
    void finish(Set&& set) {
        std::uint32_t word = word_.load(std::memory_order_relaxed);
        do {
            if ((word & phase_mask) >= finishing) return;
        } while (!word_.compare_exchange_weak(word, (word & ~phase_mask) | finishing,
                                              std::memory_order_acquire));
        set();
        if (ready_) {
            try {
                ready_(value_ ? &*value_ : nullptr, error_);
            } catch (...) {
                ignore_failed_callback(std::current_exception());
            }
        }
        publish_done();
    }

    void publish_done() {
        std::uint32_t word = word_.load(std::memory_order_relaxed);
        while (true) {
            if (word & adding_callback) {
                cpu_relax();
                word = word_.load(std::memory_order_relaxed);
            } else if (word_.compare_exchange_weak(word, (word & ~phase_mask) | done,
                                                   std::memory_order_acq_rel)) {
                break;
            }
        }
        if (word & sleepers) futex_wake_private(word_, INT32_MAX);
        if (word & has_callbacks) {
            // Nobody adds callbacks once it is done: the list is this thread's. Whoever finishes
            // a state holds a handle to it, so letting go of callbacks->self does not destroy it.
            const std::unique_ptr<Callbacks> callbacks = std::move(callbacks_);
            for (auto& callback : callbacks->waiting) call(callback, Future<T>(callbacks->self));
        }
    }

    mutable std::atomic<std::uint32_t> word_{pending};
    bool cancelled_ = false;
    std::optional<Stored> value_;
    std::exception_ptr error_;
    // Allocated by the first callback: most futures have none, and a thread pool's trivial task
    // pays the first touch of its future's every byte.
    struct Callbacks {
        std::shared_ptr<FutureState> self;  // a cycle, broken when they run
        std::vector<std::function<void(Future<T>)>> waiting;
    };
    std::unique_ptr<Callbacks> callbacks_;
    ReadyCallback ready_;
};

}  // namespace detail

template <class T>
class Future {
  public:
    explicit Future(std::shared_ptr<detail::FutureState<T>> state) : state_(std::move(state)) {}

    T result() const {
        state_->wait(std::nullopt);
        return value();
    }
    template <class Rep, class Period>
    T result(std::chrono::duration<Rep, Period> timeout) const {
        if (!wait(timeout)) throw TimeoutError("crew: the future was not done within the timeout");
        return value();
    }
    // Waits; the task's exception, or null if it returned. Cancelled for a cancelled future.
    std::exception_ptr exception() const {
        state_->wait(std::nullopt);
        return state_->error();
    }
    template <class Rep, class Period>
    std::exception_ptr exception(std::chrono::duration<Rep, Period> timeout) const {
        if (!wait(timeout)) throw TimeoutError("crew: the future was not done within the timeout");
        return state_->error();
    }
    void wait() const { state_->wait(std::nullopt); }
    template <class Rep, class Period>
    bool wait(std::chrono::duration<Rep, Period> timeout) const {
        return state_->wait(detail::timeout_of(timeout));
    }
    bool done() const { return state_->status() == detail::FutureState<T>::Status::done; }
    bool running() const { return state_->status() == detail::FutureState<T>::Status::running; }
    bool cancelled() const { return state_->cancelled(); }
    // Cancels a future that has not started; returns whether it is cancelled.
    bool cancel() { return state_->cancel(); }
    void add_done_callback(std::function<void(Future<T>)> callback) {
        state_->on_done(std::move(callback), state_);
    }

    // Futures compare, order and hash by the task they stand for, so they may key a std::map or
    // std::unordered_map, as Python's {executor.submit(f, x): x for x in xs}.
    bool operator==(const Future& other) const { return state_ == other.state_; }
    auto operator<=>(const Future& other) const { return state_ <=> other.state_; }

  private:
    friend struct std::hash<Future>;
    T value() const { return state_->value(); }

    std::shared_ptr<detail::FutureState<T>> state_;
};

// Options of as_completed; every member has an initializer.
struct AsCompletedOptions {
    Timeout timeout = {};    // from the call
    bool progress = false;   // a progress bar on stderr, as map's (crew/pool.hpp)
    std::string label = {};  // the bar's name; empty: "as_completed"
};

// The futures as they complete: an input range whose iteration waits for the next one to be
// done. With a timeout (from the call), iterating past it throws crew::TimeoutError.
template <class T>
class AsCompleted {
  public:
    AsCompleted(std::vector<Future<T>> futures, AsCompletedOptions options)
        : shared_(std::make_shared<Shared>()), total_(futures.size()) {
        deadline_ = detail::deadline_for(options.timeout);
        if (options.progress) {
            progress_ = std::make_shared<detail::Progress>(
                options.label.empty() ? "as_completed" : options.label, total_);
        }
        for (Future<T>& future : futures) {
            future.add_done_callback([shared = shared_](Future<T> done) {
                {
                    std::lock_guard lock(shared->mutex);
                    shared->done.push_back(std::move(done));
                }
                shared->arrived.notify_all();
            });
        }
    }

    using iterator = detail::PullIterator<AsCompleted, const Future<T>&>;

    iterator begin() {
        advance();
        return iterator(this);
    }
    std::default_sentinel_t end() const { return {}; }

  private:
    friend iterator;
    const Future<T>& current() const { return *current_; }
    bool at_end() const { return !current_; }
    struct Shared {
        std::mutex mutex;
        std::condition_variable arrived;
        std::deque<Future<T>> done;
    };

    void advance() {
        if (current_ && progress_) progress_->advance(1);
        current_.reset();
        if (yielded_ == total_) return;
        std::unique_lock lock(shared_->mutex);
        auto any = [&] { return !shared_->done.empty(); };
        if (!detail::wait_interruptibly(shared_->arrived, lock, deadline_, any)) {
            throw TimeoutError("crew: as_completed: " + std::to_string(total_ - yielded_) +
                               " futures were not done within the timeout");
        }
        current_.emplace(std::move(shared_->done.front()));
        shared_->done.pop_front();
        ++yielded_;
    }

    std::shared_ptr<Shared> shared_;
    std::size_t total_;
    std::size_t yielded_ = 0;
    detail::Deadline deadline_;
    std::optional<Future<T>> current_;
    std::shared_ptr<detail::Progress> progress_;  // null without .progress
};

// as_completed(futures), as_completed(futures, 5s), as_completed(futures, {.progress = true})
template <class T>
AsCompleted<T> as_completed(const std::vector<Future<T>>& futures,
                            AsCompletedOptions options = {}) {
    return AsCompleted<T>(futures, options);
}

template <class T, class Rep, class Period>
AsCompleted<T> as_completed(const std::vector<Future<T>>& futures,
                            std::chrono::duration<Rep, Period> timeout) {
    return AsCompleted<T>(futures, {.timeout = detail::timeout_of(timeout)});
}

// Over the keys of a map of futures, as Python's as_completed over {submit(f, x): x for x in xs}.
template <class T, class Value, class Hash, class Equal, class Allocator>
AsCompleted<T> as_completed(
    const std::unordered_map<Future<T>, Value, Hash, Equal, Allocator>& futures,
    AsCompletedOptions options = {}) {
    std::vector<Future<T>> keys;
    keys.reserve(futures.size());
    for (const auto& entry : futures) keys.push_back(entry.first);
    return AsCompleted<T>(std::move(keys), options);
}

// When crew::wait returns, as concurrent.futures' FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED.
enum class ReturnWhen { first_completed, first_exception, all_completed };
inline constexpr ReturnWhen FIRST_COMPLETED = ReturnWhen::first_completed;
inline constexpr ReturnWhen FIRST_EXCEPTION = ReturnWhen::first_exception;
inline constexpr ReturnWhen ALL_COMPLETED = ReturnWhen::all_completed;

template <class T>
struct WaitResult {
    std::vector<Future<T>> done;
    std::vector<Future<T>> not_done;
};

namespace detail {
template <class T>
WaitResult<T> wait_for_futures(const std::vector<Future<T>>& futures, ReturnWhen when,
                               Timeout timeout) {
    struct Shared {
        std::mutex mutex;
        std::condition_variable changed;
        std::size_t done = 0;
        bool failed = false;
    };
    auto shared = std::make_shared<Shared>();
    for (Future<T> future : futures) {
        future.add_done_callback([shared](Future<T> done) {
            bool failed = !done.cancelled() && done.exception() != nullptr;
            {
                std::lock_guard lock(shared->mutex);
                ++shared->done;
                shared->failed |= failed;
            }
            shared->changed.notify_all();
        });
    }
    auto satisfied = [&] {
        switch (when) {
            case ReturnWhen::first_completed:
                return shared->done > 0 || futures.empty();
            case ReturnWhen::first_exception:
                return shared->failed || shared->done == futures.size();
            case ReturnWhen::all_completed:
                break;
        }
        return shared->done == futures.size();
    };
    {
        std::unique_lock lock(shared->mutex);
        const detail::Deadline deadline = detail::deadline_for(timeout);
        wait_interruptibly(shared->changed, lock, deadline, satisfied);
    }
    WaitResult<T> result;
    for (const Future<T>& future : futures) {
        (future.done() ? result.done : result.not_done).push_back(future);
    }
    return result;
}
}  // namespace detail

// Waits until when is met (default: all done), at most timeout; sorts the futures into done and
// not done.
template <class T>
WaitResult<T> wait(const std::vector<Future<T>>& futures, ReturnWhen when = ALL_COMPLETED) {
    return detail::wait_for_futures(futures, when, std::nullopt);
}

template <class T, class Rep, class Period>
WaitResult<T> wait(const std::vector<Future<T>>& futures, ReturnWhen when,
                   std::chrono::duration<Rep, Period> timeout) {
    return detail::wait_for_futures(futures, when, detail::timeout_of(timeout));
}

}  // namespace crew

template <class T>
struct std::hash<crew::Future<T>> {
    std::size_t operator()(const crew::Future<T>& future) const noexcept {
        return std::hash<std::shared_ptr<crew::detail::FutureState<T>>>()(future.state_);
    }
};
