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
// for a cancelled one); result(timeout) throws crew::TimeoutError when time runs out. Callbacks
// added with add_done_callback run once it is done, in the thread that completes it (or at once,
// in the caller's, if it already is); they must not block.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <variant>
#include <vector>

#include "crew/detail/interrupt.hpp"
#include "crew/detail/pull_iterator.hpp"
#include "crew/error.hpp"

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

template <class T>
class FutureState : public Cancellable, public std::enable_shared_from_this<FutureState<T>> {
  public:
    using Stored = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
    enum class Status { pending, running, done };

    // pending -> running; false if it is done already, i.e. cancelled (then it must not run).
    // A task sent again after its worker died is running already, and may run.
    bool set_running() {
        std::lock_guard lock(mutex_);
        if (status_ == Status::done) return false;
        status_ = Status::running;
        return true;
    }
    void set_value(Stored value) {
        finish([&] { value_.emplace(std::move(value)); });
    }
    void set_error(std::exception_ptr error) {
        finish([&] { error_ = std::move(error); });
    }
    bool cancel() override {
        {
            std::lock_guard lock(mutex_);
            if (status_ == Status::done) return cancelled_;
            if (status_ == Status::running) return false;
        }
        finish([&] {
            cancelled_ = true;
            error_ = std::make_exception_ptr(Cancelled());
        });
        return true;
    }

    bool wait(std::optional<std::chrono::nanoseconds> timeout) const {
        if (is_done()) return true;
        std::optional<std::chrono::steady_clock::time_point> deadline;
        if (timeout) deadline = std::chrono::steady_clock::now() + *timeout;
        std::unique_lock lock(mutex_);
        return wait_interruptibly(changed_, lock, deadline,
                                  [&] { return status_ == Status::done; });
    }
    // Whether it is done, without taking the lock: for a thread that spins on it.
    bool is_done() const noexcept { return done_.load(std::memory_order_acquire); }
    Status status() const {
        std::lock_guard lock(mutex_);
        return status_;
    }
    bool cancelled() const {
        std::lock_guard lock(mutex_);
        return cancelled_;
    }
    std::exception_ptr error() const {
        std::lock_guard lock(mutex_);
        return error_;
    }
    // Once done: the value (nothing for void), or the exception it ended with.
    T value() const {
        std::lock_guard lock(mutex_);
        if (error_) std::rethrow_exception(error_);
        if constexpr (!std::is_void_v<T>) return *value_;
    }
    // Waits, then moves the value out: for a caller that is the state's only reader.
    T take_value() {
        wait(std::nullopt);
        std::lock_guard lock(mutex_);
        if (error_) std::rethrow_exception(error_);
        if constexpr (!std::is_void_v<T>) return std::move(*value_);
    }
    void on_done(std::function<void(Future<T>)> callback) {
        {
            std::lock_guard lock(mutex_);
            if (status_ != Status::done) {
                callbacks_.push_back(std::move(callback));
                return;
            }
        }
        callback(Future<T>(this->shared_from_this()));
    }

  private:
    template <class Set>
    void finish(Set&& set) {
        std::vector<std::function<void(Future<T>)>> callbacks;
        {
            std::lock_guard lock(mutex_);
            if (status_ == Status::done) return;
            set();
            status_ = Status::done;
            done_.store(true, std::memory_order_release);
            callbacks.swap(callbacks_);
        }
        changed_.notify_all();
        for (auto& callback : callbacks) callback(Future<T>(this->shared_from_this()));
    }

    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    std::atomic<bool> done_{false};  // status_ == done, readable without the lock
    Status status_ = Status::pending;
    bool cancelled_ = false;
    std::optional<Stored> value_;
    std::exception_ptr error_;
    std::vector<std::function<void(Future<T>)>> callbacks_;
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
        return state_->wait(std::chrono::duration_cast<std::chrono::nanoseconds>(timeout));
    }
    bool done() const { return state_->status() == detail::FutureState<T>::Status::done; }
    bool running() const { return state_->status() == detail::FutureState<T>::Status::running; }
    bool cancelled() const { return state_->cancelled(); }
    // Cancels a future that has not started; returns whether it is cancelled.
    bool cancel() { return state_->cancel(); }
    void add_done_callback(std::function<void(Future<T>)> callback) {
        state_->on_done(std::move(callback));
    }

    bool operator==(const Future& other) const { return state_ == other.state_; }

  private:
    T value() const { return state_->value(); }

    std::shared_ptr<detail::FutureState<T>> state_;
};

// The futures as they complete: an input range whose iteration waits for the next one to be
// done. With a timeout (from the call), iterating past it throws crew::TimeoutError.
template <class T>
class AsCompleted {
  public:
    AsCompleted(std::vector<Future<T>> futures, std::optional<std::chrono::nanoseconds> timeout)
        : shared_(std::make_shared<Shared>()), total_(futures.size()) {
        if (timeout) deadline_ = std::chrono::steady_clock::now() + *timeout;
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
    std::optional<std::chrono::steady_clock::time_point> deadline_;
    std::optional<Future<T>> current_;
};

template <class T>
AsCompleted<T> as_completed(const std::vector<Future<T>>& futures) {
    return AsCompleted<T>(futures, std::nullopt);
}

template <class T, class Rep, class Period>
AsCompleted<T> as_completed(const std::vector<Future<T>>& futures,
                            std::chrono::duration<Rep, Period> timeout) {
    return AsCompleted<T>(futures, std::chrono::duration_cast<std::chrono::nanoseconds>(timeout));
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
                               std::optional<std::chrono::nanoseconds> timeout) {
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
        std::optional<std::chrono::steady_clock::time_point> deadline;
        if (timeout) deadline = std::chrono::steady_clock::now() + *timeout;
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
    return detail::wait_for_futures(futures, when,
                                    std::chrono::duration_cast<std::chrono::nanoseconds>(timeout));
}

}  // namespace crew
