// parallel/verbose_lines.hpp: joblib's verbose lines for crew::Parallel, in joblib's format.
//
//     [Parallel(n_jobs=2)]: Using backend processes with 2 concurrent workers.
//     [Parallel(n_jobs=2)]: Done   1 tasks      | elapsed:    0.0s        (total not known)
//     [Parallel(n_jobs=2)]: Done   4 out of  10 | elapsed:    0.8s remaining:    1.2s
//     [Parallel(n_jobs=2)]: Done  10 out of  10 | elapsed:    1.4s finished
//
// As joblib's, the higher verbose the more lines (above 10, one for every batch done), on stderr
// below 50 and on stdout from 50.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>

#include "crew/detail/progress.hpp"
#include "crew/parallel.hpp"

namespace crew::detail {

class VerboseLines final : public ProgressReport {
  public:
    VerboseLines(const ParallelSettings& settings, std::optional<std::uint64_t> total);
    void advance(std::uint64_t count) override;
    void finish() override;

  private:
    bool shown(std::uint64_t done) const;
    void print(const std::string& message);
    double elapsed() const;

    const std::string prefix_;
    const int verbose_;
    const std::optional<std::uint64_t> total_;
    std::FILE* const stream_;
    const std::chrono::steady_clock::time_point start_;
    std::mutex mutex_;
    std::uint64_t done_ = 0;
    std::uint64_t batches_ = 0;
    bool finished_ = false;
};

}  // namespace crew::detail
