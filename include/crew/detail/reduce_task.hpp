// crew/detail/reduce_task.hpp: a task whose calls' results are reduced in the worker, for
// crew::map_reduce.
//
// Its message is a chunk's (task.hpp: entry point, function, count of calls), then the reducing
// function (as the function travels), the number of the chunk's first input, and the calls'
// arguments (or, for a counting range, the first value). The worker answers with one result:
// reduce(...reduce(reduce(f(x0), f(x1)), f(x2))...), or the first failure, its input named. The
// pool sees one call: a worker's death fails the whole chunk.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

#include "crew/detail/callable.hpp"
#include "crew/detail/task.hpp"
#include "crew/remote_exception.hpp"

namespace crew::detail {

template <class F, class Reduce, class Carried>
struct ReduceChunkEntry;

template <class F, class Reduce, class... Carried>
struct ReduceChunkEntry<F, Reduce, std::tuple<Carried...>> {
    using R = call_result_t<F, std::tuple<Carried...>>;

    static void run(Reader& call, Writer& results) {
        Head head = read_head(call);
        reduce_calls(head, results, [&](std::uint32_t) {
            return std::tuple<Carried...>{decode<Carried>(call)...};
        });
    }

    template <class Counter>
    static void run_counting(Reader& call, Writer& results) {
        Head head = read_head(call);
        const auto from = decode<Counter>(call);
        reduce_calls(head, results, [&](std::uint32_t i) {
            return std::tuple<Carried...>{Carried(static_cast<Counter>(from + i))...};
        });
    }

    static inline const bool registered =
        (register_entry_point(reinterpret_cast<std::uintptr_t>(&run)), true);
    template <class Counter>
    static inline const bool counting_registered =
        (register_entry_point(reinterpret_cast<std::uintptr_t>(&run_counting<Counter>)), true);

  private:
    struct Head {
        F function;
        std::uint32_t count;
        Reduce reduce;
        std::uint64_t first;
    };
    static Head read_head(Reader& call) {
        F function = Entry<F, std::tuple<Carried...>>::read_function(call);
        const auto count = decode<std::uint32_t>(call);
        Reduce reduce = Entry<Reduce, std::tuple<R, R>>::read_function(call);
        return {std::move(function), count, std::move(reduce), decode<std::uint64_t>(call)};
    }

    // What the function returns for the arguments, as Entry::call hands them over.
    static R value_of(F& function, Carried&... argument) {
        if constexpr (function_pointer<F>) {
            using Parameters = typename function_pointer_traits<F>::parameters;
            return [&]<std::size_t... I>(std::index_sequence<I...>)->R {
                return function(hand_over<std::tuple_element_t<I, Parameters>>(argument)...);
            }
            (std::index_sequence_for<Carried...>{});
        } else if constexpr (std::is_invocable_v<F&, Carried&&...>) {
            return std::invoke(function, std::move(argument)...);
        } else {
            return std::invoke(function, argument...);
        }
    }

    template <class Arguments>
    static void reduce_calls(Head& head, Writer& results, Arguments&& arguments_of) {
        encode(results, std::uint32_t{1});
        encode(results, Layout::one_by_one);
        ChunkEntry<F, std::tuple<Carried...>>::encode_outcome(results, [&] {
            std::optional<R> total;
            for (std::uint32_t i = 0; i < head.count; ++i) {
                try {
                    std::tuple<Carried...> arguments = arguments_of(i);
                    R value = std::apply(
                        [&](Carried&... argument) { return value_of(head.function, argument...); },
                        arguments);
                    total = total ? R(std::invoke(head.reduce, std::move(*total), std::move(value)))
                                  : std::move(value);
                } catch (...) {
                    std::rethrow_exception(with_context(
                        std::current_exception(), input_context("map_reduce", head.first + i)));
                }
            }
            encode(results, *total);
        });
    }
};

// Where a reducing chunk's entry point, its function and its reducing function lie.
struct ReduceCode {
    ChunkCode chunk;
    CodeAddress reduce;  // unused for a function object, which travels as itself
};

// Counter void: for arguments appended one by one; else for a counting range of Counter.
template <class F, class Reduce, class Carried, class Counter>
ReduceCode reduce_code(const F& function, const Reduce& reduce) {
    using Point = ReduceChunkEntry<F, Reduce, Carried>;
    std::uintptr_t entry = 0;
    if constexpr (std::is_void_v<Counter>) {
        (void)Point::registered;
        entry = reinterpret_cast<std::uintptr_t>(&Point::run);
    } else {
        (void)Point::template counting_registered<Counter>;
        entry = reinterpret_cast<std::uintptr_t>(&Point::template run_counting<Counter>);
    }
    ReduceCode code{chunk_code_at(entry, function), {}};
    if constexpr (function_pointer<Reduce>) {
        code.reduce = code_address_of(reinterpret_cast<std::uintptr_t>(reduce));
    }
    return code;
}

// After begin_task: the reducing function and the number of the chunk's first input; then the
// arguments, then finish_task.
template <class Reduce>
void write_reduce(Writer& task, const ReduceCode& code, const Reduce& reduce, std::uint64_t first) {
    if constexpr (function_pointer<Reduce>) {
        encode(task, code.reduce);
    } else if constexpr (serializable_function_object<Reduce>) {
        encode(task, reduce);
    }
    encode(task, first);
}

}  // namespace crew::detail
