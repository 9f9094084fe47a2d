// crew/detail/imap_results.hpp: crew::ImapResults, what Pool::imap and imap_unordered return.
//
// An input range of the results, read once, that keeps a bounded window of chunks in flight and
// reads its input only as results are consumed (see crew/pool.hpp for the contract).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "crew/detail/chunking.hpp"
#include "crew/detail/progress.hpp"
#include "crew/detail/pull_iterator.hpp"
#include "crew/detail/result_sinks.hpp"
#include "crew/error.hpp"
#include "crew/timeout.hpp"

namespace crew {

// The lazy results of imap and imap_unordered: an input range, read once. A call that failed
// throws its error where its result is read (*it); ++it then moves on to the next result, so
// the other results can still be had, as with Python's next().
// [[nodiscard]]: the calls run only as the results are read, so results dropped unread are work
// never done.
template <class R>
class [[nodiscard]] ImapResults {
  public:
    // Submits the next chunk, within limits, its first call numbered first; returns how many
    // calls it holds, or nothing when the input is exhausted.
    using Feeder = std::function<std::optional<std::uint32_t>(std::uint64_t first,
                                                              detail::ChunkLimits limits)>;

    ImapResults(std::shared_ptr<detail::ImapSink<R>> sink, Feeder feeder, bool ordered,
                std::size_t chunksize, std::uint32_t most_calls_a_chunk, std::size_t window_chunks,
                detail::Deadline deadline, std::shared_ptr<detail::ProgressReport> progress)
        : sink_(std::move(sink)),
          feeder_(std::move(feeder)),
          ordered_(ordered),
          chunksize_(chunksize),
          most_calls_a_chunk_(most_calls_a_chunk),
          window_chunks_(window_chunks),
          deadline_(deadline),
          progress_(std::move(progress)) {}

    using iterator = detail::PullIterator<ImapResults, R&>;

    // Starts the iteration: the first result is waited for here.
    iterator begin() {
        advance();
        return iterator(this);
    }
    std::default_sentinel_t end() const { return {}; }

  private:
    friend iterator;
    R& current() {
        if (current_->error) std::rethrow_exception(current_->error);
        return *current_->value;
    }
    bool at_end() const { return !current_; }
    void fill_window() {
        while (!input_done_ && chunks_out_ < window_chunks_) {
            detail::ChunkLimits limits =
                detail::imap_chunk_limits<R>(chunksize_, sink_->cost_per_call(), last_chunk_);
            if (chunksize_ == 0) limits.calls = std::min(limits.calls, most_calls_a_chunk_);
            std::optional<std::uint32_t> count = feeder_(submitted_, limits);
            if (!count) {
                input_done_ = true;
                break;
            }
            last_chunk_ = *count;
            submitted_ += *count;
            ++chunks_out_;
            chunk_ends_.push_back(submitted_);
        }
    }

    void advance() {
        current_.reset();
        fill_window();
        if (yielded_ == submitted_) {  // the end
            if (progress_) progress_->finish();
            return;
        }
        auto arrived = sink_->take(ordered_ ? std::optional(yielded_) : std::nullopt, deadline_);
        ++yielded_;
        // A chunk counts as out until all its results have been taken.
        while (!chunk_ends_.empty() && chunk_ends_.front() <= yielded_) {
            chunk_ends_.erase(chunk_ends_.begin());
            --chunks_out_;
        }
        current_ = std::move(arrived);
        if (progress_) progress_->advance(1);
    }

    std::shared_ptr<detail::ImapSink<R>> sink_;
    Feeder feeder_;
    bool ordered_;
    std::size_t chunksize_;
    std::uint32_t most_calls_a_chunk_;  // automatic chunks
    std::size_t window_chunks_;
    detail::Deadline deadline_;  // for every result
    std::uint64_t submitted_ = 0;
    std::uint64_t yielded_ = 0;
    std::size_t chunks_out_ = 0;
    std::vector<std::uint64_t> chunk_ends_;
    std::uint32_t last_chunk_ = 0;
    bool input_done_ = false;
    std::optional<typename detail::ImapSink<R>::Arrived> current_;
    std::shared_ptr<detail::ProgressReport> progress_;  // null without .progress
};

}  // namespace crew
