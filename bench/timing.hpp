// Latency samples and their median / 90th percentile, in microseconds.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

struct Summary {
    double median;
    double p90;
};

inline Summary summarize(std::vector<double> samples) {
    std::sort(samples.begin(), samples.end());
    return {samples[samples.size() / 2], samples[samples.size() * 9 / 10]};
}
