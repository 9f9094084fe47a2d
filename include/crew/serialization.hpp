// crew/serialization.hpp: what may cross a process boundary.
//
// Arguments, results and function objects travel between processes as bytes. A value is sent
//   - as its raw bytes when it is trivially copyable (int, double, a struct of them, std::array),
//     or a contiguous owning range of such values (std::vector<double>, std::string);
//   - through cereal otherwise: the std types cereal covers (map, optional, tuple, variant, ...,
//     nested as deep as you like) and any type with a cereal serialize member or function:
//
//         struct Point3 {
//             std::string label;
//             std::vector<double> xyz;
//             template <class Archive> void serialize(Archive& archive) { archive(label, xyz); }
//         };
//         static_assert(crew::serializable<Point3>);
//
// std::filesystem::path travels as its native string.
//
// Pointers and views (std::span, std::string_view) are refused: the memory they point at does not
// exist in the other process. A type that cannot be sent is a compile-time error whose message
// says what to do; crew::serializable<T> asks the same question. A trivially copyable struct
// inside a cereal-handled container (std::map<int, Point>) needs a serialize member of its own.
// Both ends must run the same build of the program (the bytes are not a portable format).
#pragma once

#include <array>
#include <bit>
#include <cereal/archives/binary.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/chrono.hpp>
#include <cereal/types/complex.hpp>
#include <cereal/types/deque.hpp>
#include <cereal/types/list.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/memory.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/set.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/unordered_set.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/variant.hpp>
#include <cereal/types/vector.hpp>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <new>
#include <ranges>
#include <span>
#include <type_traits>

#include "crew/detail/byte_stream.hpp"
#include "crew/error.hpp"

// cereal has no std::filesystem::path; its own namespace is where it looks for such functions.
namespace cereal {
template <class Archive>
void save(Archive& archive, const std::filesystem::path& path) {
    archive(path.native());
}
template <class Archive>
void load(Archive& archive, std::filesystem::path& path) {
    std::filesystem::path::string_type native;
    archive(native);
    path = std::move(native);
}
}  // namespace cereal

namespace crew {
namespace detail {

// Types that write and read themselves, for what plain bytes cannot carry (file descriptors).
template <class T>
concept self_encoding = requires(const T& value, Writer& writer, Reader& reader) {
    value.encode_into(writer);
    { T::decode_from(reader) } -> std::same_as<T>;
};

// Trivially copyable values whose bytes mean the same in another process of the same build.
template <class T>
concept raw_bytes_value =
    std::is_trivially_copyable_v<T> && !std::is_pointer_v<T> && !std::is_member_pointer_v<T> &&
    !std::is_null_pointer_v<T> && !std::ranges::view<T>;

// Owning contiguous containers of such values: sent as a length and one block of bytes.
template <class T>
concept raw_bytes_range =
    !raw_bytes_value<T> && std::ranges::contiguous_range<T> && std::ranges::sized_range<T> &&
    !std::ranges::view<T> && std::default_initializable<T> &&
    raw_bytes_value<std::ranges::range_value_t<T>> && requires(T & range, std::size_t size) {
    range.resize(size);
};

// Whether cereal can write and read T all the way down. cereal's own traits look at the outer
// type only (std::vector<NotSerializable> passes them), so the std containers are unfolded here.
template <class T>
struct cereal_ready
    : std::bool_constant<
          !std::is_pointer_v<T> && !std::ranges::view<T> &&
          cereal::traits::is_output_serializable<T, cereal::BinaryOutputArchive>::value &&
          cereal::traits::is_input_serializable<T, cereal::BinaryInputArchive>::value> {};

template <class... Ts>
inline constexpr bool all_cereal_ready = (cereal_ready<Ts>::value && ...);

template <class T, class A>
struct cereal_ready<std::vector<T, A>> : std::bool_constant<all_cereal_ready<T>> {};
template <class T, class A>
struct cereal_ready<std::deque<T, A>> : std::bool_constant<all_cereal_ready<T>> {};
template <class T, class A>
struct cereal_ready<std::list<T, A>> : std::bool_constant<all_cereal_ready<T>> {};
template <class T, std::size_t N>
struct cereal_ready<std::array<T, N>> : std::bool_constant<all_cereal_ready<T>> {};
template <class K, class C, class A>
struct cereal_ready<std::set<K, C, A>> : std::bool_constant<all_cereal_ready<K>> {};
template <class K, class C, class A>
struct cereal_ready<std::multiset<K, C, A>> : std::bool_constant<all_cereal_ready<K>> {};
template <class K, class H, class E, class A>
struct cereal_ready<std::unordered_set<K, H, E, A>> : std::bool_constant<all_cereal_ready<K>> {};
template <class K, class V, class C, class A>
struct cereal_ready<std::map<K, V, C, A>> : std::bool_constant<all_cereal_ready<K, V>> {};
template <class K, class V, class C, class A>
struct cereal_ready<std::multimap<K, V, C, A>> : std::bool_constant<all_cereal_ready<K, V>> {};
template <class K, class V, class H, class E, class A>
struct cereal_ready<std::unordered_map<K, V, H, E, A>>
    : std::bool_constant<all_cereal_ready<K, V>> {};
template <class T>
struct cereal_ready<std::optional<T>> : std::bool_constant<all_cereal_ready<T>> {};
template <class A, class B>
struct cereal_ready<std::pair<A, B>> : std::bool_constant<all_cereal_ready<A, B>> {};
template <class... Ts>
struct cereal_ready<std::tuple<Ts...>> : std::bool_constant<all_cereal_ready<Ts...>> {};
template <class... Ts>
struct cereal_ready<std::variant<Ts...>> : std::bool_constant<all_cereal_ready<Ts...>> {};
template <class T, class D>
struct cereal_ready<std::unique_ptr<T, D>> : std::bool_constant<all_cereal_ready<T>> {};
template <class T>
struct cereal_ready<std::shared_ptr<T>> : std::bool_constant<all_cereal_ready<T>> {};

}  // namespace detail

// True when values of T can be sent to another process (see the top of this header).
template <class T>
concept serializable = detail::self_encoding<T> || detail::raw_bytes_value<T> ||
    detail::raw_bytes_range<T> ||(std::default_initializable<T>&& detail::cereal_ready<T>::value);

namespace detail {

// Fails compilation with one readable message when T cannot be sent; true otherwise.
template <class T>
constexpr bool check_serializable() {
    if constexpr (std::is_pointer_v<T>) {
        static_assert(!std::is_pointer_v<T>,
                      "crew: a pointer cannot cross a process boundary: the memory it points at "
                      "does not exist in the other process. Pass the value itself (a std::string "
                      "instead of a char*, a std::vector instead of a T*).");
        return false;
    } else if constexpr (std::ranges::view<T>) {
        static_assert(!std::ranges::view<T>,
                      "crew: a view (std::span, std::string_view, a ranges view) cannot cross a "
                      "process boundary: pass an owning container (std::vector, std::string).");
        return false;
    } else {
        static_assert(serializable<T>,
                      "crew: this type cannot be serialized, so it cannot cross a process "
                      "boundary. Make it trivially copyable, give it a member `template <class "
                      "Archive> void serialize(Archive& archive) { archive(member1, member2); }`, "
                      "or use std types cereal supports (see crew/serialization.hpp).");
        return serializable<T>;
    }
}

template <class T>
void encode(Writer& writer, const T& value) {
    if constexpr (check_serializable<T>()) {
        if constexpr (self_encoding<T>) {
            value.encode_into(writer);
        } else if constexpr (raw_bytes_value<T>) {
            writer.write_bytes(&value, sizeof(T));
        } else if constexpr (raw_bytes_range<T>) {
            const std::uint64_t count = std::ranges::size(value);
            writer.write_bytes(&count, sizeof count);
            writer.write_bytes(std::ranges::data(value),
                               count * sizeof(std::ranges::range_value_t<T>));
        } else {
            cereal::BinaryOutputArchive archive(writer.stream());
            archive(value);
        }
    }
}

template <class T>
T decode(Reader& reader) {
    if constexpr (check_serializable<T>()) {
        if constexpr (self_encoding<T>) {
            return T::decode_from(reader);
        } else if constexpr (raw_bytes_value<T>) {
            // Trivially copyable types need no constructor: copying the bytes creates the object.
            alignas(T) std::byte storage[sizeof(T)];
            reader.read_bytes(storage, sizeof(T));
            return *std::launder(reinterpret_cast<T*>(storage));
        } else if constexpr (raw_bytes_range<T>) {
            using Element = std::ranges::range_value_t<T>;
            std::uint64_t count = 0;
            reader.read_bytes(&count, sizeof count);
            // Check the claimed length against the message before allocating for it.
            if (count > reader.remaining() / sizeof(Element)) {
                throw Error("crew: a message claims " + std::to_string(count) +
                            " elements but holds only " + std::to_string(reader.remaining()) +
                            " more bytes; it was cut short or corrupted on the way");
            }
            T range;
            if constexpr (requires { range.reserve(count); }) {
                range.reserve(count);
                prefer_huge_pages(std::ranges::data(range), count * sizeof(Element));
            }
            range.resize(count);
            reader.read_bytes(std::ranges::data(range), count * sizeof(Element));
            return range;
        } else {
            T value{};
            try {
                cereal::BinaryInputArchive archive(reader.stream());
                archive(value);
            } catch (const cereal::Exception& error) {
                throw Error(std::string("crew: a message could not be decoded (") + error.what() +
                            "); it was cut short or corrupted on the way");
            }
            return value;
        }
    }
}

// A file descriptor sent along with a message: the sender's number goes in, the number it arrived
// as in the receiving process comes out (which then owns it).
struct SentFd {
    int fd = -1;

    void encode_into(Writer& writer) const {
        encode(writer, static_cast<std::uint32_t>(writer.attach_fd(fd)));
    }
    static SentFd decode_from(Reader& reader) {
        return {reader.take_attached_fd(decode<std::uint32_t>(reader))};
    }
};

// Messages that travel through shared memory (queues, pipes) carry bytes only. A plain value
// travels as its bytes, as encode() writes them, without a Writer or a Reader.
template <class T>
concept plain_message = raw_bytes_value<T> && !self_encoding<T>;

// Hands send the bytes of value as one message and returns what send returns; throws
// crew::Error for a value that carries descriptors.
template <class T, class Send>
decltype(auto) with_message_bytes(const T& value, Send&& send) {
    static_assert(serializable<T>, "crew: a queue's or a connection's T must be serializable");
    if constexpr (plain_message<T>) {
        return send(std::as_bytes(std::span(&value, 1)));
    } else {
        Writer message;
        encode(message, value);
        if (!message.attached_fds().empty()) {
            throw Error(
                "crew: queues and connections carry no descriptors (a Lock, Queue, Pipe end or "
                "shared value); hand those to a crew::Process or a pool task as arguments instead");
        }
        return send(message.bytes());
    }
}

template <class T>
T decode_message(std::span<const std::byte> message) {
    if constexpr (plain_message<T>) {
        if (message.size() != sizeof(T)) {
            throw Error("crew: a message is not the size of the type it should hold");
        }
        std::array<std::byte, sizeof(T)> bytes;
        std::memcpy(bytes.data(), message.data(), sizeof(T));
        return std::bit_cast<T>(bytes);
    } else {
        Reader reader(message);
        return decode<T>(reader);
    }
}

}  // namespace detail
}  // namespace crew
