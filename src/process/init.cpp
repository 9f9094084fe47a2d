#include "crew/init.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <vector>

#include "crew/error.hpp"
#include "crew/start_method.hpp"
#include "foundation/log.hpp"
#include "process/child.hpp"
#include "process/fork_server.hpp"
#include "process/program.hpp"

namespace crew {
namespace {

struct Program {
    std::mutex mutex;                      // serialises init; readers need only `initialized`
    std::atomic<bool> initialized{false};  // set once arguments are written
    std::vector<std::string> arguments;
};

Program& program() {
    static Program* instance = new Program;
    return *instance;
}

// This run of the program is a spawn child: read the request and run it, never returning.
[[noreturn]] void run_spawned_child(const char* descriptor) {
    int fd = std::atoi(descriptor);
    ::unsetenv(detail::spawn_request_variable);  // the child's own children must not see it
    std::vector<std::byte> bytes;
    struct stat status {};
    bool read_all = ::fstat(fd, &status) == 0;
    if (read_all) {
        bytes.resize(static_cast<std::size_t>(status.st_size));
        read_all = ::pread(fd, bytes.data(), bytes.size(), 0) == status.st_size;
    }
    ::close(fd);
    if (!read_all) {
        std::string message = fmt::format(
            "crew: a spawned child could not read its request from "
            "descriptor {}\n",
            descriptor);
        detail::write_to_stderr(message);
        ::_exit(1);
    }
    detail::ChildRequest request = detail::decode_child_request(bytes);
    // The passed descriptors kept their numbers through exec; they are crew's again, not to be
    // inherited by this child's own children.
    for (int fd : request.fds) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    detail::run_child_request(request);
}

}  // namespace

void init(int argc, char** argv) {
    {
        Program& p = program();
        std::lock_guard lock(p.mutex);
        if (p.initialized) return;
        p.arguments.assign(argv, argv + argc);
        p.initialized = true;
    }
    // A spawn child was executed with the program's argv, so it may spawn children of its own.
    if (const char* descriptor = std::getenv(detail::spawn_request_variable)) {
        run_spawned_child(descriptor);
    }
    if (get_start_method() == StartMethod::forkserver) detail::ensure_fork_server();
}

int cpu_count() {
    cpu_set_t cpus;
    if (::sched_getaffinity(0, sizeof cpus, &cpus) == 0) return CPU_COUNT(&cpus);
    long online = ::sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? static_cast<int>(online) : 1;
}

namespace detail {

bool initialized() {
    return program().initialized.load();
}

const std::vector<std::string>& program_arguments() {
    return program().arguments;
}

}  // namespace detail
}  // namespace crew
