// crew/detail/callable.hpp: sending "call f with these arguments" to another process.
//
// encode_call writes a call into a message: the code address of an entry point made for this
// function type and these argument types, then the function (its own code address, its bytes, or
// nothing for an empty function object), then the arguments. invoke_call reads the entry point
// back, checks that it is one (see code_address.hpp) and lets it read the rest, make the call and
// write the result. What may be sent is decided at compile time, with readable messages:
//   - function pointers: the arguments are converted to the parameter types when encoded;
//   - empty default-constructible function objects, such as lambdas without captures: rebuilt;
//   - function objects that cereal can serialize: sent by value.
// A lambda with captures is none of these and is refused. C strings travel as std::string.
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "crew/detail/carried_span.hpp"
#include "crew/detail/code_address.hpp"
#include "crew/serialization.hpp"

namespace crew::detail {

// How a value of type T is carried: C strings become std::string, the rest their decayed type.
template <class T>
using carried_t = std::conditional_t<std::is_same_v<std::decay_t<T>, const char*> ||
                                         std::is_same_v<std::decay_t<T>, char*>,
                                     std::string, std::decay_t<T>>;

// How an argument for a parameter of type P (or an argument of type P, for a function object)
// is carried: a std::span<const T> as a CarriedSpan, read in place in shared memory when large
// (carried_span.hpp); the rest as carried_t says.
template <class P>
struct parameter_carried {
    using type = carried_t<P>;
};
template <class P>
requires span_parameter<std::remove_cvref_t<P>>::value struct parameter_carried<P> {
    using type = CarriedSpan<typename span_parameter<std::remove_cvref_t<P>>::element>;
};
template <class P>
using parameter_carried_t = typename parameter_carried<P>::type;

// What a function parameter of type P is handed: a carried std::string becomes a C string again,
// a CarriedSpan a std::span.
template <class P>
decltype(auto) hand_over(parameter_carried_t<P>& value) {
    if constexpr (std::is_pointer_v<std::decay_t<P>>) {
        return value.data();
    } else if constexpr (span_parameter<std::remove_cvref_t<P>>::value) {
        return value.view();
    } else {
        return std::move(value);
    }
}

template <class F>
struct function_pointer_traits : std::false_type {};
template <class R, class... P>
struct function_pointer_traits<R (*)(P...)> : std::true_type {
    using parameters = std::tuple<P...>;
    using result = R;
};
template <class R, class... P>
struct function_pointer_traits<R (*)(P...) noexcept> : function_pointer_traits<R (*)(P...)> {};

template <class F>
concept function_pointer = function_pointer_traits<F>::value;

template <class F>
concept stateless_function_object =
    std::is_class_v<F> && std::is_empty_v<F> && std::default_initializable<F>;

// A function object with state must say how to serialize it; raw bytes are not enough, because a
// lambda's captures are raw bytes too and must be refused.
template <class F>
concept serializable_function_object = std::is_class_v<F> && !std::is_empty_v<F> &&
                                       std::default_initializable<F> && cereal_ready<F>::value;

template <class F>
concept sendable_callable =
    function_pointer<F> || stateless_function_object<F> || serializable_function_object<F>;

template <class F>
constexpr bool check_sendable_callable() {
    static_assert(
        sendable_callable<F>,
        "crew: this callable cannot be sent to another process. A lambda with captures cannot: "
        "pass the data it captures as arguments instead (crew::Process p(f, data) with f a lambda "
        "without captures or a function). Neither can the result of std::bind_front or std::bind: "
        "pass the bound values as arguments too. A function object must be empty and default-"
        "constructible, or have a `template <class Archive> void serialize(Archive&)` member.");
    return sendable_callable<F>;
}

// The types the arguments are carried as: the parameter types of a function pointer, else the
// arguments' own decayed types.
template <class F, class... Arguments>
struct carried_arguments {
    using type = std::tuple<parameter_carried_t<Arguments>...>;
};
template <function_pointer F, class... Arguments>
struct carried_arguments<F, Arguments...> {
    template <class Tuple>
    struct carried_tuple;
    template <class... P>
    struct carried_tuple<std::tuple<P...>> {
        using type = std::tuple<parameter_carried_t<P>...>;
    };
    using type = typename carried_tuple<typename function_pointer_traits<F>::parameters>::type;
};

template <class F, class... Arguments>
using carried_arguments_t = typename carried_arguments<F, Arguments...>::type;

template <class F, class... Arguments>
constexpr bool check_arguments() {
    if constexpr (function_pointer<F>) {
        using Parameters = typename function_pointer_traits<F>::parameters;
        constexpr bool arity = std::tuple_size_v<Parameters> == sizeof...(Arguments);
        static_assert(arity,
                      "crew: the function is given a different number of arguments than "
                      "it has parameters.");
        constexpr bool no_mutable_reference = []<std::size_t... I>(std::index_sequence<I...>) {
            return (!(std::is_lvalue_reference_v<std::tuple_element_t<I, Parameters>> &&
                      !std::is_const_v<
                          std::remove_reference_t<std::tuple_element_t<I, Parameters>>>)&&...);
        }
        (std::make_index_sequence<std::tuple_size_v<Parameters>>{});
        static_assert(no_mutable_reference,
                      "crew: a parameter of the function is a non-const reference (T&). It would "
                      "change the worker's copy of the argument, never the caller's: take it by "
                      "value or by const T&, and return the value instead.");
        if constexpr (arity && no_mutable_reference) {
            constexpr bool convertible = []<std::size_t... I>(std::index_sequence<I...>) {
                return (std::is_constructible_v<
                            parameter_carried_t<std::tuple_element_t<I, Parameters>>, Arguments> &&
                        ...);
            }
            (std::index_sequence_for<Arguments...>{});
            static_assert(convertible,
                          "crew: an argument cannot be converted to the type of the "
                          "function's parameter.");
            return convertible&&[]<std::size_t... I>(std::index_sequence<I...>) {
                return (check_serializable<
                            parameter_carried_t<std::tuple_element_t<I, Parameters>>>() &&
                        ...);
            }
            (std::index_sequence_for<Arguments...>{});
        }
        return false;
    } else {
        constexpr bool serializable = (check_serializable<parameter_carried_t<Arguments>>() && ...);
        if constexpr (serializable) {
            constexpr bool invocable =
                std::is_invocable_v<F&, parameter_carried_t<Arguments>&&...> ||
                std::is_invocable_v<F&, parameter_carried_t<Arguments>&...>;
            static_assert(invocable,
                          "crew: the function object cannot be called with these arguments, as "
                          "they arrive in the other process (C strings arrive as std::string).");
            return invocable;
        }
        return false;
    }
}

// Told that a call has returned, before its result is written; null but in a pool worker, which
// stops timing the call there: writing a large result is no part of the task's run.
inline void (*call_returned)() noexcept = nullptr;

// An entry point reads a call's function and arguments from `call`, makes the call, and writes
// the result (nothing for void) to `result`. Exceptions from the function propagate.
using EntryPoint = void (*)(Reader& call, Writer& result);

template <class F, class Arguments>
struct Entry;

template <class F, class... Carried>
struct Entry<F, std::tuple<Carried...>> {
    static void run(Reader& call, Writer& result) {
        F function = read_function(call);
        std::tuple<Carried...> arguments{decode<Carried>(call)...};
        std::apply([&](Carried&... argument) { Entry::call(function, result, argument...); },
                   arguments);
    }

    // Calls function with the arguments as they arrived, handing each over as its parameter
    // wants, and writes the result (nothing for void).
    static void call(F& function, Writer& result, Carried&... argument) {
        if constexpr (function_pointer<F>) {
            using Parameters = typename function_pointer_traits<F>::parameters;
            [&]<std::size_t... I>(std::index_sequence<I...>) {
                finish(result, [&] {
                    return function(hand_over<std::tuple_element_t<I, Parameters>>(argument)...);
                });
            }
            (std::index_sequence_for<Carried...>{});
        } else if constexpr (std::is_invocable_v<F&, Carried&&...>) {
            finish(result, [&] { return std::invoke(function, std::move(argument)...); });
        } else {
            finish(result, [&] { return std::invoke(function, argument...); });
        }
    }

    static F read_function(Reader& call) {
        if constexpr (function_pointer<F>) {
            return reinterpret_cast<F>(resolve_function(decode<CodeAddress>(call)));
        } else if constexpr (stateless_function_object<F>) {
            return F{};
        } else {
            return decode<F>(call);
        }
    }

    template <class Call>
    static void finish(Writer& result, Call&& call) {
        using Result = std::invoke_result_t<Call>;
        if constexpr (std::is_void_v<Result>) {
            call();
        } else {
            carried_t<Result> value(call());
            if (call_returned != nullptr) call_returned();
            encode(result, value);
        }
    }

    // Registers run() while the program starts, in every process of this build.
    static inline const bool registered =
        (register_entry_point(reinterpret_cast<std::uintptr_t>(&run)), true);
};

// What a call refused at compile time returns (its static_assert has said why). It stands in
// for any result (a value, a range, an AsyncResult, a Future), so that crew's message is the
// compiler's only one. Nothing defines its members: no program that uses it compiles.
struct Refused {
    template <class T>
    operator T() const;
    const Refused* begin() const;
    const Refused* end() const;
    template <class... Arguments>
    Refused get(Arguments&&...) const;
    template <class... Arguments>
    Refused result(Arguments&&...) const;
    template <class... Arguments>
    Refused wait(Arguments&&...) const;
};
template <class T>
concept refused = std::same_as<std::remove_cvref_t<T>, Refused>;

template <class F, class... Arguments>
constexpr bool check_call() {
    return check_sendable_callable<F>() && check_arguments<F, Arguments...>();
}

// Encodes one argument as the carried type C: straight from a C the caller keeps (a 64 MiB
// vector is not copied first), through a temporary otherwise, so that an argument moved in is
// gone afterwards, as a moved-from Connection must be.
template <class C, class Argument>
void encode_argument_as(Writer& writer, Argument&& argument) {
    if constexpr (std::is_lvalue_reference_v<Argument> &&
                  std::is_same_v<std::remove_cvref_t<Argument>, C>) {
        encode(writer, argument);
    } else {
        encode(writer, C(std::forward<Argument>(argument)));
    }
}

// Encodes a call's arguments as the types of the tuple Carried.
template <class Carried, class... Arguments>
void encode_arguments_as(Writer& writer, Arguments&&... arguments) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        (encode_argument_as<std::tuple_element_t<I, Carried>>(writer,
                                                              std::forward<Arguments>(arguments)),
         ...);
    }
    (std::index_sequence_for<Arguments...>{});
}

// Writes "call function(arguments...)" into writer. Compiles only for sendable calls.
template <class F, class... Arguments>
void encode_call(Writer& writer, const F& function, Arguments&&... arguments) {
    if constexpr (check_call<F, Arguments...>()) {
        using Carried = carried_arguments_t<F, Arguments...>;
        using Point = Entry<F, Carried>;
        (void)Point::registered;
        encode(writer, code_address_of(reinterpret_cast<std::uintptr_t>(&Point::run)));
        if constexpr (function_pointer<F>) {
            encode(writer, code_address_of(reinterpret_cast<std::uintptr_t>(function)));
        } else if constexpr (serializable_function_object<F>) {
            encode(writer, function);
        }
        encode_arguments_as<Carried>(writer, std::forward<Arguments>(arguments)...);
    }
}

// A call encoded once and made later, maybe many times (a pool's initializer): its bytes and the
// descriptors its arguments carry, shared by copies.
struct EncodedCall {
    std::vector<std::byte> bytes;
    std::shared_ptr<const std::vector<UniqueFd>> fds;
};

// Reads a call written by encode_call, checks its entry point and makes it; the result, if any,
// goes to result. Throws crew::UnknownCallableError without calling anything for an unknown one.
void invoke_call(Reader& call, Writer& result);

}  // namespace crew::detail
