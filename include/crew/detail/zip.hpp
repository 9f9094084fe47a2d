// crew/detail/zip.hpp: Python's zip() for the executors' map(f, xs, ys): the items of several
// ranges side by side, as tuples, up to the end of the shortest. C++20 has no std::views::zip
// (C++23 does). Each tuple holds copies of the items, as the call made from it will.
#pragma once

#include <cstddef>
#include <iterator>
#include <ranges>
#include <tuple>
#include <utility>

namespace crew::detail {

template <std::ranges::view... Views>
class ZipView : public std::ranges::view_interface<ZipView<Views...>> {
  public:
    ZipView() = default;
    explicit ZipView(Views... views) : views_(std::move(views)...) {}

    class Iterator {
      public:
        using value_type = std::tuple<std::ranges::range_value_t<Views>...>;
        using difference_type = std::ptrdiff_t;

        Iterator() = default;
        // Holds where each range ends too, so that it outlives a move of the view.
        explicit Iterator(std::tuple<Views...>& views)
            : at_(std::apply([](auto&... view) { return std::tuple(std::ranges::begin(view)...); },
                             views)),
              ends_(std::apply([](auto&... view) { return std::tuple(std::ranges::end(view)...); },
                               views)) {}

        value_type operator*() const {
            return std::apply([](const auto&... at) { return value_type(*at...); }, at_);
        }
        Iterator& operator++() {
            std::apply([](auto&... at) { (++at, ...); }, at_);
            return *this;
        }
        void operator++(int) { ++*this; }
        // At the end once any of the ranges is.
        bool operator==(std::default_sentinel_t) const {
            return [&]<std::size_t... I>(std::index_sequence<I...>) {
                return ((std::get<I>(at_) == std::get<I>(ends_)) || ...);
            }
            (std::index_sequence_for<Views...>{});
        }

      private:
        std::tuple<std::ranges::iterator_t<Views>...> at_;
        std::tuple<std::ranges::sentinel_t<Views>...> ends_;
    };

    Iterator begin() { return Iterator(views_); }
    std::default_sentinel_t end() const { return {}; }

  private:
    std::tuple<Views...> views_;
};

template <std::ranges::viewable_range... Ranges>
auto zip(Ranges&&... ranges) {
    return ZipView<std::views::all_t<Ranges>...>(std::views::all(std::forward<Ranges>(ranges))...);
}

}  // namespace crew::detail
