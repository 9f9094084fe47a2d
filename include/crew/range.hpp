// crew/range.hpp: crew::range, Python's range() for the seeds' pool.map(f, range(10)).
//
//     std::vector<int> squares = pool.map(square, crew::range(10));   // 0, 1, 4, ..., 81
//     for (long i : crew::range(10L, 20L)) ...                        // 10 .. 19
//
// A lazy std::views::iota over [0, stop) or [start, stop): nothing is stored. An empty range when
// stop <= start, as in Python.
#pragma once

#include <algorithm>
#include <concepts>
#include <ranges>

namespace crew {

template <std::integral Integer>
auto range(Integer stop) {
    return std::views::iota(Integer{0}, std::max(Integer{0}, stop));
}

template <std::integral Integer>
auto range(Integer start, Integer stop) {
    return std::views::iota(start, std::max(start, stop));
}

}  // namespace crew
