// crew/detail/spin.hpp: waiting a little before sleeping.
//
// Every waiter in crew (ring readers and writers, the broker, a caller waiting for a future)
// first spins for about 50 µs, then sleeps. Waking a sleeping thread costs 10-20 µs on a virtual
// machine, more than a whole round trip to a worker when everyone is awake; 50 µs of spinning is
// short enough not to keep a busy small machine from its work for long. Where a pool's workers
// leave no core to spare, its broker spins less and its callers yield (see pool_core.hpp).
#pragma once

namespace crew::detail {

// Pauses in a spin loop: about 20 ns on AMD EPYC, 40 ns on recent Intel cores.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

inline constexpr int spins_before_sleeping = 2500;
// A worker process waiting for its next task spins less: two workers spinning on a two-core
// machine would keep the caller and the broker from feeding them.
inline constexpr int worker_spins_before_sleeping = 500;

}  // namespace crew::detail
