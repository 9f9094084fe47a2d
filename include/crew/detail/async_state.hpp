// crew/detail/async_state.hpp: the state an AsyncResult (or Future) waits on: a value or an
// exception, set once by the pool's broker thread, read by any number of waiting threads.
#pragma once

#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <type_traits>
#include <variant>

namespace crew::detail {

template <class T>
class AsyncState {
  public:
    using Stored = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

    void set_value(Stored value) {
        {
            std::lock_guard lock(mutex_);
            if (ready_) return;
            value_.emplace(std::move(value));
            ready_ = true;
        }
        done_.notify_all();
    }

    void set_error(std::exception_ptr error) {
        {
            std::lock_guard lock(mutex_);
            if (ready_) return;
            error_ = std::move(error);
            ready_ = true;
        }
        done_.notify_all();
    }

    // Waits until set, at most timeout (forever if empty); returns whether it is set.
    bool wait(std::optional<std::chrono::nanoseconds> timeout) const {
        std::unique_lock lock(mutex_);
        if (!timeout) {
            done_.wait(lock, [&] { return ready_; });
            return true;
        }
        return done_.wait_for(lock, *timeout, [&] { return ready_; });
    }

    bool ready() const {
        std::lock_guard lock(mutex_);
        return ready_;
    }

    // After wait() returned true: the exception, if it failed.
    std::exception_ptr error() const {
        std::lock_guard lock(mutex_);
        return error_;
    }

    // After wait() returned true: a copy of the value, or the exception thrown.
    Stored value() const {
        std::lock_guard lock(mutex_);
        if (error_) std::rethrow_exception(error_);
        return *value_;
    }

    // After wait() returned true, for the one caller that owns the result: the value itself.
    Stored take() {
        std::lock_guard lock(mutex_);
        if (error_) std::rethrow_exception(error_);
        return std::move(*value_);
    }

  private:
    mutable std::mutex mutex_;
    mutable std::condition_variable done_;
    bool ready_ = false;
    std::optional<Stored> value_;
    std::exception_ptr error_;
};

}  // namespace crew::detail
