// parallel/warm_pools.hpp: the workers of Parallels that have ended, kept warm for the next
// Parallel of the same size (loky's reusable executor), until they have been idle too long.
#pragma once

#include <chrono>
#include <compare>
#include <memory>

#include "crew/detail/submitter.hpp"

namespace crew::detail {

// Which kept pool may serve a Parallel: one of as many workers, with the same per-call timeout.
struct WarmPoolKey {
    int processes = 1;
    std::chrono::nanoseconds task_timeout{0};
    auto operator<=>(const WarmPoolKey&) const = default;
};

// A pool an ended Parallel left for this key, if one waits; else null.
std::unique_ptr<Submitter> take_warm_pool(const WarmPoolKey& key);

// Keeps an ended Parallel's pool for the next Parallel of the same key. Its workers end once it
// has waited idle_timeout for one, at once for a timeout of zero or a pool that takes no more
// tasks, and at the program's exit. One pool is kept a key: a second one ends the first.
void keep_warm(const WarmPoolKey& key, std::unique_ptr<Submitter> pool,
               std::chrono::nanoseconds idle_timeout) noexcept;

// Ends every kept pool now, waiting for its workers to finish.
void end_warm_pools();

}  // namespace crew::detail
