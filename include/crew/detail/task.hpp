// crew/detail/task.hpp: a task for a pool worker: many calls of one function in one message.
//
// A task message holds the chunk entry point's code address, the function (as in callable.hpp),
// the number of calls and each call's arguments. The worker answers with one outcome per call, in
// order: a success with the encoded result, or the type name and what() of the exception the call
// threw. One call failing does not stop the others. When every call returns a trivially copyable
// value, the answer is just those values back to back.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <new>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "crew/detail/callable.hpp"
#include "crew/detail/worker_protocol.hpp"
#include "crew/error.hpp"
#include "crew/remote_exception.hpp"

namespace crew::detail {

// The context crew::Parallel and crew::map_reduce give a failed call's error: which input it
// was called on ("crew::Parallel input 3").
inline std::string input_context(const char* label, std::uint64_t index) {
    return std::string("crew::") + label + " input " + std::to_string(index);
}

enum class Outcome : std::uint8_t { returned = 0, threw = 1 };

// How a task's results are laid out: packed, when every call returned a value stored as its raw
// bytes, back to back (one copy brings a chunk's results home); else one outcome after another.
enum class Layout : std::uint8_t { one_by_one = 0, packed = 1 };

// What calling F with the carried arguments returns, as it comes back to the caller.
template <class F, class Carried>
struct call_result;
template <class F, class... Carried>
struct call_result<F, std::tuple<Carried...>> {
    static auto result() {
        if constexpr (function_pointer<F>) {
            return std::type_identity<typename function_pointer_traits<F>::result>{};
        } else if constexpr (std::is_invocable_v<F&, Carried&&...>) {
            return std::type_identity<std::invoke_result_t<F&, Carried&&...>>{};
        } else {
            return std::type_identity<std::invoke_result_t<F&, Carried&...>>{};
        }
    }
    using raw = typename decltype(result())::type;
    using type = std::conditional_t<std::is_void_v<raw>, void, carried_t<raw>>;
};
template <class F, class Carried>
using call_result_t = typename call_result<F, Carried>::type;

template <class R>
concept packable_result = raw_bytes_value<R>;

// One call's outcome in a result message: its kind and its bytes (a value or an exception).
struct OutcomeView {
    Outcome outcome;
    std::span<const std::byte> bytes;
};

// The results of one task, read in place from the worker's reply.
class TaskResults {
  public:
    explicit TaskResults(std::span<const std::byte> message);

    std::uint32_t size() const noexcept { return count_; }
    // Packed: the calls' values, size() of them back to back.
    bool packed() const noexcept { return layout_ == Layout::packed; }
    // Packed, and holding size() values of value_size bytes each: safe to copy as such.
    bool packed_as(std::size_t value_size) const noexcept {
        return packed() && rest_.size() == std::size_t{count_} * value_size;
    }
    std::span<const std::byte> packed_values() const noexcept { return rest_; }
    // Visits each call's outcome in order: visit(index, OutcomeView).
    template <class Visit>
    void for_each_outcome(Visit&& visit) const {
        Reader in(rest_);
        for (std::uint32_t i = 0; i < count_; ++i) {
            auto outcome = decode<Outcome>(in);
            auto length = decode<std::uint64_t>(in);
            visit(i, OutcomeView{outcome, in.take(length)});
        }
    }

  private:
    std::uint32_t count_ = 0;
    Layout layout_ = Layout::one_by_one;
    std::span<const std::byte> rest_;
};

// Hands each result of a task to store(index, R&&), and each failure to fail(index, error).
template <class R, class Store, class Fail>
void decode_results(const TaskResults& results, Store&& store, Fail&& fail) {
    if constexpr (packable_result<R>) {
        if (results.packed()) {
            if (!results.packed_as(sizeof(R))) {
                auto error = std::make_exception_ptr(
                    Error("crew: a task's packed results do not have the size of its values"));
                for (std::uint32_t i = 0; i < results.size(); ++i) fail(i, error);
                return;
            }
            const std::byte* values = results.packed_values().data();
            for (std::uint32_t i = 0; i < results.size(); ++i) {
                alignas(R) std::byte storage[sizeof(R)];
                std::memcpy(storage, values + std::size_t{i} * sizeof(R), sizeof(R));
                store(i, std::move(*std::launder(reinterpret_cast<R*>(storage))));
            }
            return;
        }
    }
    results.for_each_outcome([&](std::uint32_t i, const OutcomeView& outcome) {
        Reader reader(outcome.bytes);
        if (outcome.outcome == Outcome::threw) {
            fail(i, decode_exception(reader));
            return;
        }
        try {
            if constexpr (std::is_void_v<R>) {
                store(i);
            } else {
                store(i, decode<R>(reader));
            }
        } catch (...) {
            fail(i, std::current_exception());
        }
    });
}

template <class F, class Arguments>
struct ChunkEntry;

template <class F, class... Carried>
struct ChunkEntry<F, std::tuple<Carried...>> {
    using Single = Entry<F, std::tuple<Carried...>>;
    using R = call_result_t<F, std::tuple<Carried...>>;

    static void run(Reader& call, Writer& results) {
        F function = Single::read_function(call);
        const auto count = decode<std::uint32_t>(call);
        run_calls(function, count, results,
                  [&](std::uint32_t) { return std::tuple<Carried...>{decode<Carried>(call)...}; });
    }

    // A chunk whose calls take first, first + 1, ... (a counting range, as crew::range gives):
    // only first travels, not each value.
    template <class Counter>
    static void run_counting(Reader& call, Writer& results) {
        F function = Single::read_function(call);
        const auto count = decode<std::uint32_t>(call);
        const auto first = decode<Counter>(call);
        run_calls(function, count, results, [&](std::uint32_t i) {
            return std::tuple<Carried...>{Carried(static_cast<Counter>(first + i))...};
        });
    }

    // Makes the calls of a chunk of count that the running task asks for (all of them outside a
    // pool worker), taking the arguments of call i from arguments_of(i), in order, and saying
    // which call runs (note_call_began) so that a worker's death fails that call only.
    template <class Arguments>
    static void run_calls(F& function, std::uint32_t count, Writer& results,
                          Arguments&& arguments_of) {
        const RunningTask task = running_task;
        const std::uint32_t begin = task.progress ? std::min(task.begin_call, count) : 0;
        const std::uint32_t end = task.progress ? std::clamp(task.end_call, begin, count) : count;
        // The calls before begin were made by a worker that died: their arguments are read past.
        for (std::uint32_t i = 0; i < begin; ++i) (void)arguments_of(i);
        encode(results, end - begin);
        std::uint32_t i = begin;
        if constexpr (packable_result<R>) {
            const std::size_t layout_at = results.size();
            encode(results, Layout::packed);
            for (; i < end; ++i) {
                std::tuple<Carried...> arguments = arguments_of(i);
                note_call_began(task, i);
                try {
                    std::apply(
                        [&](Carried&... argument) { Single::call(function, results, argument...); },
                        arguments);
                } catch (...) {
                    unpack(results, layout_at, i - begin);
                    encode_outcome(results, [] { throw; });
                    ++i;
                    if (task.stop_at_failure) return fail_unmade(results, i, end);
                    break;
                }
            }
        } else {
            encode(results, Layout::one_by_one);
        }
        for (; i < end; ++i) {
            std::tuple<Carried...> arguments = arguments_of(i);
            note_call_began(task, i);
            const bool threw = encode_outcome(results, [&] {
                std::apply(
                    [&](Carried&... argument) { Single::call(function, results, argument...); },
                    arguments);
            });
            if (threw && task.stop_at_failure) return fail_unmade(results, i + 1, end);
        }
    }

    // The calls [from, end) of a chunk whose call before failed, under stop_at_failure: their
    // failures say so, and are not what the caller sees (the first failure is).
    static void fail_unmade(Writer& results, std::uint32_t from, std::uint32_t end) {
        for (std::uint32_t i = from; i < end; ++i) {
            encode_outcome(results, [] {
                throw Error("crew: not made: an earlier call of its chunk failed");
            });
        }
    }

    // Writes the outcome of call(): what it appends to results, or the exception it throws.
    // Whether it threw.
    template <class Call>
    static bool encode_outcome(Writer& results, Call&& call) {
        // Room for the outcome and its length, filled in once the call has ended.
        const std::size_t start = results.size();
        const std::uint64_t unknown = 0;
        encode(results, Outcome::returned);
        encode(results, unknown);
        Outcome outcome = Outcome::returned;
        try {
            call();
        } catch (...) {
            results.truncate(start + sizeof(Outcome) + sizeof unknown);
            encode_current_exception(results);
            outcome = Outcome::threw;
        }
        const std::uint64_t length = results.size() - start - sizeof(Outcome) - sizeof unknown;
        results.overwrite(start, &outcome, sizeof outcome);
        results.overwrite(start + sizeof outcome, &length, sizeof length);
        return outcome == Outcome::threw;
    }

    // A call failed after returned values were packed: rewrites them one by one.
    static void unpack(Writer& results, std::size_t layout_at,
                       std::uint32_t returned) requires packable_result<R> {
        const std::span<const std::byte> packed =
            results.bytes().subspan(layout_at + sizeof(Layout), std::size_t{returned} * sizeof(R));
        std::vector<std::byte> values(packed.begin(), packed.end());
        results.truncate(layout_at);
        encode(results, Layout::one_by_one);
        for (std::uint32_t j = 0; j < returned; ++j) {
            encode_outcome(results, [&] {
                results.write_bytes(values.data() + std::size_t{j} * sizeof(R), sizeof(R));
            });
        }
    }

    static inline const bool registered =
        (register_entry_point(reinterpret_cast<std::uintptr_t>(&run)), true);
    template <class Counter>
    static inline const bool counting_registered =
        (register_entry_point(reinterpret_cast<std::uintptr_t>(&run_counting<Counter>)), true);
};

// Where a task's chunk entry point and its function (a function pointer) lie in the code: looked
// up once for all the chunks of a map rather than for each (a lookup takes the library's lock).
struct ChunkCode {
    CodeAddress entry;
    CodeAddress function;  // unused for a function object, which travels as itself
};

template <class F>
ChunkCode chunk_code_at(std::uintptr_t entry, const F& function) {
    ChunkCode code{code_address_of(entry), {}};
    if constexpr (function_pointer<F>) {
        code.function = code_address_of(reinterpret_cast<std::uintptr_t>(function));
    }
    return code;
}

// For chunks of calls with arguments appended one by one (begin_task).
template <class F, class Carried>
ChunkCode chunk_code(const F& function) {
    using Point = ChunkEntry<F, Carried>;
    (void)Point::registered;
    return chunk_code_at(reinterpret_cast<std::uintptr_t>(&Point::run), function);
}

// For chunks of calls taking first, first + 1, ...: the first is appended, then finish_task.
template <class F, class Carried, class Counter>
ChunkCode counting_chunk_code(const F& function) {
    using Point = ChunkEntry<F, Carried>;
    (void)Point::template counting_registered<Counter>;
    return chunk_code_at(reinterpret_cast<std::uintptr_t>(&Point::template run_counting<Counter>),
                         function);
}

// Starts a task message: room for its header (worker_protocol.hpp, set by the pool as it sends the
// task), the chunk entry point and the function, as code says (which must come from the same
// function). Append what the chunk's entry point reads, then finish_task with the count of calls.
// Returns where the count goes.
template <class F>
std::size_t begin_task(Writer& task, const ChunkCode& code, const F& function) {
    const TaskHeader header;
    task.write_bytes(&header, sizeof header);
    encode(task, code.entry);
    if constexpr (function_pointer<F>) {
        encode(task, code.function);
    } else if constexpr (serializable_function_object<F>) {
        encode(task, function);
    }
    const std::size_t count_at = task.size();
    encode(task, std::uint32_t{0});
    return count_at;
}

inline void finish_task(Writer& task, std::size_t count_at, std::uint32_t count) {
    task.overwrite(count_at, &count, sizeof count);
}

}  // namespace crew::detail
