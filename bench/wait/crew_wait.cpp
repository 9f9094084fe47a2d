// What crew::wait adds to a round trip (issue 15): the parent puts an int on one queue, a child
// process puts it back plus one on another, 5,000 times; the parent takes each reply with get(),
// or with crew::wait({replies, child}) then get_nowait(). The same over a Pipe, with recv() or
// with crew::wait({connection, child}) then recv(). A second queue round has the child sleep
// 200 µs before each reply, so that the wait sleeps: what matters there is the time past 200 µs.
// Usage: crew_wait [REPEATS]   (prints the median of the repeats' p50 and p99, in µs)
#include <chrono>
#include <crew/crew.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "../timing.hpp"

namespace {

constexpr int kRoundTrips = 5'000;
// Long enough that a waiting parent has stopped spinning and sleeps.
constexpr int slow_reply_us = 200;

void echo_queue(crew::Queue<int> requests, crew::Queue<int> replies, int delay_us) {
    while (true) {
        const int ball = requests.get();
        if (ball < 0) return;
        if (delay_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
        replies.put(ball + 1);
    }
}

void echo_connection(crew::Connection<int> connection) {
    try {
        while (true) connection.send(connection.recv() + 1);
    } catch (const crew::EOFError&) {
    }
}

struct Percentiles {
    std::vector<double> p50s, p99s;
    void add(std::vector<double> trips) {
        std::sort(trips.begin(), trips.end());
        p50s.push_back(trips[trips.size() / 2]);
        p99s.push_back(trips[trips.size() * 99 / 100]);
    }
    void print(const char* what) const {
        std::printf("crew %-40s p50 %6.1f us  p99 %6.1f us\n", what, summarize(p50s).median,
                    summarize(p99s).median);
    }
};

template <class Trip>
std::vector<double> time_trips(Trip&& trip) {
    std::vector<double> trips;
    trips.reserve(kRoundTrips);
    for (int i = 0; i < kRoundTrips; ++i) trips.push_back(seconds([&] { trip(i); }) * 1e6);
    return trips;
}

bool queue_round(bool with_wait, int delay_us, Percentiles& result) {
    crew::Queue<int> requests, replies;
    crew::Process child(echo_queue, requests, replies, delay_us);
    child.start();
    bool right = true;
    result.add(time_trips([&](int i) {
        requests.put(i);
        int reply = -1;
        if (!with_wait) {
            reply = replies.get();
        } else {
            while (reply < 0) {
                for (crew::Waitable& ready : crew::wait({replies, child})) {
                    if (!(ready == replies)) std::exit(2);  // the child ended
                    reply = replies.get_nowait();
                }
            }
        }
        right = right && reply == i + 1;
    }));
    requests.put(-1);
    child.join();
    return right;
}

bool connection_round(bool with_wait, Percentiles& result) {
    auto [parent, child_end] = crew::Pipe<int>();
    crew::Process child(echo_connection, std::move(child_end));
    child.start();
    bool right = true;
    result.add(time_trips([&](int i) {
        parent.send(i);
        if (with_wait) {
            const auto ready = crew::wait({parent, child});
            if (!(ready[0] == parent)) std::exit(2);
        }
        right = right && parent.recv() == i + 1;
    }));
    parent.close();
    child.join();
    return right;
}

}  // namespace

int main(int argc, char** argv) {
    crew::init(argc, argv);
    const int repeats = argc > 1 ? std::atoi(argv[1]) : 5;
    Percentiles queue_get, queue_wait, slow_get, slow_wait, connection_recv, connection_wait;
    bool right = true;
    for (int r = 0; r < repeats; ++r) {
        right = queue_round(false, 0, queue_get) && right;
        right = queue_round(true, 0, queue_wait) && right;
        right = queue_round(false, slow_reply_us, slow_get) && right;
        right = queue_round(true, slow_reply_us, slow_wait) && right;
        right = connection_round(false, connection_recv) && right;
        right = connection_round(true, connection_wait) && right;
    }
    queue_get.print("Queue round trip, get()");
    queue_wait.print("Queue round trip, wait() + get_nowait()");
    slow_get.print("Queue, reply after 200 us, get()");
    slow_wait.print("Queue, reply after 200 us, wait()");
    connection_recv.print("Pipe round trip, recv()");
    connection_wait.print("Pipe round trip, wait() + recv()");
    return right ? 0 : 1;
}
