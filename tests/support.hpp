// Helpers shared by crew's tests.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <crew/parallel_backend.hpp>
#include <crew/pool.hpp>

namespace crew::testing {

// AddressSanitizer keeps freed memory in quarantine, so resident memory says nothing under it,
// and everything runs ten times slower: memory bounds are checked in the optimised build.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool address_sanitizer = true;
#else
inline constexpr bool address_sanitizer = false;
#endif

// This process's resident memory (VmRSS), in KiB.
long resident_kib();

// A fresh directory under /tmp, removed with everything in it when the object goes.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::string file(const std::string& name) const { return (path_ / name).string(); }

  private:
    std::filesystem::path path_;
};

std::string read_file(const std::string& path);

// The descriptors open in this process.
std::set<int> open_fds();

// The pids of this process's children, zombies included.
std::set<pid_t> child_pids();

// Whether a process with this pid exists and is not a zombie.
bool process_exists(pid_t pid);

// A process's name (what ps shows), empty if there is no such process.
std::string process_name(pid_t pid);

// The children of a process, zombies included, whichever of its threads started them.
std::vector<pid_t> children_of(pid_t pid);

struct ProgramRun {
    int exit_status = -1;  // as from waitpid
    std::string output;    // stdout and stderr together
};

// Runs a program to its end, capturing its output; kills it after timeout.
ProgramRun run_program(const std::vector<std::string>& argv,
                       std::chrono::seconds timeout = std::chrono::seconds(60));

// Starts a program whose stdout is read through the returned descriptor.
struct StartedProgram {
    pid_t pid = -1;
    int output = -1;
};
StartedProgram start_program(const std::vector<std::string>& argv);

// Reads one line from fd, waiting at most timeout; empty at end of file or on timeout.
std::string read_line(int fd, std::chrono::milliseconds timeout);

// A crew::Parallel backend for tests: each batch goes to a crew::Pool of its own as a call of
// crew::run_batch, so that a crash there fails only its batch (or it runs again, under the
// pool's retries).
class PoolBackend : public crew::ParallelBackendBase {
  public:
    explicit PoolBackend(const crew::PoolOptions& options) : pool_(options) {}
    int effective_n_jobs() const override { return pool_.processes(); }
    void apply_async(std::vector<std::byte> batch, crew::BatchCallback done) override;

  private:
    crew::Pool pool_;
};

// The ways a pool task fails, for tests that fail one task among many.
enum class Fault { exception, crash, abort, hang };
inline constexpr Fault every_fault[] = {Fault::exception, Fault::crash, Fault::abort, Fault::hang};
std::string to_string(Fault fault);

// A task's argument: fail_at_five returns value, except for the value 5, for which it fails as
// fault says (hang: sleeps a minute, for a pool's task_timeout to end).
struct FaultyItem {
    Fault fault;
    int value;
};
int fail_at_five(FaultyItem item);
std::vector<FaultyItem> faulty_items(Fault fault, int count);  // values 0 to count - 1

// What an error of a pool task is, in a few words: "RemoteError std::invalid_argument",
// "WorkerDied signal 11", "TimeoutError"; and what the fault gives.
std::string describe_failure(std::exception_ptr error);
std::string expected_failure(Fault fault);

}  // namespace crew::testing
