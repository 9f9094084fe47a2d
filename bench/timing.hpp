// What crew's benchmark programs share: timing a run, and the median / 90th percentile of samples.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <vector>

// How long run() takes, in seconds.
template <class Run>
double seconds(Run&& run) {
    auto start = std::chrono::steady_clock::now();
    run();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

struct Summary {
    double median;
    double p90;
};

inline Summary summarize(std::vector<double> samples) {
    std::sort(samples.begin(), samples.end());
    return {samples[samples.size() / 2], samples[samples.size() * 9 / 10]};
}
