// crew/shared_value.hpp: crew::Value and crew::Array, Python's multiprocessing.Value and Array:
// plain values in shared memory, each with the lock that guards it.
//
//     void deposit(crew::Value<long> balance, crew::Array<double> log, int n) {
//         std::lock_guard hold(balance.get_lock());
//         balance.set(balance.value() + 100);
//         log[n] = 1.5 * n;
//     }
//
//     crew::Value<long> balance(0);
//     crew::Array<double> log(4);
//     crew::Process a(deposit, balance, log, 0), b(deposit, balance, log, 1);
//     ...start, join...
//     balance.value();  // 200
//
// T is a trivially copyable type without pointers (int, double, a struct of them). The memory
// is shared with every copy of the object and with the processes it is handed to (as an
// argument of a crew::Process), as in crew/synchronize.hpp; nothing is left in /dev/shm.
//
// value() and set() take the value's lock for the moment they read or write, as Python's
// Value.value does; a read-modify-write (+= 1) needs the lock held around it: get_lock() is an
// RLock, so value() and set() still work inside. Array elements are reached directly
// (operator[], span()) without locking, unlike Python's per-element locking: hold get_lock()
// while several processes write. A dead holder of the lock is reported as by any RLock
// (crew::OwnerDied from acquire()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>
#include <ranges>
#include <span>
#include <type_traits>

#include "crew/detail/carried_span.hpp"
#include "crew/serialization.hpp"
#include "crew/synchronize.hpp"

namespace crew {

template <class T>
requires detail::raw_bytes_value<T>
class Value {
  public:
    explicit Value(const T& initial = T{}) : block_(sizeof(T), "crew-value") {
        std::memcpy(block_.data(), &initial, sizeof(T));
    }
    T value() const {
        std::lock_guard hold(lock_);
        T result;
        std::memcpy(&result, block_.data(), sizeof(T));
        return result;
    }
    void set(const T& value) {
        std::lock_guard hold(lock_);
        std::memcpy(block_.data(), &value, sizeof(T));
    }
    RLock& get_lock() const noexcept { return lock_; }

    void encode_into(detail::Writer& writer) const {
        lock_.encode_into(writer);
        block_.encode_into(writer);
    }
    static Value decode_from(detail::Reader& reader) {
        RLock lock = RLock::decode_from(reader);
        return Value(std::move(lock), detail::SharedBlock::decode_from(reader));
    }

  private:
    Value(RLock lock, detail::SharedBlock block)
        : lock_(std::move(lock)), block_(std::move(block)) {}
    mutable RLock lock_;
    detail::SharedBlock block_;
};

template <class T>
requires detail::raw_bytes_value<T>
class Array {
  public:
    // size elements, zeroed (as Python's Array(typecode, size)).
    explicit Array(std::size_t size) : block_(elements_at + size * sizeof(T), "crew-array") {
        const std::uint64_t count = size;
        std::memcpy(block_.data(), &count, sizeof count);
    }
    // A copy of the elements of values.
    template <std::ranges::input_range Range>
    requires(!std::same_as<std::remove_cvref_t<Range>, Array> &&
             std::convertible_to<std::ranges::range_reference_t<Range>,
                                 T>) explicit Array(Range&& values)
        : Array(static_cast<std::size_t>(std::ranges::distance(values))) {
        std::size_t index = 0;
        for (auto&& value : values) (*this)[index++] = static_cast<T>(value);
    }

    std::size_t size() const noexcept {
        std::uint64_t count;
        std::memcpy(&count, block_.data(), sizeof count);
        return static_cast<std::size_t>(count);
    }
    T& operator[](std::size_t index) const noexcept { return data()[index]; }
    std::span<T> span() const noexcept { return {data(), size()}; }
    T* begin() const noexcept { return data(); }
    T* end() const noexcept { return data() + size(); }
    RLock& get_lock() const noexcept { return lock_; }
    // Where the elements lie in shared memory: a task whose parameter is std::span<const T>
    // reads them there, with nothing copied (crew/detail/carried_span.hpp).
    detail::SharedRegion shared_region() const { return {block_, elements_at}; }

    void encode_into(detail::Writer& writer) const {
        lock_.encode_into(writer);
        block_.encode_into(writer);
    }
    static Array decode_from(detail::Reader& reader) {
        RLock lock = RLock::decode_from(reader);
        return Array(std::move(lock), detail::SharedBlock::decode_from(reader));
    }

  private:
    static_assert(alignof(T) <= 64, "crew::Array: elements aligned beyond 64 bytes");
    static constexpr std::size_t elements_at = 64;  // after the element count

    Array(RLock lock, detail::SharedBlock block)
        : lock_(std::move(lock)), block_(std::move(block)) {}
    T* data() const noexcept {
        // Zeroed or copied bytes of a trivially copyable T, used as T in place.
        return std::launder(reinterpret_cast<T*>(block_.data() + elements_at));
    }
    mutable RLock lock_;
    detail::SharedBlock block_;
};

}  // namespace crew
