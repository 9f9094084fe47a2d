// crew/map_reduce.hpp: crew::map_reduce, a reduction of a function's results over a range on
// many workers, in memory bounded by the workers, never by the input.
//
//     long square(long x) { return x * x; }
//     long plus(long a, long b) { return a + b; }
//
//     long sum = crew::map_reduce(square, plus, crew::range(100'000'000L), 0L, {.n_jobs = -1});
//
// map_reduce(f, reduce, items, init, options) is reduce(init, reduce(reduce(f(x0), f(x1)), ...)),
// init for no items. reduce must be associative and commutative (as std::reduce's): on the
// processes backend each worker reduces a chunk of calls as it makes them and sends home one
// value, which is reduced into the total as it arrives, in whatever order chunks end. The input
// is read only as the workers take it: at most options.pre_dispatch chunks are out at a time. The
// threads and serial backends reduce the results in the calling thread as they come.
//
// options are crew::Parallel's (crew/parallel.hpp), with its defaults: n_jobs 1 runs serially,
// -1 on every core. What f and reduce are and take must cross to a worker as for Parallel and
// Pool::map (compile-time errors say what does not). The first failure stops the dispatch, and
// map_reduce throws it, its type kept where crew can rebuild it, its what() opened by
// "crew::map_reduce input N"; a worker's death fails with crew::WorkerDied.
//
// Parallel::map_reduce does the same on a Parallel's workers, kept from call to call.
#pragma once

#include <ranges>
#include <utility>

#include "crew/parallel.hpp"

namespace crew {

template <class Function, class Reduce, std::ranges::input_range Range, class T>
auto map_reduce(Function&& function, Reduce&& reduce, Range&& items, T init,
                const ParallelOptions& options = {}) {
    Parallel parallel(options);
    return parallel.map_reduce(std::forward<Function>(function), std::forward<Reduce>(reduce),
                               std::forward<Range>(items), std::move(init));
}

}  // namespace crew
