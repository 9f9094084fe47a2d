#include "crew/wait.hpp"

#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "crew/detail/interrupt.hpp"
#include "crew/detail/spin.hpp"
#include "foundation/signal_free_thread.hpp"

namespace crew::detail {

namespace {

// poll(2) that an interrupting signal merely cuts short: the caller looks again.
int poll_descriptors(std::vector<pollfd>& watched, int milliseconds) {
    const int ready = ::poll(watched.data(), watched.size(), milliseconds);
    if (ready < 0 && errno != EINTR) throw_system_error("crew::wait: cannot poll");
    return std::max(ready, 0);
}

}  // namespace

// The sleeping half of a wait, made only once a wait must sleep. Connections and descriptors are
// polled. A queue has no descriptor, so a thread for each sleeps on its count of messages put,
// writes to an eventfd polled beside them when a message waits, and ends: the wait it wakes then
// joins a thread that has finished instead of waking one to stop it (about 100 us here).
class Sleeper {
  public:
    explicit Sleeper(std::span<const Waitable> objects);
    ~Sleeper();
    Sleeper(const Sleeper&) = delete;
    Sleeper& operator=(const Sleeper&) = delete;

    // Sleeps until something may be ready, or until; may return early.
    void sleep(const Deadline& until);

  private:
    struct Watcher {
        QueueCore* queue;
        std::atomic<bool> ended{false};
        std::thread thread;
    };
    // Starts a thread for each queue that has none running: the first time, and after one
    // woke a sleep whose message another consumer took.
    void start_watchers();
    void watch(Watcher& watcher);

    std::span<const Waitable> objects_;
    UniqueFd signal_;
    std::atomic<bool> stopping_{false};
    std::vector<std::unique_ptr<Watcher>> watchers_;
};

Sleeper::Sleeper(std::span<const Waitable> objects) : objects_(objects) {
    for (const Waitable& object : objects) {
        if (object.kind_ != Waitable::Kind::queue) continue;
        watchers_.push_back(std::make_unique<Watcher>());
        watchers_.back()->queue = object.queue_;
    }
    if (watchers_.empty()) return;
    signal_ = make_eventfd("crew::wait's eventfd");
}

void Sleeper::start_watchers() {
    for (auto& watcher : watchers_) {
        if (watcher->thread.joinable()) {
            if (!watcher->ended.load()) continue;
            watcher->thread.join();
        }
        watcher->ended.store(false);
        watcher->thread = start_signal_free_thread([this, &watcher = *watcher] { watch(watcher); },
                                                   "crew::wait's thread to watch a queue");
    }
}

void Sleeper::watch(Watcher& watcher) {
    while (!stopping_.load()) {
        // The count is read before the look, so a message put after the look changes it.
        const std::uint32_t count = watcher.queue->watch_puts();
        if (watcher.queue->qsize() != 0) {
            const std::uint64_t one = 1;
            // A full counter already says "look": nothing to do if the write fails.
            (void)!::write(signal_.get(), &one, sizeof one);
            break;
        }
        watcher.queue->sleep_while_puts_are(count);
    }
    watcher.ended.store(true);
}

Sleeper::~Sleeper() {
    stopping_.store(true);
    for (auto& watcher : watchers_) {
        if (!watcher->thread.joinable()) continue;
        // A wake-up may come just before the watcher sleeps; it then sleeps at most
        // lost_wake_up_interval, unless woken again.
        while (!watcher->ended.load()) {
            watcher->queue->wake_watchers();
            std::this_thread::sleep_for(std::chrono::microseconds(20));
        }
        watcher->thread.join();
    }
}

void Sleeper::sleep(const Deadline& until) {
    start_watchers();
    std::vector<pollfd> watched;
    std::vector<std::pair<PipeChannel*, std::size_t>> sleeping;  // a channel and its two entries
    bool nothing_came = true;
    for (const Waitable& object : objects_) {
        if (object.kind_ == Waitable::Kind::descriptor) {
            watched.push_back({object.descriptor_, POLLIN, 0});
        } else if (object.kind_ == Waitable::Kind::connection) {
            pollfd pair[2];
            if (!object.channel_->begin_sleep(pair)) {
                nothing_came = false;
                break;
            }
            sleeping.emplace_back(object.channel_, watched.size());
            watched.insert(watched.end(), pair, pair + 2);
        }
    }
    const std::size_t signal_at = watched.size();
    if (signal_) watched.push_back({signal_.get(), POLLIN, 0});
    auto end_sleeps = [&] {
        for (auto& [channel, at] : sleeping) {
            channel->end_sleep(std::span<const pollfd, 2>(watched.data() + at, 2));
        }
    };
    try {
        if (nothing_came) poll_descriptors(watched, milliseconds_until(until));
    } catch (...) {
        end_sleeps();
        throw;
    }
    end_sleeps();
    if (signal_ && watched[signal_at].revents != 0) {
        std::uint64_t count;
        (void)!::read(signal_.get(), &count, sizeof count);
    }
}

}  // namespace crew::detail

namespace crew {

namespace {
constexpr auto spin_time = std::chrono::microseconds(50);
}

std::vector<Waitable> wait(std::span<const Waitable> objects, const Timeout& timeout) {
    if (objects.empty() && !timeout) {
        throw Error(
            "crew::wait: nothing to wait for, and no timeout: pass the connections, "
            "queues, processes or descriptors to wait for");
    }
    std::vector<Waitable> ready;
    std::vector<pollfd> descriptors;
    auto look = [&] {
        ready.clear();
        descriptors.clear();
        for (const Waitable& object : objects) {
            if (object.kind_ == Waitable::Kind::descriptor) {
                descriptors.push_back({object.descriptor_, POLLIN, 0});
            }
        }
        detail::poll_descriptors(descriptors, 0);
        auto descriptor = descriptors.begin();
        for (const Waitable& object : objects) {
            bool is_ready = false;
            switch (object.kind_) {
                case Waitable::Kind::connection:
                    is_ready = object.channel_->poll(std::chrono::nanoseconds(0));
                    break;
                case Waitable::Kind::queue:
                    is_ready = object.queue_->qsize() != 0;
                    break;
                case Waitable::Kind::descriptor:
                    if (descriptor->revents & POLLNVAL) {
                        throw Error(fmt::format(
                            "crew::wait: descriptor {} is not open; pass an open descriptor, or "
                            "the Process itself rather than a sentinel() it closed",
                            object.descriptor_));
                    }
                    is_ready = (descriptor++)->revents != 0;
                    break;
            }
            if (is_ready) ready.push_back(object);
        }
        return !ready.empty();
    };
    const detail::Deadline deadline = detail::deadline_for(timeout);
    // As a connection's recv() does, look without sleeping for a while first: an answer that
    // comes within it costs no thread and no wake-up (a queue round trip: 25 -> 4 us p50).
    const auto stop_spinning = std::min(detail::Clock::now() + spin_time,
                                        deadline.value_or(detail::Clock::time_point::max()));
    while (detail::Clock::now() < stop_spinning) {
        if (look()) return ready;
        for (int pause = 0; pause < 16; ++pause) detail::cpu_relax();
    }
    std::optional<detail::Sleeper> sleeper;
    detail::wait_interruptibly(
        look,
        [&](const detail::Deadline& until) {
            if (!sleeper) sleeper.emplace(objects);
            sleeper->sleep(until);
        },
        deadline);
    return ready;
}

}  // namespace crew
