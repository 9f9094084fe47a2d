// cluster/connection_file.hpp: how a cluster's clients and engines find it and prove they belong
// (design.md section 6; IPython parallel's ipcontroller-client.json).
//
// A connection file is JSON: the profile, the endpoint clients connect to, the one engines connect
// to, and the key every message is signed with, in hex. It lives in ~/.crew/cluster-<profile>.json,
// readable by its owner only: the directory is made 0700 and the file 0600, written whole under
// another name and renamed, so that no reader sees half a file. Reading refuses, with crew::Error
// naming the file and what to do, a file others may read, one that is not such JSON, an endpoint
// that is not tcp://, and a key of another length.
#pragma once

#include <filesystem>
#include <string>

#include "cluster/signed_message.hpp"

namespace crew::detail {

struct ConnectionInfo {
    std::string profile;
    std::string client_endpoint;  // where clients connect
    std::string engine_endpoint;  // where engines connect
    ClusterKey key;
};

// ~/.crew/cluster-<profile>.json; throws crew::Error for a profile of other characters than
// letters, digits, '-' and '_', or without HOME.
std::filesystem::path connection_file_path(const std::string& profile);

void write_connection_file(const std::filesystem::path& path, const ConnectionInfo& info);
ConnectionInfo read_connection_file(const std::filesystem::path& path);

}  // namespace crew::detail
