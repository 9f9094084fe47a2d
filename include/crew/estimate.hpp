// crew/estimate.hpp: crew::estimate, whether running a function over a range in parallel pays,
// measured on this machine before the work is done (seed 001's lesson as a tool).
//
//     double root(long x) { return std::sqrt(static_cast<double>(x)); }
//
//     crew::Estimate guess = crew::estimate(root, crew::range(100'000L), {.n_jobs = 2});
//     if (!guess.worth_it()) std::cerr << guess.reason() << '\n';
//     // "not worth it: each call takes 8 ns, the overhead per batch is 20 us; use a batch of at
//     //  least 250,000 or run serially"
//
// estimate(f, items, options) times calls of f on a growing prefix of items (until it has run
// for 20 ms, or the items run out) on the backend options name, in one batch, then the round trip
// of a batch of one trivial call, and from these the serial time of all the items, the time
// crew's automatic batching should take on options' workers, and a verdict: worth it when the
// parallel time is at most 90% of the serial. The sample's results are dropped: items is read
// again by the real run, so it must be a forward range, and f's side effects happen for the
// sample too. With verbose set in options, reason() is also written to stderr. The calls are
// checked at compile time as crew::Parallel's are. Parallel::estimate measures on a Parallel's
// own workers.
#pragma once

#include <ranges>
#include <utility>

#include "crew/parallel.hpp"

namespace crew {

template <class Function, std::ranges::forward_range Range>
auto estimate(Function&& function, Range&& items, const ParallelOptions& options = {}) {
    Parallel parallel(options);
    return parallel.estimate(std::forward<Function>(function), std::forward<Range>(items));
}

}  // namespace crew
