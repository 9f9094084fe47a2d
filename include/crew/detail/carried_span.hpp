// crew/detail/carried_span.hpp: how a std::span<const T> parameter reaches another process.
//
// A function whose parameter is std::span<const T> (T trivially copyable) may be called in a
// worker with a std::vector<T>, a std::span<const T> or a crew::Array<T>. A few bytes travel in
// the message. More than max_nbytes (1 MiB unless a LargeArguments says otherwise) are copied
// once into a block of shared memory, the message names the block, and the worker's span reads
// the elements there in place: nothing is copied in the worker. While a LargeArguments is in
// force on the encoding thread (a crew::Parallel call), data at one address and of one size is
// copied once however many calls take it; its blocks go when it does. Data already in shared
// memory (a crew::Array) is never copied. Nothing is left in /dev/shm: a block is a memfd.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <ranges>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "crew/detail/byte_stream.hpp"
#include "crew/detail/shared_block.hpp"
#include "crew/error.hpp"
#include "crew/serialization.hpp"

namespace crew::detail {

inline constexpr std::size_t default_max_nbytes = std::size_t{1} << 20;

// Where an argument already in shared memory lies: what crew::Array's shared_region() says.
struct SharedRegion {
    SharedBlock block;
    std::size_t offset = 0;  // of the first element, in bytes
};

// The blocks the large arguments of one call were copied into, by the address and size of their
// data. In force on the thread that makes a Scope, for the Scope's life. For messages that cannot
// carry descriptors (a registered Parallel backend's), every span travels in the message, a
// crew::Array's elements too.
class LargeArguments {
  public:
    enum class Carriage { shared_memory, messages_only };
    explicit LargeArguments(std::size_t max_nbytes, Carriage carriage = Carriage::shared_memory)
        : max_nbytes_(max_nbytes), carriage_(carriage) {}
    LargeArguments(const LargeArguments&) = delete;
    LargeArguments& operator=(const LargeArguments&) = delete;

    std::size_t max_nbytes() const noexcept { return max_nbytes_; }
    bool messages_only() const noexcept { return carriage_ == Carriage::messages_only; }
    // A block holding a copy of bytes, made at the first request for them.
    const SharedBlock& block_for(std::span<const std::byte> bytes);
    // The one in force on this thread, if any.
    static LargeArguments* current() noexcept { return current_; }

    class [[nodiscard]] Scope {
      public:
        explicit Scope(LargeArguments& arguments) : outer_(std::exchange(current_, &arguments)) {}
        ~Scope() { current_ = outer_; }
        Scope(const Scope&) = delete;
        Scope& operator=(const Scope&) = delete;

      private:
        LargeArguments* outer_;
    };

  private:
    static inline thread_local LargeArguments* current_ = nullptr;
    std::size_t max_nbytes_;
    Carriage carriage_;
    std::map<std::pair<const std::byte*, std::size_t>, SharedBlock> blocks_;
};

// A block holding a copy of bytes, for an argument sent without a LargeArguments in force.
SharedBlock copy_to_shared_block(std::span<const std::byte> bytes);

template <class T>
concept has_shared_region = requires(const T& value) {
    { value.shared_region() } -> std::same_as<SharedRegion>;
};

template <class T>
class CarriedSpan {
    static_assert(raw_bytes_value<T>);

  public:
    CarriedSpan() = default;
    // A view of the caller's elements, which must stay until the call is encoded.
    template <std::ranges::contiguous_range Range>
    requires(!has_shared_region<Range> &&
             std::same_as<std::remove_cv_t<std::ranges::range_value_t<Range>>, T>)
        CarriedSpan(const Range& elements)  // implicit, as std::span's
        : view_(std::ranges::data(elements), std::ranges::size(elements)) {}
    template <has_shared_region Shared>
    CarriedSpan(const Shared& shared)  // implicit, as std::span's
        : view_(shared.span()), region_(shared.shared_region()) {}

    std::span<const T> view() const noexcept { return view_; }
    operator std::span<const T>() const noexcept { return view_; }  // for function objects

    void encode_into(Writer& writer) const {
        const auto bytes = std::as_bytes(view_);
        const std::uint64_t count = view_.size();
        LargeArguments* large = LargeArguments::current();
        if ((large && large->messages_only()) ||
            (!region_ && bytes.size() <= (large ? large->max_nbytes() : default_max_nbytes))) {
            encode(writer, Travels::in_message);
            encode(writer, count);
            writer.write_bytes(bytes.data(), bytes.size());
            return;
        }
        std::optional<SharedBlock> copied;
        const SharedBlock* block = region_ ? &region_->block
                                   : large ? &large->block_for(bytes)
                                           : &copied.emplace(copy_to_shared_block(bytes));
        encode(writer, region_ ? Travels::in_shared_object : Travels::in_copy);
        block->encode_into(writer);
        encode(writer, static_cast<std::uint64_t>(region_ ? region_->offset : 0));
        encode(writer, count);
    }

    static CarriedSpan decode_from(Reader& reader) {
        CarriedSpan carried;
        const auto travels = decode<Travels>(reader);
        if (travels == Travels::in_message) {
            const auto count = decode<std::uint64_t>(reader);
            if (count > reader.remaining() / sizeof(T)) {
                throw Error("crew: a span argument's message is shorter than its elements");
            }
            auto owned = std::make_shared<std::vector<T>>(static_cast<std::size_t>(count));
            reader.read_bytes(owned->data(), owned->size() * sizeof(T));
            carried.view_ = std::span<const T>(*owned);
            carried.owned_ = std::move(owned);
            return carried;
        }
        if (travels != Travels::in_copy && travels != Travels::in_shared_object) {
            throw Error("crew: a span argument came in a form no sender writes");
        }
        // A copy crew made goes with its call; a shared object's block is kept as a lock's is.
        SharedBlock block = SharedBlock::decode_from(reader, travels == Travels::in_copy
                                                                 ? SharedBlock::Kept::until_idle
                                                                 : SharedBlock::Kept::while_recent);
        const auto offset = decode<std::uint64_t>(reader);
        const auto count = decode<std::uint64_t>(reader);
        if (offset > block.size() || count > (block.size() - offset) / sizeof(T) ||
            offset % alignof(T) != 0) {
            throw Error("crew: a span argument names elements outside its shared block");
        }
        carried.view_ =
            std::span<const T>(std::launder(reinterpret_cast<const T*>(block.data() + offset)),
                               static_cast<std::size_t>(count));
        carried.region_ = SharedRegion{std::move(block), static_cast<std::size_t>(offset)};
        return carried;
    }

  private:
    // In the message; in a block crew copied the elements to; in a shared object's own block.
    enum class Travels : std::uint8_t { in_message = 0, in_copy = 1, in_shared_object = 2 };
    std::span<const T> view_;
    std::optional<SharedRegion> region_;           // the shared memory view_ lies in, if any
    std::shared_ptr<const std::vector<T>> owned_;  // the elements that came in the message
};

template <class P>
struct span_parameter : std::false_type {};
template <class T>
requires raw_bytes_value<T>
struct span_parameter<std::span<const T>> : std::true_type {
    using element = T;
};

}  // namespace crew::detail
