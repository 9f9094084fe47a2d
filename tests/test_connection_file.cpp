// The cluster's connection files (src/cluster/connection_file.hpp): written whole and private
// (0700 directory, 0600 file), read back the same; the path from the profile and HOME; refused,
// with the file named, when others may read it, when it is missing, and for each way its
// contents can be wrong.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <crew/error.hpp>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>

#include "cluster/connection_file.hpp"
#include "support.hpp"

namespace {

using crew::detail::ClusterKey;
using crew::detail::connection_file_path;
using crew::detail::ConnectionInfo;
using crew::detail::read_connection_file;
using crew::detail::write_connection_file;

ConnectionInfo an_info() {
    return {"default", "tcp://127.0.0.1:40001", "tcp://127.0.0.1:40002", ClusterKey::generate()};
}

unsigned mode_of(const std::filesystem::path& path) {
    struct stat status {};
    EXPECT_EQ(::stat(path.c_str(), &status), 0) << path;
    return status.st_mode & 0777;
}

// Writes text as a private file, for reading to refuse.
void write_private(const std::filesystem::path& path, const std::string& text) {
    std::ofstream(path) << text;
    std::filesystem::permissions(
        path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

// What reading path throws, or nothing.
std::optional<std::string> refusal_of(const std::filesystem::path& path) {
    try {
        (void)read_connection_file(path);
    } catch (const crew::Error& error) {
        return error.what();
    }
    return std::nullopt;
}

TEST(ConnectionFile, ComesBackAsWrittenAndStaysPrivate) {
    crew::testing::TempDir temp;
    const auto path = temp.path() / ".crew" / "cluster-default.json";
    const ConnectionInfo written = an_info();
    write_connection_file(path, written);
    EXPECT_EQ(mode_of(path.parent_path()), 0700u);
    EXPECT_EQ(mode_of(path), 0600u);
    EXPECT_FALSE(std::filesystem::exists(path.string() + ".partial"));
    const ConnectionInfo read = read_connection_file(path);
    EXPECT_EQ(read.profile, written.profile);
    EXPECT_EQ(read.client_endpoint, written.client_endpoint);
    EXPECT_EQ(read.engine_endpoint, written.engine_endpoint);
    EXPECT_TRUE(
        std::equal(read.key.bytes().begin(), read.key.bytes().end(), written.key.bytes().begin()));
    // Written again, it is replaced whole.
    const ConnectionInfo again = an_info();
    write_connection_file(path, again);
    const ConnectionInfo reread = read_connection_file(path);
    EXPECT_TRUE(std::equal(reread.key.bytes().begin(), reread.key.bytes().end(),
                           again.key.bytes().begin()));
}

TEST(ConnectionFile, ThePathComesFromTheProfileAndHome) {
    crew::testing::TempDir temp;
    const char* home = std::getenv("HOME");
    const std::optional<std::string> saved = home ? std::optional<std::string>(home) : std::nullopt;
    ::setenv("HOME", temp.path().c_str(), 1);
    EXPECT_EQ(connection_file_path("default"), temp.path() / ".crew" / "cluster-default.json");
    EXPECT_THROW((void)connection_file_path("../elsewhere"), crew::Error);
    EXPECT_THROW((void)connection_file_path(""), crew::Error);
    ::unsetenv("HOME");
    EXPECT_THROW((void)connection_file_path("default"), crew::Error);
    if (saved) ::setenv("HOME", saved->c_str(), 1);
}

TEST(ConnectionFile, AFileOthersMayReadIsRefused) {
    crew::testing::TempDir temp;
    const auto path = temp.path() / "cluster-default.json";
    write_connection_file(path, an_info());
    std::filesystem::permissions(path, std::filesystem::perms::group_read,
                                 std::filesystem::perm_options::add);
    const auto refusal = refusal_of(path);
    ASSERT_TRUE(refusal.has_value());
    EXPECT_NE(refusal->find("chmod 600"), std::string::npos) << *refusal;
    EXPECT_NE(refusal->find(path.string()), std::string::npos) << *refusal;
}

TEST(ConnectionFile, AMissingFileSaysSo) {
    crew::testing::TempDir temp;
    const auto refusal = refusal_of(temp.path() / "cluster-none.json");
    ASSERT_TRUE(refusal.has_value());
    EXPECT_NE(refusal->find("is the cluster started"), std::string::npos) << *refusal;
}

TEST(ConnectionFile, WrongContentsAreRefusedByName) {
    crew::testing::TempDir temp;
    const std::string key(64, 'a');
    const std::string good_rest =
        "\"client_endpoint\": \"tcp://127.0.0.1:1\", "
        "\"engine_endpoint\": \"tcp://127.0.0.1:2\", "
        "\"signature_scheme\": \"hmac-sha256\"";
    const struct {
        const char* name;
        std::string text;
        const char* expected;
    } cases[] = {
        {"not_json", "{ this is not json", "is not a JSON object"},
        {"an_array", "[1, 2]", "is not a JSON object"},
        {"no_key", "{\"profile\": \"p\", " + good_rest + "}", "holds no key"},
        {"short_key", "{\"profile\": \"p\", \"key\": \"abcd\", " + good_rest + "}",
         "64 hexadecimal digits"},
        {"not_hex",
         "{\"profile\": \"p\", \"key\": \"" + std::string(64, 'z') + "\", " + good_rest + "}",
         "64 hexadecimal digits"},
        {"ipc_endpoint",
         "{\"profile\": \"p\", \"key\": \"" + key +
             "\", \"client_endpoint\": \"ipc:///tmp/x\", \"engine_endpoint\": "
             "\"tcp://127.0.0.1:2\", \"signature_scheme\": \"hmac-sha256\"}",
         "tcp:// endpoint \"client_endpoint\""},
        {"other_scheme",
         "{\"profile\": \"p\", \"key\": \"" + key +
             "\", \"client_endpoint\": \"tcp://127.0.0.1:1\", \"engine_endpoint\": "
             "\"tcp://127.0.0.1:2\", \"signature_scheme\": \"md5\"}",
         "signature_scheme"},
    };
    for (const auto& wrong : cases) {
        const auto path = temp.path() / (std::string(wrong.name) + ".json");
        write_private(path, wrong.text);
        const auto refusal = refusal_of(path);
        ASSERT_TRUE(refusal.has_value()) << wrong.name;
        EXPECT_NE(refusal->find(wrong.expected), std::string::npos)
            << wrong.name << ": " << *refusal;
        EXPECT_NE(refusal->find(path.string()), std::string::npos) << *refusal;
    }
    // The same contents with a good key are read.
    const auto good = temp.path() / "good.json";
    write_private(good, "{\"profile\": \"p\", \"key\": \"" + key + "\", " + good_rest + "}");
    EXPECT_EQ(read_connection_file(good).profile, "p");
}

}  // namespace
