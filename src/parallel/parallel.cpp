#include "crew/parallel.hpp"

#include <fmt/format.h>

#include "crew/init.hpp"

namespace crew {

namespace detail {

int resolve_n_jobs(std::optional<int> n_jobs) {
    if (!n_jobs) return 1;
    if (*n_jobs == 0) {
        throw Error(
            "crew::Parallel: n_jobs == 0 means no worker at all; give a number of workers, -1 "
            "for every core or 1 to run in the calling thread");
    }
    if (*n_jobs > 0) return *n_jobs;
    return std::max(cpu_count() + 1 + *n_jobs, 1);
}

}  // namespace detail

Parallel::Parallel(ParallelOptions options)
    : options_(options), n_jobs_(detail::resolve_n_jobs(options.n_jobs)) {
    if (options_.timeout && options_.timeout->count() < 0) {
        throw Error(fmt::format("crew::Parallel: timeout cannot be negative (it is {} ns)",
                                options_.timeout->count()));
    }
}

Parallel::~Parallel() {
    if (processes_) {
        processes_->core().close();
        processes_->core().join();
    }
}

detail::Submitter& Parallel::processes() {
    if (!processes_) {
        processes_ = std::make_unique<detail::Submitter>(
            detail::make_pool_core(PoolOptions{.processes = n_jobs_}));
    }
    return *processes_;
}

ThreadPoolExecutor& Parallel::threads() {
    if (!threads_) {
        threads_ = std::make_unique<ThreadPoolExecutor>(
            ThreadPoolExecutorOptions{.max_workers = n_jobs_, .thread_name_prefix = "Parallel"});
    }
    return *threads_;
}

}  // namespace crew
