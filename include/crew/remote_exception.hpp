// crew/remote_exception.hpp: an exception thrown in a worker arrives as its own type.
//
//     int parse(std::string text) { return std::stoi(text); }  // may throw std::invalid_argument
//
//     try {
//         pool.apply(parse, std::string("x"));
//     } catch (const std::invalid_argument& error) {
//         std::cerr << error.what() << '\n';  // "stoi (in worker pid 4242)"
//     }
//
// As Python re-raises a worker's ValueError as a ValueError, crew rethrows, wherever a result is
// waited for (Pool::apply, map, imap, AsyncResult::get, Future::result), the type the task threw
// when it can rebuild it: every standard exception type (std::logic_error, invalid_argument,
// domain_error, length_error, out_of_range, runtime_error, range_error, overflow_error,
// underflow_error, std::bad_alloc, std::system_error with its code) and each type registered
// with register_exception. The rebuilt exception's what() is the original's followed by
// " (in worker pid N)" (not for std::bad_alloc, whose what() is fixed, nor for a type rebuilt
// from its serialized self). The exact type counts: a subclass of a standard
// type, unregistered, and anything else arrive as crew::RemoteError, which keeps the type's name,
// the message and the pid.
//
// register_exception<E>() makes E rebuildable. E is either built from a message (a constructor
// taking a std::string, as the standard types are) or serializable (crew/serialization.hpp), and
// then sent whole. A serialized type is encoded by the worker, so its registration must have run
// there too: register at namespace scope, which runs in every process,
//
//     struct ParseError : std::runtime_error { using std::runtime_error::runtime_error; };
//     const bool parse_error_registered = crew::register_exception<ParseError>();
//
// Registering is thread-safe and may be repeated; it returns true.
#pragma once

#include <exception>
#include <string>
#include <type_traits>
#include <typeinfo>

#include "crew/detail/byte_stream.hpp"
#include "crew/serialization.hpp"

namespace crew {

namespace detail {

// How to rebuild one exception type: from its message, or from its encoded self.
struct RebuildableException {
    std::exception_ptr (*from_message)(const std::string& message) = nullptr;
    void (*encode)(const std::exception_ptr& error, Writer& writer) = nullptr;
    std::exception_ptr (*decode)(Reader& reader) = nullptr;
};
void add_rebuildable_exception(const std::type_info& type, RebuildableException how);

// Writes the exception being handled: type name, what(), this process's pid.
void encode_current_exception(Writer& out);
// Reads what encode_current_exception wrote: the exception as its own type when it can be
// rebuilt, else a crew::RemoteError.
std::exception_ptr decode_exception(Reader& in);

// The error with context opening its what(), as "context: what()", where its type can be rebuilt
// with a new message (the types above, crew::RemoteError, WorkerDied, TimeoutError); any other
// error is returned as it is.
std::exception_ptr with_context(const std::exception_ptr& error, const std::string& context);

template <class E>
std::exception_ptr rebuilt_from_message(const std::string& message) {
    return std::make_exception_ptr(E(message));
}

}  // namespace detail

template <class E>
bool register_exception() {
    static_assert(std::is_class_v<E> && std::is_copy_constructible_v<E>,
                  "crew::register_exception: the exception type must be a copyable class");
    detail::RebuildableException how;
    if constexpr (std::is_constructible_v<E, std::string>) {
        how.from_message = &detail::rebuilt_from_message<E>;
    } else if constexpr (serializable<E>) {
        how.encode = [](const std::exception_ptr& error, detail::Writer& writer) {
            try {
                std::rethrow_exception(error);
            } catch (const E& exception) {
                detail::encode(writer, exception);
            }
        };
        how.decode = [](detail::Reader& reader) {
            return std::make_exception_ptr(detail::decode<E>(reader));
        };
    } else {
        static_assert(std::is_constructible_v<E, std::string> || serializable<E>,
                      "crew::register_exception: the exception type needs a constructor taking "
                      "a std::string (its message), or to be serializable: give it a serialize "
                      "member function (see crew/serialization.hpp)");
    }
    detail::add_rebuildable_exception(typeid(E), how);
    return true;
}

}  // namespace crew
