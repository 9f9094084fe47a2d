#include "crew/parallel.hpp"

#include <fmt/format.h>

#include "crew/detail/worker_protocol.hpp"
#include "crew/init.hpp"
#include "parallel/verbose_lines.hpp"

namespace crew {

namespace {

// The defaults parallel_config set for this thread's Parallels.
thread_local ParallelOptions configured;

template <class T>
T given_or(const T& given, const T& otherwise) {
    return given ? given : otherwise;
}

ParallelOptions over(const ParallelOptions& given, const ParallelOptions& defaults) {
    return {.n_jobs = given_or(given.n_jobs, defaults.n_jobs),
            .backend = given_or(given.backend, defaults.backend),
            .batch_size = given_or(given.batch_size, defaults.batch_size),
            .max_batch_size = given_or(given.max_batch_size, defaults.max_batch_size),
            .pre_dispatch = given_or(given.pre_dispatch, defaults.pre_dispatch),
            .timeout = given_or(given.timeout, defaults.timeout),
            .verbose = given_or(given.verbose, defaults.verbose),
            .progress = given_or(given.progress, defaults.progress)};
}

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

std::size_t at_least_one(std::optional<std::size_t> given, const char* name,
                         std::size_t otherwise) {
    if (!given) return otherwise;
    if (*given == 0) {
        throw Error(fmt::format(
            "crew::Parallel: {} cannot be 0; give at least 1, or leave it out for the default",
            name));
    }
    return *given;
}

}  // namespace

ParallelConfig::ParallelConfig(const ParallelOptions& options) : outer_(configured) {
    configured = over(options, outer_);
}

ParallelConfig::~ParallelConfig() {
    configured = outer_;
}

namespace detail {

void throw_another_function() {
    throw Error(
        "crew::Parallel: the delayed calls of one call must call one function; make a Parallel "
        "call for each function");
}

void throw_call_past_timeout(std::uint64_t index, std::chrono::nanoseconds timeout,
                             const char* what_happens) {
    throw TimeoutError(fmt::format(
        "crew::Parallel input {}: the call ran longer than the timeout of {} ms; {}", index,
        std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count(), what_happens));
}

ParallelSettings resolve_parallel_options(const ParallelOptions& given) {
    const ParallelOptions options = over(given, configured);
    ParallelSettings settings;
    settings.n_jobs = resolve_n_jobs(options.n_jobs);
    settings.backend = options.backend.value_or(ParallelBackend::processes);
    // One job runs where it is asked for; so does a nested Parallel of processes in a worker.
    if (settings.n_jobs == 1 ||
        (settings.backend == ParallelBackend::processes && in_pool_worker())) {
        settings.backend = ParallelBackend::serial;
    }
    settings.batch_size = at_least_one(options.batch_size, "batch_size", 0);
    settings.max_batch_size = static_cast<std::uint32_t>(std::min<std::size_t>(
        at_least_one(options.max_batch_size, "max_batch_size", largest_chunk), largest_chunk));
    settings.pre_dispatch = at_least_one(options.pre_dispatch, "pre_dispatch",
                                         2 * static_cast<std::size_t>(settings.n_jobs));
    if (options.timeout && options.timeout->count() <= 0) {
        throw Error(fmt::format(
            "crew::Parallel: timeout must be positive (it is {} ns); leave it out for none",
            options.timeout->count()));
    }
    settings.timeout = options.timeout;
    settings.verbose = options.verbose.value_or(0);
    if (settings.verbose < 0) {
        throw Error(
            fmt::format("crew::Parallel: verbose cannot be negative (it is {})", settings.verbose));
    }
    settings.progress = options.progress.value_or(false);
    return settings;
}

std::shared_ptr<ProgressReport> parallel_report(const ParallelSettings& settings,
                                                std::optional<std::uint64_t> total) {
    if (settings.verbose > 0) return std::make_shared<VerboseLines>(settings, total);
    if (settings.progress) return std::make_shared<Progress>("Parallel", total);
    return nullptr;
}

}  // namespace detail

Parallel::Parallel(const ParallelOptions& options)
    : settings_(detail::resolve_parallel_options(options)) {}

Parallel::~Parallel() {
    if (processes_) {
        processes_->core().close();
        processes_->core().join();
    }
}

detail::Submitter& Parallel::processes() {
    if (!processes_) {
        processes_ = std::make_unique<detail::Submitter>(detail::make_pool_core(
            PoolOptions{.processes = settings_.n_jobs,
                        .task_timeout = settings_.timeout.value_or(std::chrono::nanoseconds(0))}));
    }
    return *processes_;
}

ThreadPoolExecutor& Parallel::threads() {
    if (!threads_) {
        threads_ = std::make_unique<ThreadPoolExecutor>(ThreadPoolExecutorOptions{
            .max_workers = settings_.n_jobs, .thread_name_prefix = "Parallel"});
    }
    return *threads_;
}

}  // namespace crew
