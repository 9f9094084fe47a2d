// crew/detail/task.hpp: a task for a pool worker: many calls of one function in one message.
//
// A task message holds the chunk entry point's code address, the function (as in callable.hpp),
// the number of calls and each call's arguments. The worker answers with one outcome per call, in
// order: a success with the encoded result, or the type name and what() of the exception the call
// threw. One call failing does not stop the others.
#pragma once

#include <cstdint>
#include <exception>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "crew/detail/callable.hpp"

namespace crew::detail {

enum class Outcome : std::uint8_t { returned = 0, threw = 1 };

// Writes the exception being handled as an outcome: type name, what(), this process's pid.
void encode_current_exception(Writer& out);
// Reads what encode_current_exception wrote, as a crew::RemoteError.
std::exception_ptr decode_exception(Reader& in);

// Where each outcome's bytes lie in a result message, so that they can be read in any order.
struct OutcomeView {
    Outcome outcome;
    std::span<const std::byte> bytes;
};
std::vector<OutcomeView> split_outcomes(std::span<const std::byte> results);

template <class F, class Arguments>
struct ChunkEntry;

template <class F, class... Carried>
struct ChunkEntry<F, std::tuple<Carried...>> {
    using Single = Entry<F, std::tuple<Carried...>>;

    static void run(Reader& call, Writer& results) {
        F function = Single::read_function(call);
        const auto count = decode<std::uint32_t>(call);
        encode(results, count);
        for (std::uint32_t i = 0; i < count; ++i) {
            std::tuple<Carried...> arguments{decode<Carried>(call)...};
            // Room for the outcome and its length, filled in once the call has ended.
            const std::size_t start = results.size();
            const std::uint64_t unknown = 0;
            encode(results, Outcome::returned);
            encode(results, unknown);
            Outcome outcome = Outcome::returned;
            try {
                std::apply(
                    [&](Carried&... argument) { Single::call(function, results, argument...); },
                    arguments);
            } catch (...) {
                results.truncate(start + sizeof(Outcome) + sizeof unknown);
                encode_current_exception(results);
                outcome = Outcome::threw;
            }
            const std::uint64_t length = results.size() - start - sizeof(Outcome) - sizeof unknown;
            results.overwrite(start, &outcome, sizeof outcome);
            results.overwrite(start + sizeof outcome, &length, sizeof length);
        }
    }

    static inline const bool registered =
        (register_entry_point(reinterpret_cast<std::uintptr_t>(&run)), true);
};

// Starts a task message: room for its id, the chunk entry point and the function. Append each
// call's arguments with encode_task_arguments, count calls, then finish_task.
template <class F, class Carried>
std::size_t begin_task(Writer& task, const F& function) {
    using Point = ChunkEntry<F, Carried>;
    (void)Point::registered;
    encode(task, std::uint64_t{0});  // the task's id, set by the pool when it sends the task
    encode(task, code_address_of(reinterpret_cast<std::uintptr_t>(&Point::run)));
    if constexpr (function_pointer<F>) {
        encode(task, code_address_of(reinterpret_cast<std::uintptr_t>(function)));
    } else if constexpr (serializable_function_object<F>) {
        encode(task, function);
    }
    const std::size_t count_at = task.size();
    encode(task, std::uint32_t{0});
    return count_at;
}

// Appends one call's arguments, converted to the carried types.
template <class Carried, class... Arguments>
void encode_task_arguments(Writer& task, Arguments&&... arguments) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        (encode(task, std::tuple_element_t<I, Carried>(std::forward<Arguments>(arguments))), ...);
    }
    (std::index_sequence_for<Arguments...>{});
}

inline void finish_task(Writer& task, std::size_t count_at, std::uint32_t count) {
    task.overwrite(count_at, &count, sizeof count);
}

}  // namespace crew::detail
