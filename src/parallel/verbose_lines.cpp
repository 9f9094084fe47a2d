#include "parallel/verbose_lines.hpp"

#include <fmt/format.h>
#include <cmath>

namespace crew::detail {
namespace {

// joblib's short_format_time.
std::string short_time(double seconds) {
    if (seconds > 60) return fmt::format("{:4.1f}min", seconds / 60);
    return fmt::format(" {:5.1f}s", seconds);
}

// joblib's _verbosity_filter: whether the line of batch index is left out, the lines growing
// apart as the square of the index.
bool filtered_out(std::uint64_t index, int verbose) {
    if (verbose > 10 || index == 0) return false;
    const double scale = 0.5 * (11 - verbose) * (11 - verbose);
    return std::floor(std::sqrt(static_cast<double>(index) / scale)) ==
           std::floor(std::sqrt(static_cast<double>(index + 1) / scale));
}

}  // namespace

VerboseLines::VerboseLines(const ParallelSettings& settings, std::optional<std::uint64_t> total)
    : prefix_(fmt::format("[Parallel(n_jobs={})]: ", settings.n_jobs)),
      verbose_(settings.verbose),
      total_(total),
      stream_(settings.verbose < 50 ? stderr : stdout),
      start_(std::chrono::steady_clock::now()) {
    print(fmt::format("Using backend {} with {} concurrent workers.", settings.backend.name(),
                      settings.n_jobs));
}

void VerboseLines::advance(std::uint64_t count) {
    std::lock_guard lock(mutex_);
    if (finished_) return;
    done_ += count;
    const std::uint64_t batch = batches_++;
    if (total_ && done_ >= *total_) {
        finished_ = true;
        print(fmt::format("Done {:3} out of {:3} | elapsed: {} finished", done_, done_,
                          short_time(elapsed())));
    } else if (!total_) {
        if (!filtered_out(batch, verbose_)) {
            print(fmt::format("Done {:3} tasks      | elapsed: {}", done_, short_time(elapsed())));
        }
    } else if (shown(done_)) {
        const double seconds = elapsed();
        const double remaining =
            seconds / static_cast<double>(done_) * static_cast<double>(*total_ - done_);
        print(fmt::format("Done {:3} out of {:3} | elapsed: {} remaining: {}", done_, *total_,
                          short_time(seconds), short_time(remaining)));
    }
}

void VerboseLines::finish() {
    std::lock_guard lock(mutex_);
    if (finished_) return;
    finished_ = true;
    print(fmt::format("Done {:3} out of {:3} | elapsed: {} finished", done_, done_,
                      short_time(elapsed())));
}

// joblib's rule once the total is known: about verbose lines over the run, the last one left to
// "finished".
bool VerboseLines::shown(std::uint64_t done) const {
    const std::uint64_t total = *total_;
    if (done + 1 == total) return false;
    const std::uint64_t frequency = total / static_cast<std::uint64_t>(verbose_) + 1;
    return (total - done + 1) % frequency == 0;
}

void VerboseLines::print(const std::string& message) {
    fmt::print(stream_, "{}{}\n", prefix_, message);
    std::fflush(stream_);
}

double VerboseLines::elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

}  // namespace crew::detail
