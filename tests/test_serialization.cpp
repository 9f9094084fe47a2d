// What may cross a process boundary: round trips through crew's serialization layer.
#include <fcntl.h>
#include <sys/mman.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <crew/serialization.hpp>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <variant>
#include <vector>

namespace {

using crew::detail::decode;
using crew::detail::encode;
using crew::detail::Reader;
using crew::detail::Writer;

template <class T>
T round_trip(const T& value) {
    Writer writer;
    encode(writer, value);
    Reader reader(writer.bytes());
    T back = decode<T>(reader);
    EXPECT_EQ(reader.remaining(), 0u) << "decode left bytes unread";
    return back;
}

struct Sample {
    std::string label;
    std::vector<double> values;
    std::map<std::string, int> counts;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(label, values, counts);
    }
    bool operator==(const Sample&) const = default;
};

struct Point {  // trivially copyable: travels as raw bytes
    int x;
    double y;
    bool operator==(const Point&) const = default;
};

struct NoSerialize {
    std::string text;
};

TEST(Serialization, Scalars) {
    EXPECT_EQ(round_trip(42), 42);
    EXPECT_EQ(round_trip(-7LL), -7LL);
    EXPECT_EQ(round_trip(std::uint8_t{255}), 255);
    EXPECT_DOUBLE_EQ(round_trip(3.25), 3.25);
    EXPECT_EQ(round_trip(true), true);
    EXPECT_EQ(round_trip(false), false);
}

TEST(Serialization, Strings) {
    EXPECT_EQ(round_trip(std::string()), "");
    EXPECT_EQ(round_trip(std::string("hello, crew")), "hello, crew");
    std::string binary("a\0b\xff", 4);
    EXPECT_EQ(round_trip(binary), binary);
}

TEST(Serialization, MillionDoublesTravelAsRawBytes) {
    std::vector<double> values(1'000'000);
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<double>(i) * 0.5;
    Writer writer;
    encode(writer, values);
    // A length and the elements' bytes, nothing per element.
    EXPECT_EQ(writer.size(), sizeof(std::uint64_t) + values.size() * sizeof(double));
    Reader reader(writer.bytes());
    EXPECT_EQ(decode<std::vector<double>>(reader), values);
}

TEST(Serialization, FilesystemPaths) {
    static_assert(crew::serializable<std::filesystem::path>);
    EXPECT_EQ(round_trip(std::filesystem::path("/tmp/data/run 1.csv")),
              std::filesystem::path("/tmp/data/run 1.csv"));
    EXPECT_EQ(round_trip(std::filesystem::path()), std::filesystem::path());
    const std::vector<std::filesystem::path> files{"a.txt", "dir/b.txt"};
    EXPECT_EQ(round_trip(files), files);
}

TEST(Serialization, StdContainers) {
    std::map<std::string, std::vector<int>> map{{"a", {1, 2}}, {"b", {}}};
    EXPECT_EQ(round_trip(map), map);
    EXPECT_EQ(round_trip(std::optional<int>{}), std::nullopt);
    EXPECT_EQ(round_trip(std::optional<std::string>{"x"}), std::optional<std::string>{"x"});
    auto tuple = std::make_tuple(1, std::string("two"), 3.0);
    EXPECT_EQ(round_trip(tuple), tuple);
    std::variant<int, std::string> variant = std::string("text");
    EXPECT_EQ(round_trip(variant), variant);
    variant = 5;
    EXPECT_EQ(round_trip(variant), variant);
    std::vector<std::string> strings{"x", "", "zzz"};
    EXPECT_EQ(round_trip(strings), strings);
}

TEST(Serialization, UserStructWithSerialize) {
    Sample sample{"s", {1.5, 2.5}, {{"k", 3}}};
    EXPECT_EQ(round_trip(sample), sample);
}

TEST(Serialization, TriviallyCopyableStructs) {
    Point p{3, 4.5};
    EXPECT_EQ(round_trip(p), p);
    std::vector<Point> points{{1, 1.0}, {2, 2.0}};
    EXPECT_EQ(round_trip(points), points);
}

TEST(Serialization, Nesting) {
    using Nested = std::map<std::string, std::vector<std::optional<std::tuple<int, Sample>>>>;
    Nested nested{{"first", {std::nullopt, std::make_tuple(1, Sample{"in", {0.25}, {}})}},
                  {"second", {}}};
    EXPECT_EQ(round_trip(nested), nested);
    std::vector<std::variant<int, std::map<int, std::string>>> mixed{
        7, std::map<int, std::string>{{1, "one"}}};
    EXPECT_EQ(round_trip(mixed), mixed);
}

TEST(Serialization, SeveralValuesInOneMessage) {
    Writer writer;
    encode(writer, 1);
    encode(writer, std::string("middle"));
    encode(writer, std::map<int, int>{{2, 3}});
    encode(writer, 4.0);
    Reader reader(writer.bytes());
    EXPECT_EQ(decode<int>(reader), 1);
    EXPECT_EQ(decode<std::string>(reader), "middle");
    EXPECT_EQ((decode<std::map<int, int>>(reader)), (std::map<int, int>{{2, 3}}));
    EXPECT_EQ(decode<double>(reader), 4.0);
    EXPECT_EQ(reader.remaining(), 0u);
}

TEST(Serialization, WriterIsReusedWithoutLosingCapacity) {
    Writer writer;
    encode(writer, std::vector<double>(1000, 1.0));
    writer.clear();
    EXPECT_EQ(writer.size(), 0u);
    encode(writer, std::string("again"));
    Reader reader(writer.bytes());
    EXPECT_EQ(decode<std::string>(reader), "again");
}

TEST(Serialization, TruncatedMessagesAreErrorsNotCrashes) {
    Writer writer;
    encode(writer, std::vector<double>(100, 2.0));
    encode(writer, std::map<std::string, int>{{"key", 1}});
    std::span<const std::byte> whole = writer.bytes();
    for (std::size_t cut : {std::size_t{0}, std::size_t{3}, std::size_t{100}, whole.size() - 1}) {
        auto decode_both = [&] {
            Reader reader(whole.first(cut));
            (void)decode<std::vector<double>>(reader);
            (void)decode<std::map<std::string, int>>(reader);
        };
        EXPECT_THROW(decode_both(), crew::Error) << "cut at " << cut;
    }
}

TEST(Serialization, ALengthLargerThanTheMessageIsRefusedBeforeAllocating) {
    Writer writer;
    encode(writer, std::uint64_t{1} << 60);
    Reader reader(writer.bytes());
    EXPECT_THROW((void)decode<std::vector<double>>(reader), crew::Error);
}

TEST(Serialization, TheConceptSaysWhatCanTravel) {
    static_assert(crew::serializable<int>);
    static_assert(crew::serializable<Point>);
    static_assert(crew::serializable<std::vector<Point>>);
    static_assert(crew::serializable<Sample>);
    static_assert(crew::serializable<std::map<std::string, std::vector<Sample>>>);
    static_assert(!crew::serializable<int*>);
    static_assert(!crew::serializable<const char*>);
    static_assert(!crew::serializable<std::string_view>);
    static_assert(!crew::serializable<std::span<int>>);
    static_assert(!crew::serializable<NoSerialize>);
    static_assert(!crew::serializable<std::vector<NoSerialize>>);
    static_assert(!crew::serializable<std::map<int, std::optional<NoSerialize>>>);
    SUCCEED();
}

// One file (shared memory) attached twice travels once (a large argument shared by a chunk's calls), and each
// object decoded from it owns a descriptor of its own, so that none closes another's; the
// Reader closes the ones that came with the message.
TEST(Serialization, ADescriptorAttachedTwiceTravelsOnceAndIsOwnedTwice) {
    const int file = ::memfd_create("crew-test", MFD_CLOEXEC);
    ASSERT_GE(file, 0);
    const int same_file = ::dup(file);
    const int other_file = ::memfd_create("crew-test", MFD_CLOEXEC);
    Writer writer;
    encode(writer, crew::detail::SentFd{file});
    encode(writer, crew::detail::SentFd{same_file});
    encode(writer, crew::detail::SentFd{other_file});
    ASSERT_EQ(writer.attached_fds().size(), 2u);
    std::vector<crew::detail::UniqueFd> sent = writer.take_fds();
    const std::vector<int> arrived{sent[0].release(), sent[1].release()};
    std::vector<int> decoded;
    {
        Reader reader(writer.bytes(), arrived);
        for (int i = 0; i < 3; ++i) decoded.push_back(decode<crew::detail::SentFd>(reader).fd);
    }
    EXPECT_NE(decoded[0], decoded[1]) << "two owners of one descriptor";
    struct stat first {
    }, second{}, third{}, zero{};
    ASSERT_EQ(::fstat(decoded[0], &first), 0);
    ASSERT_EQ(::fstat(decoded[1], &second), 0);
    ASSERT_EQ(::fstat(decoded[2], &third), 0);
    ASSERT_EQ(::fstat(other_file, &zero), 0);
    EXPECT_EQ(first.st_ino, second.st_ino);
    EXPECT_EQ(third.st_ino, zero.st_ino);
    for (int fd : arrived) EXPECT_EQ(::fcntl(fd, F_GETFD), -1) << "the Reader left it open";
    for (int fd : decoded) ::close(fd);
    for (int fd : {file, same_file, other_file}) ::close(fd);
}

}  // namespace
