// crew::detail::JobQueue: the ThreadPoolExecutor's queue, pushed to by any thread, taken from by
// one at a time.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <crew/detail/job_queue.hpp>
#include <memory>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;

// A job that says who pushed it and in what place, and counts its destruction.
class Numbered final : public crew::detail::ThreadJob {
  public:
    Numbered(int pusher, int number, std::atomic<int>* destroyed = nullptr)
        : pusher(pusher), number(number), destroyed_(destroyed) {}
    ~Numbered() override {
        if (destroyed_ != nullptr) ++*destroyed_;
    }
    void run() override {}
    void cancel_job() override {}
    void fail_job(std::exception_ptr) override {}
    const int pusher;
    const int number;

  private:
    std::atomic<int>* destroyed_;
};

int number_of(const std::shared_ptr<crew::detail::ThreadJob>& job) {
    return static_cast<const Numbered&>(*job).number;
}

TEST(JobQueue, GivesJobsInTheOrderPushedUpToTheNumberAsked) {
    crew::detail::JobQueue queue;
    EXPECT_TRUE(queue.looks_empty());
    for (int i = 0; i < 10; ++i) queue.push(std::make_shared<Numbered>(0, i));
    EXPECT_FALSE(queue.looks_empty());
    EXPECT_EQ(queue.size(), 10u);
    std::vector<std::shared_ptr<crew::detail::ThreadJob>> batch;
    batch.reserve(64);
    EXPECT_EQ(queue.take(batch, 3), 3u);
    EXPECT_EQ(queue.size(), 7u);
    EXPECT_EQ(queue.take(batch, 64), 7u);
    ASSERT_EQ(batch.size(), 10u);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(number_of(batch[i]), i);
    EXPECT_TRUE(queue.looks_empty());
    EXPECT_EQ(queue.take(batch, 64), 0u);
    // Emptied and filled again: the stub goes back in between.
    queue.push(std::make_shared<Numbered>(0, 10));
    EXPECT_EQ(queue.take(batch, 64), 1u);
    EXPECT_EQ(number_of(batch.back()), 10);
}

TEST(JobQueue, LetsGoOfTheJobsLeftWhenDestroyed) {
    std::atomic<int> destroyed{0};
    std::vector<std::shared_ptr<crew::detail::ThreadJob>> batch;
    batch.reserve(2);
    {
        crew::detail::JobQueue queue;
        for (int i = 0; i < 5; ++i) queue.push(std::make_shared<Numbered>(0, i, &destroyed));
        EXPECT_EQ(queue.take(batch, 2), 2u);
    }
    EXPECT_EQ(destroyed.load(), 3) << "the two taken are still held here";
    batch.clear();
    EXPECT_EQ(destroyed.load(), 5);
}

// Four pushers and two takers at once: every job comes out exactly once, each pusher's in its
// order, and the queue ends empty.
TEST(JobQueue, ManyPushersAndTakersLoseNothing) {
    constexpr int pushers = 4;
    constexpr int per_pusher = 100'000;
    crew::detail::JobQueue queue;
    std::atomic<int> taken{0};
    std::atomic<bool> out_of_order{false};
    std::vector<std::vector<int>> seen(2);
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    auto take_all = [&](std::vector<int>& last_of_pusher) {
        std::vector<std::shared_ptr<crew::detail::ThreadJob>> batch;
        batch.reserve(16);
        last_of_pusher.assign(pushers, -1);
        while (taken.load() < pushers * per_pusher && std::chrono::steady_clock::now() < give_up) {
            if (queue.take(batch, 16) == 0) {
                std::this_thread::yield();
                continue;
            }
            for (const auto& job : batch) {
                const auto& numbered = static_cast<const Numbered&>(*job);
                if (numbered.number <= last_of_pusher[numbered.pusher]) out_of_order = true;
                last_of_pusher[numbered.pusher] = numbered.number;
            }
            taken += static_cast<int>(batch.size());
            batch.clear();
        }
    };
    std::vector<std::thread> threads;
    for (auto& last : seen) threads.emplace_back(take_all, std::ref(last));
    for (int pusher = 0; pusher < pushers; ++pusher) {
        threads.emplace_back([&queue, pusher] {
            for (int i = 0; i < per_pusher; ++i) queue.push(std::make_shared<Numbered>(pusher, i));
        });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(taken.load(), pushers * per_pusher);
    EXPECT_FALSE(out_of_order.load());
    EXPECT_TRUE(queue.looks_empty());
    EXPECT_EQ(queue.size(), 0u);
    for (int pusher = 0; pusher < pushers; ++pusher) {
        EXPECT_EQ(std::max(seen[0][pusher], seen[1][pusher]), per_pusher - 1)
            << "pusher " << pusher << "'s last job";
    }
}

}  // namespace
