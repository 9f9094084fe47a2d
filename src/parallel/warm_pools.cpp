#include "parallel/warm_pools.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "foundation/log.hpp"
#include "foundation/signal_free_thread.hpp"

namespace crew::detail {
namespace {

using Clock = std::chrono::steady_clock;

// Lets a pool's workers finish what they hold and end.
void end_pool(std::unique_ptr<Submitter> pool) noexcept {
    try {
        pool->transport().close();
        pool->transport().join();
    } catch (const std::exception& error) {
        log(LogLevel::warning, "crew::Parallel: cannot end kept workers: {}", error.what());
    }
}

class WarmPools {
  public:
    ~WarmPools() {
        // A child forked with kept pools holds copies whose brokers stayed in the parent: they
        // are not this process's to end.
        if (owner_ != ::getpid()) {
            for (Kept& kept : kept_) (void)kept.pool.release();
            return;
        }
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        changed_.notify_all();
        if (reaper_.joinable()) reaper_.join();
        for (Kept& kept : kept_) end_pool(std::move(kept.pool));
    }

    bool owned_here() const noexcept { return owner_ == ::getpid(); }

    std::unique_ptr<Submitter> take(const WarmPoolKey& key) {
        std::lock_guard lock(mutex_);
        const auto found = std::ranges::find(kept_, key, &Kept::key);
        if (found == kept_.end()) return nullptr;
        std::unique_ptr<Submitter> pool = std::move(found->pool);
        kept_.erase(found);
        return pool;
    }

    void keep(const WarmPoolKey& key, std::unique_ptr<Submitter> pool,
              std::chrono::nanoseconds idle_timeout) {
        std::unique_ptr<Submitter> replaced;
        {
            std::lock_guard lock(mutex_);
            if (!reaper_.joinable()) {
                reaper_ = start_signal_free_thread([this] { reap(); }, "crew::Parallel's reaper");
            }
            const auto found = std::ranges::find(kept_, key, &Kept::key);
            if (found != kept_.end()) {
                replaced = std::move(found->pool);
                kept_.erase(found);
            }
            kept_.push_back({key, std::move(pool), Clock::now() + idle_timeout});
        }
        changed_.notify_all();
        if (replaced) end_pool(std::move(replaced));
    }

    void end_all() {
        std::vector<Kept> ending;
        {
            std::lock_guard lock(mutex_);
            ending.swap(kept_);
        }
        for (Kept& kept : ending) end_pool(std::move(kept.pool));
    }

  private:
    struct Kept {
        WarmPoolKey key;
        std::unique_ptr<Submitter> pool;
        Clock::time_point leaves_at;
    };

    // Ends the pools idle past their time, sleeping until the next one's.
    void reap() {
        std::unique_lock lock(mutex_);
        while (!stopping_) {
            std::vector<std::unique_ptr<Submitter>> leaving;
            const auto now = Clock::now();
            for (auto kept = kept_.begin(); kept != kept_.end();) {
                if (kept->leaves_at <= now) {
                    leaving.push_back(std::move(kept->pool));
                    kept = kept_.erase(kept);
                } else {
                    ++kept;
                }
            }
            if (!leaving.empty()) {
                lock.unlock();
                for (auto& pool : leaving) end_pool(std::move(pool));
                lock.lock();
                continue;
            }
            if (kept_.empty()) {
                changed_.wait(lock);
            } else {
                // A copy: the pool whose time it is may be taken while this sleeps.
                const Clock::time_point next =
                    std::ranges::min_element(kept_, {}, &Kept::leaves_at)->leaves_at;
                changed_.wait_until(lock, next);
            }
        }
    }

    const pid_t owner_ = ::getpid();
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<Kept> kept_;
    bool stopping_ = false;
    std::thread reaper_;
};

// Made at the first pool kept, after everything that pool needed, so that it is destroyed before
// them at exit.
std::atomic<WarmPools*> made{nullptr};

WarmPools& warm_pools() {
    static WarmPools pools;
    made.store(&pools);
    return pools;
}

}  // namespace

std::unique_ptr<Submitter> take_warm_pool(const WarmPoolKey& key) {
    WarmPools* pools = made.load();
    if (pools == nullptr || !pools->owned_here()) return nullptr;
    return pools->take(key);
}

void keep_warm(const WarmPoolKey& key, std::unique_ptr<Submitter> pool,
               std::chrono::nanoseconds idle_timeout) noexcept {
    if (idle_timeout <= std::chrono::nanoseconds(0) || pool->transport().closed()) {
        end_pool(std::move(pool));
        return;
    }
    try {
        WarmPools& pools = warm_pools();
        if (!pools.owned_here()) {
            end_pool(std::move(pool));
            return;
        }
        pools.keep(key, std::move(pool), idle_timeout);
    } catch (const std::exception& error) {
        log(LogLevel::warning, "crew::Parallel: cannot keep workers warm: {}", error.what());
    }
}

void end_warm_pools() {
    WarmPools* pools = made.load();
    if (pools != nullptr && pools->owned_here()) pools->end_all();
}

}  // namespace crew::detail
