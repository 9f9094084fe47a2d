#include "crew/parallel.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <string>
#include <vector>

#include "crew/detail/worker_protocol.hpp"
#include "crew/init.hpp"
#include "parallel/registered_backends.hpp"
#include "parallel/verbose_lines.hpp"
#include "parallel/warm_pools.hpp"

namespace crew {

namespace {

// The defaults parallel_config set for this thread's Parallels.
thread_local ParallelOptions configured;

template <class T>
T given_or(const T& given, const T& otherwise) {
    return given ? given : otherwise;
}

ParallelOptions over(const ParallelOptions& given, const ParallelOptions& defaults) {
    return {
        .n_jobs = given_or(given.n_jobs, defaults.n_jobs),
        .backend = given_or(given.backend, defaults.backend),
        .batch_size = given_or(given.batch_size, defaults.batch_size),
        .max_batch_size = given_or(given.max_batch_size, defaults.max_batch_size),
        .pre_dispatch = given_or(given.pre_dispatch, defaults.pre_dispatch),
        .timeout = given_or(given.timeout, defaults.timeout),
        .verbose = given_or(given.verbose, defaults.verbose),
        .progress = given_or(given.progress, defaults.progress),
        .max_nbytes = given_or(given.max_nbytes, defaults.max_nbytes),
        .idle_worker_timeout = given_or(given.idle_worker_timeout, defaults.idle_worker_timeout)};
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

ParallelBackend::ParallelBackend(std::string name) : name_(std::move(name)) {
    if (name_.empty()) {
        throw Error(
            "crew::ParallelBackend: the name is empty; give processes, threads, serial (or "
            "joblib's loky, threading, sequential) or a registered backend's name");
    }
    if (name_ == "loky") name_ = "processes";
    if (name_ == "threading") name_ = "threads";
    if (name_ == "sequential") name_ = "serial";
}

bool ParallelBackend::built_in() const noexcept {
    return name_ == "processes" || name_ == "threads" || name_ == "serial";
}

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
    // One job runs where it is asked for; so does a nested Parallel of processes (or of a
    // registered backend) in a worker. A registered backend's -2 may be many jobs.
    const bool one_job =
        settings.backend.built_in() ? settings.n_jobs == 1 : options.n_jobs.value_or(1) == 1;
    if (one_job || (settings.backend != ParallelBackend::threads && in_pool_worker())) {
        settings.backend = ParallelBackend::serial;
    }
    if (!settings.backend.built_in()) {
        if (options.timeout) {
            throw Error(fmt::format(
                "crew::Parallel: the backend '{}' enforces its own limits, not timeout; leave "
                "timeout out, or use the processes backend",
                settings.backend.name()));
        }
        // The backend learns n_jobs as asked (-1: all it has), and says how many it runs.
        settings.registered = make_backend_transport(settings.backend.name(), *options.n_jobs);
        settings.n_jobs = settings.registered->processes();
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
    settings.max_nbytes = options.max_nbytes.value_or(default_max_nbytes);
    if (options.idle_worker_timeout) {
        if (options.idle_worker_timeout->count() < 0) {
            throw Error(fmt::format(
                "crew::Parallel: idle_worker_timeout cannot be negative (it is {} ns); give 0 to "
                "end the workers with their Parallel",
                options.idle_worker_timeout->count()));
        }
        settings.idle_worker_timeout = *options.idle_worker_timeout;
    }
    return settings;
}

std::shared_ptr<ProgressReport> parallel_report(const ParallelSettings& settings,
                                                std::optional<std::uint64_t> total) {
    if (settings.verbose > 0) return std::make_shared<VerboseLines>(settings, total);
    if (settings.progress) return std::make_shared<Progress>("Parallel", total);
    return nullptr;
}

namespace {

// 40 ns, 2 us, 5.1 ms, 1.23 s.
std::string duration_text(std::chrono::nanoseconds duration) {
    const auto ns = static_cast<double>(duration.count());
    if (ns < 1e3) return fmt::format("{:.3g} ns", ns);
    if (ns < 1e6) return fmt::format("{:.3g} us", ns / 1e3);
    if (ns < 1e9) return fmt::format("{:.3g} ms", ns / 1e6);
    return fmt::format("{:.3g} s", ns / 1e9);
}

// 5,000.
std::string count_text(std::uint64_t count) {
    const std::string digits = std::to_string(count);
    std::string text;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i != 0 && (digits.size() - i) % 3 == 0) text += ',';
        text += digits[i];
    }
    return text;
}

}  // namespace

Estimate make_estimate(std::uint64_t items, std::uint64_t sample,
                       std::chrono::nanoseconds sample_time,
                       std::optional<std::chrono::nanoseconds> busy_per_call,
                       std::chrono::nanoseconds overhead_per_batch,
                       const ParallelSettings& settings) {
    Estimate estimate;
    estimate.items = items;
    estimate.sample = sample;
    estimate.workers = settings.n_jobs;
    estimate.backend = settings.backend;
    estimate.overhead_per_batch = overhead_per_batch;
    if (sample != 0) {
        // The sample's time beyond its round trip is the calls' and their results' way home;
        // a worker's busy time, where known, is the calls' own.
        const auto work = std::max(sample_time - overhead_per_batch, std::chrono::nanoseconds(1));
        const auto through =
            std::max(work / static_cast<std::int64_t>(sample), std::chrono::nanoseconds(1));
        estimate.per_call =
            std::clamp(busy_per_call.value_or(through), std::chrono::nanoseconds(1), through);
        estimate.overhead_per_call = through - estimate.per_call;
    }
    const auto calls = static_cast<std::int64_t>(items);
    estimate.serial = estimate.per_call * calls;
    if (settings.backend == ParallelBackend::serial || items == 0) {
        estimate.parallel = estimate.serial;
    } else {
        // As the automatic batches go (chunking.hpp); the threads backend sends one call a task.
        std::int64_t batch = 1;
        if (settings.backend != ParallelBackend::threads) {
            const std::int64_t guided = (calls + 2 * settings.n_jobs - 1) / (2 * settings.n_jobs);
            batch = std::clamp<std::int64_t>(longest_parallel_chunk / estimate.per_call, 1,
                                             std::min<std::int64_t>(largest_chunk, guided));
        }
        const std::int64_t batches = (calls + batch - 1) / batch;
        // The calls and round trips are shared among the workers; the results come home one
        // after another.
        estimate.parallel = (estimate.serial + overhead_per_batch * batches) / settings.n_jobs +
                            overhead_per_batch + estimate.overhead_per_call * calls;
    }
    if (settings.verbose > 0) fmt::print(stderr, "[estimate]: {}\n", estimate.reason());
    return estimate;
}

}  // namespace detail

bool Estimate::worth_it() const noexcept {
    return backend != ParallelBackend::serial && items != 0 && parallel * 10 <= serial * 9;
}

std::string Estimate::reason() const {
    if (backend == ParallelBackend::serial) {
        return "not worth it: with one job (or the serial backend) the calls run one after "
               "another in the calling thread; give n_jobs = -1 for every core";
    }
    if (items == 0) return "not worth it: there is nothing to call";
    std::string costs = fmt::format(
        "each call takes {}, the overhead per {} is {}", detail::duration_text(per_call),
        backend == ParallelBackend::threads ? "call on a thread" : "batch",
        detail::duration_text(overhead_per_batch));
    if (overhead_per_call.count() != 0) {
        costs += fmt::format(" and {} a result", detail::duration_text(overhead_per_call));
    }
    if (worth_it()) {
        return fmt::format(
            "worth it: {}; {} calls should take {} on {} workers against {} "
            "serially ({:.2f}x)",
            costs, detail::count_text(items), detail::duration_text(parallel), workers,
            detail::duration_text(serial),
            static_cast<double>(serial.count()) /
                static_cast<double>(std::max<std::int64_t>(parallel.count(), 1)));
    }
    if (backend == ParallelBackend::threads) {
        return fmt::format(
            "not worth it: {}; use the processes backend, which batches calls, or "
            "run serially",
            costs);
    }
    if (overhead_per_call >= per_call) {
        return fmt::format(
            "not worth it: each call takes {}, and bringing its result home {}; "
            "run serially, or give each call more work",
            detail::duration_text(per_call), detail::duration_text(overhead_per_call));
    }
    // A batch worth sending spends at most 1% of its time on the round trip.
    const auto least_batch = static_cast<std::uint64_t>(
        (100 * overhead_per_batch.count() + per_call.count() - 1) / per_call.count());
    return fmt::format("not worth it: {}; use a batch of at least {} or run serially", costs,
                       detail::count_text(least_batch));
}

Parallel::Parallel(const ParallelOptions& options)
    : settings_(detail::resolve_parallel_options(options)) {}

namespace {

detail::WarmPoolKey warm_pool_key(const detail::ParallelSettings& settings) {
    return {settings.n_jobs, settings.timeout.value_or(std::chrono::nanoseconds(0))};
}

}  // namespace

Parallel::~Parallel() {
    // A registered backend's batches still out answer to their transport, which they keep.
    if (submitter_ && !settings_.registered) {
        detail::keep_warm(warm_pool_key(settings_), std::move(submitter_),
                          settings_.idle_worker_timeout);
    }
}

void Parallel::end_idle_workers() {
    detail::end_warm_pools();
}

detail::Submitter& Parallel::submitter() {
    if (submitter_) return *submitter_;
    if (settings_.registered) {
        submitter_ = std::make_unique<detail::Submitter>(settings_.registered);
        return *submitter_;
    }
    const detail::WarmPoolKey key = warm_pool_key(settings_);
    submitter_ = detail::take_warm_pool(key);
    if (!submitter_) {
        submitter_ = std::make_unique<detail::Submitter>(detail::make_pool_core(
            PoolOptions{.processes = key.processes, .task_timeout = key.task_timeout}));
    }
    return *submitter_;
}

std::chrono::nanoseconds Parallel::batch_round_trip() {
    if (settings_.backend == ParallelBackend::serial) return std::chrono::nanoseconds(0);
    auto once = [&] {
        if (settings_.backend == ParallelBackend::threads) {
            (void)threads().submit(detail::estimate_probe, 0).result();
        } else {
            detail::Submitter& pool = submitter();
            (void)pool.wait_for(
                [&] {
                    return pool.submit_call(detail::nothing_to_prepare, detail::estimate_probe, 0);
                },
                {});
        }
    };
    constexpr int warm_up = 3;
    constexpr int timed = 21;
    for (int i = 0; i < warm_up; ++i) once();
    std::vector<std::chrono::nanoseconds> times;
    for (int i = 0; i < timed; ++i) {
        const auto started = std::chrono::steady_clock::now();
        once();
        times.push_back(std::chrono::steady_clock::now() - started);
    }
    std::nth_element(times.begin(), times.begin() + timed / 2, times.end());
    return times[timed / 2];
}

ThreadPoolExecutor& Parallel::threads() {
    if (!threads_) {
        threads_ = std::make_unique<ThreadPoolExecutor>(ThreadPoolExecutorOptions{
            .max_workers = settings_.n_jobs, .thread_name_prefix = "Parallel"});
    }
    return *threads_;
}

}  // namespace crew
