// Callables cross a process boundary by name, and the receiving side checks the name before it
// calls anything.
#include <gtest/gtest.h>

#include <crew/detail/callable.hpp>
#include <string>
#include <vector>

namespace {

using crew::detail::CodeAddress;
using crew::detail::decode;
using crew::detail::encode;
using crew::detail::Reader;
using crew::detail::Writer;

int add(int a, int b) {
    return a + b;
}
std::size_t length_of(const char* text) {
    return std::string(text).size();
}
std::string repeat(std::string text, int times) {
    std::string out;
    for (int i = 0; i < times; ++i) out += text;
    return out;
}
int data_not_code = 5;

struct Scale {  // a function object with state: sent by value
    double factor = 1.0;
    double operator()(double x) const { return x * factor; }
    template <class Archive>
    void serialize(Archive& archive) {
        archive(factor);
    }
};

struct Negate {  // empty: rebuilt by default construction
    int operator()(int x) const { return -x; }
};

template <class Result>
Result invoke(std::span<const std::byte> call) {
    Reader reader(call);
    Writer result;
    crew::detail::invoke_call(reader, result);
    EXPECT_EQ(reader.remaining(), 0u);
    Reader result_reader(result.bytes());
    return decode<Result>(result_reader);
}

TEST(Callable, FunctionPointer) {
    Writer call;
    crew::detail::encode_call(call, &add, 2, 40);
    EXPECT_EQ(invoke<int>(call.bytes()), 42);
}

TEST(Callable, ArgumentsConvertToTheParameterTypes) {
    Writer call;
    crew::detail::encode_call(call, &repeat, "ab", 3);  // a C string becomes std::string
    EXPECT_EQ(invoke<std::string>(call.bytes()), "ababab");
    Writer c_string_call;
    crew::detail::encode_call(c_string_call, &length_of, std::string("four"));
    EXPECT_EQ(invoke<std::size_t>(c_string_call.bytes()), 4u);
}

TEST(Callable, LambdaWithoutCaptures) {
    auto twice = [](std::vector<int> values) {
        for (int& v : values) v *= 2;
        return values;
    };
    Writer call;
    crew::detail::encode_call(call, twice, std::vector<int>{1, 2, 3});
    EXPECT_EQ(invoke<std::vector<int>>(call.bytes()), (std::vector<int>{2, 4, 6}));
}

TEST(Callable, FunctionObjects) {
    Writer call;
    crew::detail::encode_call(call, Scale{2.5}, 4.0);
    EXPECT_DOUBLE_EQ(invoke<double>(call.bytes()), 10.0);
    Writer empty_call;
    crew::detail::encode_call(empty_call, Negate{}, 9);
    EXPECT_EQ(invoke<int>(empty_call.bytes()), -9);
}

TEST(Callable, ExceptionsFromTheFunctionPropagate) {
    auto thrower = [](int) -> int { throw std::runtime_error("from the callee"); };
    Writer call;
    crew::detail::encode_call(call, thrower, 1);
    EXPECT_THROW(invoke<int>(call.bytes()), std::runtime_error);
}

// A call's bytes: the entry point's address, then the function's address, then the arguments.
struct DecodedCall {
    CodeAddress entry;
    CodeAddress function;
    int a;
    int b;
};

DecodedCall split(const Writer& call) {
    Reader reader(call.bytes());
    DecodedCall parts{decode<CodeAddress>(reader), decode<CodeAddress>(reader), 0, 0};
    parts.a = decode<int>(reader);
    parts.b = decode<int>(reader);
    return parts;
}

std::vector<std::byte> join(const DecodedCall& parts) {
    Writer call;
    encode(call, parts.entry);
    encode(call, parts.function);
    encode(call, parts.a);
    encode(call, parts.b);
    return {call.bytes().begin(), call.bytes().end()};
}

TEST(Callable, AnAddressThatIsNoEntryPointIsRefused) {
    Writer call;
    crew::detail::encode_call(call, &add, 1, 2);
    DecodedCall parts = split(call);
    parts.entry = parts.function;  // a real function, but not a crew entry point
    EXPECT_THROW(invoke<int>(join(parts)), crew::UnknownCallableError);
    parts.entry.offset += 1;
    EXPECT_THROW(invoke<int>(join(parts)), crew::UnknownCallableError);
}

TEST(Callable, AnotherBuildIsRefused) {
    Writer call;
    crew::detail::encode_call(call, &add, 1, 2);
    DecodedCall parts = split(call);
    parts.entry.build_id[0] ^= 0xff;
    EXPECT_THROW(invoke<int>(join(parts)), crew::UnknownCallableError);
    parts = split(call);
    parts.function.build_id[3] ^= 0x01;
    EXPECT_THROW(invoke<int>(join(parts)), crew::UnknownCallableError);
}

TEST(Callable, AFunctionAddressMustBeAFunctionsStart) {
    Writer call;
    crew::detail::encode_call(call, &add, 1, 2);
    DecodedCall parts = split(call);
    EXPECT_EQ(invoke<int>(join(parts)), 3);  // unchanged, it works
    parts.function.offset += 1;              // into the middle of add
    EXPECT_THROW(invoke<int>(join(parts)), crew::UnknownCallableError);
    parts.function =
        crew::detail::code_address_of(reinterpret_cast<std::uintptr_t>(&data_not_code));
    EXPECT_THROW(invoke<int>(join(parts)), crew::UnknownCallableError);
}

TEST(Callable, CodeAddressesNameTheModuleByBuildId) {
    CodeAddress where = crew::detail::code_address_of(reinterpret_cast<std::uintptr_t>(&add));
    EXPECT_GE(where.build_id_size, 8);
    EXPECT_EQ(crew::detail::resolve_function(where), reinterpret_cast<std::uintptr_t>(&add));
    EXPECT_THROW(crew::detail::code_address_of(0x10), crew::Error);
}

}  // namespace
