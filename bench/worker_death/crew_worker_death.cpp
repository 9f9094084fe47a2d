// How soon crew sees a busy pool worker killed from outside (issue 14): the time from SIGKILL to
// the call failing with crew::WorkerDied (retries 0), and to the call running again on another
// worker (retries 1); the time from Ctrl-C to crew::Interrupted in each kind of wait. Then the
// chaos figures: workers SIGKILLed at random while 100,000 calls run.
// Usage: crew_worker_death [KILLS]   (40 by default; prints the median and the maximum)
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <crew/crew.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// Says which worker runs it, then keeps that worker busy for a second.
int report_then_spin(crew::Queue<int> running) {
    running.put(getpid());
    const auto until = Clock::now() + std::chrono::seconds(1);
    while (Clock::now() < until) {
    }
    return 0;
}

double milliseconds_since(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

void report(const char* what, std::vector<double> samples) {
    std::sort(samples.begin(), samples.end());
    std::printf("%-44s p50 %6.2f ms   max %6.2f ms   (%zu kills)\n", what,
                samples[samples.size() / 2], samples.back(), samples.size());
}

void time_worker_death(int kills) {
    std::vector<double> to_error, to_rerun;
    crew::Queue<int> running;
    {
        crew::Pool pool({.processes = 2, .retries = 0});
        for (int i = 0; i < kills; ++i) {
            auto result = pool.apply_async(report_then_spin, running);
            const int worker = running.get(std::chrono::seconds(30));
            const auto killed = Clock::now();
            if (::kill(worker, SIGKILL) != 0) std::perror("kill");
            try {
                result.get(std::chrono::seconds(30));
                std::printf("the call survived its worker's SIGKILL\n");
            } catch (const crew::WorkerDied&) {
                to_error.push_back(milliseconds_since(killed));
            }
        }
    }
    {
        crew::Pool pool({.processes = 2, .retries = 1});
        for (int i = 0; i < kills; ++i) {
            auto result = pool.apply_async(report_then_spin, running);
            const int worker = running.get(std::chrono::seconds(30));
            const auto killed = Clock::now();
            if (::kill(worker, SIGKILL) != 0) std::perror("kill");
            (void)running.get(std::chrono::seconds(30));  // the same call, on another worker
            to_rerun.push_back(milliseconds_since(killed));
            result.get(std::chrono::seconds(30));
        }
    }
    report("SIGKILL of a busy worker -> WorkerDied", to_error);
    report("SIGKILL of a busy worker -> call runs again", to_rerun);
}

// The chaos figures: calls that keep their worker busy 20 us.
long busy_square(long x) {
    const auto until = Clock::now() + std::chrono::microseconds(20);
    while (Clock::now() < until) {
    }
    return x * x;
}

std::vector<pid_t> children_named(const char* prefix) {
    std::vector<pid_t> found;
    std::vector<pid_t> parents{getpid()};
    for (std::size_t depth = 0; depth < 2; ++depth) {
        std::vector<pid_t> next;
        for (pid_t parent : parents) {
            std::error_code ignored;
            const auto tasks = "/proc/" + std::to_string(parent) + "/task";
            for (const auto& task : std::filesystem::directory_iterator(tasks, ignored)) {
                std::ifstream children(task.path() / "children");
                for (pid_t child; children >> child;) next.push_back(child);
            }
        }
        for (pid_t child : next) {
            std::ifstream comm("/proc/" + std::to_string(child) + "/comm");
            std::string name;
            std::getline(comm, name);
            if (name.starts_with(prefix)) found.push_back(child);
        }
        parents = next;
    }
    return found;
}

// Kills a random pool worker every 50 ms while run() runs; returns how many it killed.
template <class Run>
int with_a_kill_every_50_ms(Run&& run) {
    std::atomic<bool> done{false};
    int kills = 0;
    std::thread killer([&] {
        std::mt19937 random(12345);
        while (!done.load()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            if (done.load()) break;
            const auto workers = children_named("crew-worker-");
            if (!workers.empty() && ::kill(workers[random() % workers.size()], SIGKILL) == 0) {
                ++kills;
            }
        }
    });
    run();
    done.store(true);
    killer.join();
    return kills;
}

constexpr long kCalls = 100'000;

enum class Interface { map, imap, imap_unordered, apply_async };
const char* name(Interface interface) {
    switch (interface) {
        case Interface::map:
            return "map";
        case Interface::imap:
            return "imap";
        case Interface::imap_unordered:
            return "imap_unordered";
        case Interface::apply_async:
            return "apply_async";
    }
    return "";
}

// Runs kCalls calls of busy_square under a kill every 50 ms; prints failed, duplicated and
// missing results.
void chaos(Interface interface, int processes, int retries) {
    crew::Pool pool({.processes = processes, .retries = retries});
    std::vector<int> seen(kCalls, 0);
    long failed = 0;
    auto take = [&](long square) {
        const long x = std::lround(std::sqrt(static_cast<double>(square)));
        if (x >= 0 && x < kCalls && x * x == square) ++seen[x];
    };
    auto take_each = [&](auto&& results) {
        for (auto it = results.begin(); it != results.end(); ++it) {
            try {
                take(*it);
            } catch (const crew::WorkerDied&) {
                ++failed;
            }
        }
    };
    const auto started = Clock::now();
    const int kills = with_a_kill_every_50_ms([&] {
        switch (interface) {
            case Interface::map:
                try {
                    for (long square : pool.map(busy_square, crew::range(kCalls))) take(square);
                } catch (const crew::WorkerDied&) {
                    failed = -1;  // map gives all or an error
                }
                break;
            case Interface::imap:
                take_each(pool.imap(busy_square, crew::range(kCalls)));
                break;
            case Interface::imap_unordered:
                take_each(pool.imap_unordered(busy_square, crew::range(kCalls)));
                break;
            case Interface::apply_async: {
                std::vector<crew::AsyncResult<long>> pending;
                for (long x = 0; x < kCalls; ++x)
                    pending.push_back(pool.apply_async(busy_square, x));
                for (auto& result : pending) {
                    try {
                        take(result.get());
                    } catch (const crew::WorkerDied&) {
                        ++failed;
                    }
                }
                break;
            }
        }
    });
    const double took = milliseconds_since(started) / 1000;
    long duplicated = 0, missing = 0;
    for (int count : seen) {
        duplicated += count > 1;
        missing += count == 0;
    }
    if (failed < 0) {
        std::printf("%-15s %d workers, retries %d: map failed with WorkerDied (%d kills, %.2f s)\n",
                    name(interface), processes, retries, kills, took);
        return;
    }
    std::printf(
        "%-15s %d workers, retries %d: %ld of %ld failed (%.3f%%), %ld duplicated, "
        "%ld missing besides the failed, %d kills, %.2f s\n",
        name(interface), processes, retries, failed, kCalls, 100.0 * failed / kCalls, duplicated,
        missing - failed, kills, took);
}

int worker_pid(int) {
    return getpid();
}

// A worker killed while idle, then a call at once: does the call fail?
void idle_kill() {
    crew::Pool pool(1);
    int failed = 0;
    for (int round = 0; round < 10; ++round) {
        const int idle = pool.apply(worker_pid, 0);
        ::kill(idle, SIGKILL);
        try {
            (void)pool.apply(worker_pid, 0);
        } catch (const crew::WorkerDied&) {
            ++failed;
        }
    }
    std::printf("Pool(1): idle worker SIGKILLed, apply at once: %d of 10 calls failed\n", failed);
}

// One SIGKILL of a busy worker among four, 2,000 results into a 100,000-call imap.
void one_kill_in_a_chunk() {
    crew::Pool pool(4);
    long failed = 0, got = 0;
    auto results = pool.imap(busy_square, crew::range(kCalls));
    for (auto it = results.begin(); it != results.end(); ++it) {
        try {
            (void)*it;
            if (++got == 2'000) {
                const auto workers = children_named("crew-worker-");
                if (!workers.empty()) ::kill(workers.front(), SIGKILL);
            }
        } catch (const crew::WorkerDied&) {
            ++failed;
        }
    }
    std::printf("imap, 4 workers, one SIGKILL: %ld of %ld calls failed\n", failed, kCalls);
}

int sleep_ms(int milliseconds) {
    std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds));
    return milliseconds;
}

// Ctrl-C (a SIGINT to this process) 100 ms into each kind of wait: the time until the wait
// throws crew::Interrupted. An interrupt stops every pool, so each round makes its own.
void time_interrupts(int rounds) {
    const char* waits[] = {"as_completed", "wait", "map", "imap", "Queue::get"};
    for (const char* wait : waits) {
        std::vector<double> samples;
        for (int round = 0; round < rounds; ++round) {
            crew::ProcessPoolExecutor executor({.max_workers = 2});
            crew::Pool pool(2);
            crew::Queue<int> queue;
            std::vector<crew::Future<int>> futures;
            const std::string which = wait;
            if (which == "as_completed" || which == "wait") {
                for (int i = 0; i < 20'000; ++i) futures.push_back(executor.submit(sleep_ms, 1));
            }
            std::atomic<Clock::rep> sent{0};
            std::thread interrupter([&] {
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
                sent.store(Clock::now().time_since_epoch().count());
                ::kill(getpid(), SIGINT);
            });
            try {
                if (which == "as_completed") {
                    for (auto& future : crew::as_completed(futures)) (void)future.result();
                } else if (which == "wait") {
                    crew::wait(futures);
                } else if (which == "map") {
                    (void)pool.map(sleep_ms, std::vector<int>(40, 1'000), 1);
                } else if (which == "imap") {
                    for (int result : pool.imap(sleep_ms, std::vector<int>(4'000, 5))) (void)result;
                } else {
                    (void)queue.get();
                }
                std::printf("%s: the SIGINT landed outside the wait\n", wait);
            } catch (const crew::Interrupted&) {
                const auto at = Clock::time_point(Clock::duration(sent.load()));
                samples.push_back(milliseconds_since(at));
            }
            interrupter.join();
        }
        if (samples.empty()) continue;
        std::sort(samples.begin(), samples.end());
        std::printf("Ctrl-C in %-12s -> Interrupted        p50 %6.2f ms   max %6.2f ms   (%zu)\n",
                    wait, samples[samples.size() / 2], samples.back(), samples.size());
    }
}

}  // namespace

// A SIGINT that lands while no thread waits in crew (between two results of a loop) goes to the
// program's own handler: this one keeps the program running, and that round runs to its end.
void ignore_interrupt(int) {}

int main(int argc, char** argv) {
    crew::init(argc, argv);
    std::signal(SIGINT, ignore_interrupt);
    const int kills = argc > 1 ? std::atoi(argv[1]) : 40;
    if (kills < 1) {
        std::fprintf(stderr, "usage: crew_worker_death [KILLS >= 1]\n");
        return 2;
    }
    time_worker_death(kills);
    time_interrupts(10);
    idle_kill();
    one_kill_in_a_chunk();
    chaos(Interface::imap_unordered, 4, 0);
    chaos(Interface::imap_unordered, 4, 2);
    chaos(Interface::imap, 4, 2);
    for (Interface interface :
         {Interface::imap_unordered, Interface::map, Interface::apply_async}) {
        chaos(interface, 4, 3);
    }
}
