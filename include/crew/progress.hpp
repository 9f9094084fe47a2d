// crew/progress.hpp: crew::progress, tqdm for any loop.
//
//     for (const std::string& file : crew::progress(files)) convert(file);
//     for (int step : crew::progress(crew::range(1000), "training")) train(step);
//
// Wraps a range and draws the bar that map's .progress = true draws (crew/pool.hpp) on stderr,
// counting an item each time the loop moves past it: on a terminal, one redrawn line (percentage,
// bar, count, elapsed and remaining time, rate); elsewhere a plain line every few seconds. The
// total is the range's size when it has one; without one the bar counts and gives the rate. The
// clock starts at begin(). The last state is drawn when the loop ends, or when the range wrapped
// goes away after a break. One loop a progress range; the range must outlive the loop, as any.
#pragma once

#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <utility>

#include "crew/detail/progress.hpp"

namespace crew {

template <std::ranges::input_range View>
requires std::ranges::view<View>
class ProgressView : public std::ranges::view_interface<ProgressView<View>> {
  public:
    ProgressView(View view, std::string label) : view_(std::move(view)), label_(std::move(label)) {}

    class Sentinel;
    class Iterator {
      public:
        using value_type = std::ranges::range_value_t<View>;
        using difference_type = std::ranges::range_difference_t<View>;

        Iterator() = default;
        Iterator(std::ranges::iterator_t<View> at, detail::Progress* progress)
            : at_(std::move(at)), progress_(progress) {}
        decltype(auto) operator*() const { return *at_; }
        Iterator& operator++() {
            ++at_;
            progress_->advance(1);
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const Iterator& iterator, const Sentinel& sentinel) {
            return sentinel.reached_by(iterator.at_);
        }

      private:
        std::ranges::iterator_t<View> at_;
        detail::Progress* progress_ = nullptr;
    };
    class Sentinel {
      public:
        Sentinel() = default;
        explicit Sentinel(std::ranges::sentinel_t<View> end) : end_(std::move(end)) {}
        bool reached_by(const std::ranges::iterator_t<View>& at) const { return at == end_; }

      private:
        std::ranges::sentinel_t<View> end_;
    };

    Iterator begin() {
        std::optional<std::uint64_t> total;
        if constexpr (std::ranges::sized_range<View>) total = std::ranges::size(view_);
        progress_ = std::make_unique<detail::Progress>(label_, total);
        return Iterator(std::ranges::begin(view_), progress_.get());
    }
    Sentinel end() { return Sentinel(std::ranges::end(view_)); }

  private:
    View view_;
    std::string label_;
    std::unique_ptr<detail::Progress> progress_;
};

template <std::ranges::viewable_range Range>
requires std::ranges::input_range<Range>
auto progress(Range&& range, std::string label = "progress") {
    return ProgressView<std::views::all_t<Range>>(std::views::all(std::forward<Range>(range)),
                                                  std::move(label));
}

}  // namespace crew
