#include "cluster/connection_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <span>

#include "crew/detail/unique_fd.hpp"
#include "crew/error.hpp"

namespace crew::detail {
namespace {

constexpr const char* signature_scheme = "hmac-sha256";

std::string hex_of(std::span<const std::byte> bytes) {
    std::string text;
    for (std::byte b : bytes) text += fmt::format("{:02x}", static_cast<unsigned>(b));
    return text;
}

[[noreturn]] void refuse(const std::filesystem::path& path, const std::string& what) {
    throw Error(fmt::format("crew: the cluster connection file {} {}", path.string(), what));
}

ClusterKey key_of_hex(const std::filesystem::path& path, const std::string& hex) {
    if (hex.size() != 2 * cluster_key_bytes || !std::all_of(hex.begin(), hex.end(), [](char c) {
            return std::isxdigit(static_cast<unsigned char>(c)) != 0;
        })) {
        refuse(path, fmt::format("has a key that is not {} hexadecimal digits; start the cluster "
                                 "again to make a new file",
                                 2 * cluster_key_bytes));
    }
    std::array<std::byte, cluster_key_bytes> bytes{};
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        bytes[i] = static_cast<std::byte>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
    }
    ClusterKey key = ClusterKey::from_bytes(bytes);
    std::fill(bytes.begin(), bytes.end(), std::byte{0});
    return key;
}

std::string endpoint_of(const std::filesystem::path& path, const nlohmann::json& json,
                        const char* name) {
    const auto found = json.find(name);
    if (found == json.end() || !found->is_string() ||
        found->get<std::string>().rfind("tcp://", 0) != 0) {
        refuse(path, fmt::format("has no tcp:// endpoint \"{}\"", name));
    }
    return found->get<std::string>();
}

void make_private_directory(const std::filesystem::path& directory) {
    if (::mkdir(directory.c_str(), 0700) != 0 && errno != EEXIST) {
        throw_system_error("cannot make the directory " + directory.string());
    }
}

}  // namespace

std::filesystem::path connection_file_path(const std::string& profile) {
    if (profile.empty() || !std::all_of(profile.begin(), profile.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
        })) {
        throw Error(fmt::format(
            "crew: the cluster profile \"{}\" may hold only letters, digits, '-' and '_'",
            profile));
    }
    const char* home = std::getenv("HOME");
    if (home == nullptr || *home == '\0') {
        throw Error(
            "crew: HOME is not set, so there is no ~/.crew for the connection file; set "
            "HOME, or give the file's path");
    }
    return std::filesystem::path(home) / ".crew" / ("cluster-" + profile + ".json");
}

void write_connection_file(const std::filesystem::path& path, const ConnectionInfo& info) {
    make_private_directory(path.parent_path());
    const nlohmann::json json = {{"profile", info.profile},
                                 {"client_endpoint", info.client_endpoint},
                                 {"engine_endpoint", info.engine_endpoint},
                                 {"signature_scheme", signature_scheme},
                                 {"key", hex_of(info.key.bytes())}};
    const std::string text = json.dump(2) + "\n";
    const std::filesystem::path partial = path.string() + ".partial";
    const int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw_system_error("cannot write " + partial.string());
    const bool whole = ::fchmod(fd, 0600) == 0 &&
                       ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                       ::fsync(fd) == 0;
    const int saved = errno;
    ::close(fd);
    if (!whole || ::rename(partial.c_str(), path.c_str()) != 0) {
        const int error = whole ? errno : saved;
        ::unlink(partial.c_str());
        errno = error;
        throw_system_error("cannot write " + path.string());
    }
}

ConnectionInfo read_connection_file(const std::filesystem::path& path) {
    // The mode is checked on the descriptor that is read, not on the path before opening it.
    const int opened = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (opened < 0) {
        throw_system_error("cannot read the cluster connection file " + path.string() +
                           " (is the cluster started?)");
    }
    const UniqueFd file(opened);
    struct stat status {};
    if (::fstat(file.get(), &status) != 0) {
        throw_system_error("cannot inspect the cluster connection file " + path.string());
    }
    if ((status.st_mode & 077) != 0) {
        refuse(path, fmt::format("may be read by others (mode {:o}): its key lets anyone run code "
                                 "on the cluster; chmod 600 it, or start the cluster again",
                                 status.st_mode & 0777));
    }
    std::string text(static_cast<std::size_t>(status.st_size), '\0');
    if (::pread(file.get(), text.data(), text.size(), 0) != status.st_size) {
        throw_system_error("cannot read the cluster connection file " + path.string());
    }
    const nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
    if (json.is_discarded() || !json.is_object()) refuse(path, "is not a JSON object");
    const auto scheme = json.find("signature_scheme");
    if (scheme == json.end() || *scheme != signature_scheme) {
        refuse(path, fmt::format("does not say \"signature_scheme\": \"{}\"", signature_scheme));
    }
    const auto profile = json.find("profile");
    const auto key = json.find("key");
    if (profile == json.end() || !profile->is_string()) refuse(path, "names no profile");
    if (key == json.end() || !key->is_string()) refuse(path, "holds no key");
    return {profile->get<std::string>(), endpoint_of(path, json, "client_endpoint"),
            endpoint_of(path, json, "engine_endpoint"), key_of_hex(path, key->get<std::string>())};
}

}  // namespace crew::detail
