// crew/detail/result_sinks.hpp: where a pool's results go as its workers' replies arrive.
//
// Each submitted task names a TaskSink (task_transport.hpp), which the transport calls, on its
// thread or a waiting caller's, as the task completes or fails. One sink a call (apply_async,
// submit), one a map (results straight to their place in the vector map returns), one an imap
// (results wait by input position until the consumer takes them). A sink must not block.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "crew/detail/interrupt.hpp"
#include "crew/detail/progress.hpp"
#include "crew/detail/task.hpp"
#include "crew/detail/task_transport.hpp"
#include "crew/error.hpp"
#include "crew/future.hpp"
#include "crew/remote_exception.hpp"

namespace crew::detail {

// apply_async and submit: one call, one result. The future's state is the task's sink itself:
// one allocation a task, and the thread that finishes it frees nothing (the caller's futures
// hold the state).
template <class R>
class SingleSink final : public FutureState<R>, public TaskSink {
  public:
    explicit SingleSink(std::weak_ptr<TaskTransport> transport)
        : transport_(std::move(transport)) {}
    void completed(std::uint64_t, const TaskResults& results, std::chrono::nanoseconds) override {
        decode_results<R>(
            results,
            [&](std::uint32_t, auto&&... value) {
                if constexpr (std::is_void_v<R>) {
                    this->set_value({});
                } else {
                    this->set_value(std::forward<decltype(value)>(value)...);
                }
            },
            [&](std::uint32_t, std::exception_ptr error) { this->set_error(std::move(error)); });
    }
    void failed(std::uint64_t, std::uint32_t, std::exception_ptr error) override {
        this->set_error(std::move(error));
    }
    bool starting() override { return this->set_running(); }

  private:
    // A waiter collects the reply itself, as Pool::apply does: no broker wake-up, no futex
    // wake-up. The pool may be gone (its tasks are then all done or failed).
    void work_toward_done(detail::Deadline deadline) const override {
        if (const std::shared_ptr<TaskTransport> transport = transport_.lock()) {
            TaskTransport::Driver driver(*transport);
            driver.drive_until([&] { return this->is_done(); }, deadline);
        }
    }

    std::weak_ptr<TaskTransport> transport_;
};

// For a map that sends its chunks as results come (Submitter::map_adaptively, map_reduce): the
// chunks sent and not yet answered, what a call cost as last seen, and a sleep until there is
// room for another chunk.
class ChunkWindow {
  public:
    void chunk_sent() { out_.fetch_add(1); }
    void chunk_answered() {
        out_.fetch_sub(1);
        if (waiting_.load()) {
            std::lock_guard lock(mutex_);
            changed_.notify_all();
        }
    }
    void note_cost(std::chrono::nanoseconds busy, std::uint64_t calls) {
        if (calls != 0) {
            cost_ns_.store(
                std::max<std::int64_t>(busy.count() / static_cast<std::int64_t>(calls), 1),
                std::memory_order_relaxed);
        }
    }
    std::int64_t out() const { return out_.load(); }
    std::optional<std::chrono::nanoseconds> cost_per_call() const {
        const std::int64_t cost = cost_ns_.load(std::memory_order_relaxed);
        if (cost == 0) return std::nullopt;
        return std::chrono::nanoseconds(cost);
    }
    // Sleeps until fewer than most chunks are out (0: never), or done().
    template <class Done>
    void wait_for_room(std::int64_t most, Done&& done) {
        std::unique_lock lock(mutex_);
        waiting_.store(true);
        wait_interruptibly(changed_, lock, {}, [&] { return out_.load() < most || done(); });
        waiting_.store(false);
    }

  private:
    std::atomic<std::int64_t> out_{0};
    std::atomic<std::int64_t> cost_ns_{0};
    std::mutex mutex_;
    std::condition_variable changed_;
    std::atomic<bool> waiting_{false};
};

// map_async: results in input order once all are in; the error of the first failed input wins.
// Results go straight to their place in the vector map returns (packed ones in one copy); its
// memory is first touched when the first arrive, while the caller is still sending input.
// Given a stop_label, the first failure to arrive fails the map at once instead, its error opened
// by input_context, and the chunks not yet begun are dropped (joblib's rule).
template <class R>
class MapSink final : public TaskSink {
  public:
    MapSink(std::shared_ptr<FutureState<std::vector<R>>> state, std::size_t count,
            std::shared_ptr<ProgressReport> progress, const char* stop_label = nullptr)
        : state_(std::move(state)),
          count_(count),
          remaining_(count),
          progress_(std::move(progress)),
          stop_label_(stop_label) {
        // Allocated by the caller's thread, as its own loop would (from its malloc arena, often
        // warm); filled in by the broker.
        results_.reserve(count);
        prefer_huge_pages(results_.data(), count * sizeof(results_[0]));
        if (count == 0) state_->set_value({});
    }
    // Sizes the result vector (its first touch): on the caller's thread once every chunk is
    // submitted, while the workers wake up, or at the first result, whichever comes first.
    void size_results() {
        std::call_once(sized_, [&] { results_.resize(count_); });
    }
    void completed(std::uint64_t first, const TaskResults& results,
                   std::chrono::nanoseconds busy) override {
        size_results();
        window_.note_cost(busy, results.size());
        if constexpr (direct && packable_result<R>) {
            if (results.packed_as(sizeof(R))) {
                std::memcpy(static_cast<void*>(results_.data() + first),
                            results.packed_values().data(), results.packed_values().size());
                arrived(results.size());
                return;
            }
        }
        decode_results<R>(
            results,
            [&](std::uint32_t i, R&& value) {
                if constexpr (direct) {
                    results_[first + i] = std::move(value);
                } else {
                    results_[first + i].emplace(std::move(value));
                }
            },
            [&](std::uint32_t i, std::exception_ptr error) {
                note_error(first + i, std::move(error));
            });
        arrived(results.size());
    }
    void failed(std::uint64_t first, std::uint32_t count, std::exception_ptr error) override {
        note_error(first, std::move(error));
        arrived(count);
    }
    bool starting() override { return !stopped_.load(std::memory_order_relaxed); }
    bool stops_at_first_failure() const override { return stop_label_ != nullptr; }

    // The chunks out and what a call costs, for a map that sends its chunks as results come.
    ChunkWindow& window() noexcept { return window_; }

  private:
    // Default-constructible results are stored in place; others wait in optionals.
    static constexpr bool direct =
        std::is_default_constructible_v<R> && std::is_move_assignable_v<R>;

    void note_error(std::uint64_t index, std::exception_ptr error) {
        if (stop_label_ != nullptr) {
            if (!stopped_.exchange(true)) {
                state_->set_error(with_context(error, input_context(stop_label_, index)));
            }
        } else if (index < error_index_) {
            error_index_ = index;
            error_ = std::move(error);
        }
    }
    void arrived(std::size_t count) {
        remaining_ -= count;
        if (progress_) progress_->advance(count);
        finish_if_done();
        window_.chunk_answered();
    }
    void finish_if_done() {
        if (remaining_ != 0 || stopped_) return;
        if (error_) {
            state_->set_error(error_);
            return;
        }
        if constexpr (direct) {
            state_->set_value(std::move(results_));
        } else {
            std::vector<R> results;
            results.reserve(results_.size());
            for (auto& result : results_) results.push_back(std::move(*result));
            state_->set_value(std::move(results));
        }
    }

    std::shared_ptr<FutureState<std::vector<R>>> state_;
    std::size_t count_;
    std::once_flag sized_;
    std::conditional_t<direct, std::vector<R>, std::vector<std::optional<R>>> results_;
    std::size_t remaining_;
    std::uint64_t error_index_ = ~std::uint64_t{0};
    std::exception_ptr error_;
    std::shared_ptr<ProgressReport> progress_;  // null without .progress
    const char* stop_label_;
    std::atomic<bool> stopped_{false};  // the map failed at once: what has not begun is dropped
    ChunkWindow window_;
};

// crew::map_reduce: each task's one result, its chunk's calls reduced in the worker, reduced
// into the total as it arrives. The first failure fails the whole at once, its input named (by
// the worker, or here for a worker's death), and what has not begun is dropped.
template <class R, class Reduce>
class ReduceSink final : public TaskSink {
  public:
    ReduceSink(std::shared_ptr<FutureState<std::optional<R>>> state, Reduce reduce,
               std::shared_ptr<ProgressReport> progress)
        : state_(std::move(state)), reduce_(std::move(reduce)), progress_(std::move(progress)) {}

    void completed(std::uint64_t first, const TaskResults& results,
                   std::chrono::nanoseconds busy) override {
        window_.note_cost(busy, calls_of(first));
        decode_results<R>(
            results,
            [&](std::uint32_t, R&& value) {
                std::lock_guard lock(mutex_);
                try {
                    total_ = total_ ? R(std::invoke(reduce_, std::move(*total_), std::move(value)))
                                    : std::move(value);
                } catch (...) {
                    fail_locked(std::current_exception());
                }
            },
            [&](std::uint32_t, std::exception_ptr error) {
                std::lock_guard lock(mutex_);
                fail_locked(std::move(error));
            });
        answered(first);
    }
    void failed(std::uint64_t first, std::uint32_t, std::exception_ptr error) override {
        {
            std::lock_guard lock(mutex_);
            fail_locked(with_context(error, input_context("map_reduce", first)));
        }
        answered(first);
    }
    bool starting() override { return !stopped_.load(std::memory_order_relaxed); }
    bool stops_at_first_failure() const override { return true; }

    // Before the chunk of calls calls, its first input numbered first, is submitted.
    void chunk_sent(std::uint64_t first, std::uint32_t calls) {
        {
            std::lock_guard lock(mutex_);
            calls_[first] = calls;
        }
        window_.chunk_sent();
    }
    // Every chunk is sent: the total is the state's once they are answered.
    void all_sent() {
        std::lock_guard lock(mutex_);
        all_sent_ = true;
        finish_locked();
    }
    ChunkWindow& window() noexcept { return window_; }

  private:
    std::uint32_t calls_of(std::uint64_t first) {
        std::lock_guard lock(mutex_);
        return calls_[first];
    }
    void answered(std::uint64_t first) {
        std::uint32_t calls = 0;
        {
            std::lock_guard lock(mutex_);
            calls = calls_[first];
            calls_.erase(first);
            finish_locked();
        }
        if (progress_) progress_->advance(calls);
        window_.chunk_answered();
    }
    void fail_locked(std::exception_ptr error) {
        if (stopped_.exchange(true)) return;
        state_->set_error(std::move(error));
    }
    void finish_locked() {
        if (!all_sent_ || !calls_.empty() || stopped_) return;
        stopped_ = true;
        state_->set_value(std::move(total_));
    }

    std::shared_ptr<FutureState<std::optional<R>>> state_;
    Reduce reduce_;
    std::shared_ptr<ProgressReport> progress_;
    std::mutex mutex_;
    std::map<std::uint64_t, std::uint32_t> calls_;  // of each chunk out, by its first input
    std::optional<R> total_;
    bool all_sent_ = false;
    std::atomic<bool> stopped_{false};  // failed or done: what has not begun is dropped
    ChunkWindow window_;
};

// imap: results wait here, by input position, until the consumer takes them.
template <class R>
class ImapSink final : public TaskSink {
  public:
    struct Arrived {
        std::optional<R> value;
        std::exception_ptr error;
    };

    void completed(std::uint64_t first, const TaskResults& results,
                   std::chrono::nanoseconds busy) override {
        {
            std::lock_guard lock(mutex_);
            decode_results<R>(
                results,
                [&](std::uint32_t i, R&& value) {
                    arrived_[first + i].value.emplace(std::move(value));
                },
                [&](std::uint32_t i, std::exception_ptr error) {
                    note_failure(first + i, error);
                    arrived_[first + i].error = std::move(error);
                });
            if (results.size() != 0) {
                cost_per_call_ = std::max(busy / results.size(), std::chrono::nanoseconds(1));
            }
        }
        changed_.notify_all();
    }
    void failed(std::uint64_t first, std::uint32_t count, std::exception_ptr error) override {
        {
            std::lock_guard lock(mutex_);
            note_failure(first, error);
            for (std::uint32_t i = 0; i < count; ++i) arrived_[first + i].error = error;
        }
        changed_.notify_all();
    }
    bool starting() override { return !stopped_.load(std::memory_order_relaxed); }
    bool stops_at_first_failure() const override { return stop_label_ != nullptr; }

    // From now on the first failure to arrive is what every take() returns, its error opened by
    // input_context, and the chunks not yet begun are dropped (crew::Parallel's generators).
    void stop_at_first_failure(const char* label) { stop_label_ = label; }

    // Takes the result at index (ordered) or any (unordered), waiting for it until deadline.
    Arrived take(std::optional<std::uint64_t> index, detail::Deadline deadline) {
        std::unique_lock lock(mutex_);
        typename std::map<std::uint64_t, Arrived>::iterator found;
        auto there = [&] {
            if (failure_) return true;
            found = index ? arrived_.find(*index) : arrived_.begin();
            return found != arrived_.end();
        };
        if (!wait_interruptibly(changed_, lock, deadline, there)) {
            throw TimeoutError("crew: map: a result was not ready within the timeout");
        }
        if (failure_) return {{}, failure_};
        Arrived result = std::move(found->second);
        arrived_.erase(found);
        return result;
    }

    // How long one call kept a worker busy, as last seen; nothing before the first result.
    std::optional<std::chrono::nanoseconds> cost_per_call() {
        std::lock_guard lock(mutex_);
        return cost_per_call_;
    }

  private:
    void note_failure(std::uint64_t index, const std::exception_ptr& error) {
        if (stop_label_ == nullptr || failure_) return;
        failure_ = with_context(error, input_context(stop_label_, index));
        stopped_.store(true, std::memory_order_relaxed);
    }

    std::mutex mutex_;
    std::condition_variable changed_;
    std::map<std::uint64_t, Arrived> arrived_;
    const char* stop_label_ = nullptr;
    std::exception_ptr failure_;  // under stop_at_first_failure
    std::atomic<bool> stopped_{false};

    std::optional<std::chrono::nanoseconds> cost_per_call_;
};

}  // namespace crew::detail
