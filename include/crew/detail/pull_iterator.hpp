// crew/detail/pull_iterator.hpp: the input iterator of crew's lazy result ranges (imap,
// Executor::map, as_completed). The range does the work: advance() moves to the next value (or
// to the end), at_end() tells, current() gives the value (or throws the error found there).
#pragma once

#include <cstddef>
#include <iterator>
#include <type_traits>

namespace crew::detail {

template <class Owner, class Reference>
class PullIterator {
  public:
    using value_type = std::remove_cvref_t<Reference>;
    using difference_type = std::ptrdiff_t;

    PullIterator() = default;
    explicit PullIterator(Owner* owner) : owner_(owner) {}

    Reference operator*() const { return owner_->current(); }
    PullIterator& operator++() {
        owner_->advance();
        return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(std::default_sentinel_t) const { return owner_->at_end(); }

  private:
    Owner* owner_ = nullptr;
};

}  // namespace crew::detail
