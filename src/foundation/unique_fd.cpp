#include "crew/detail/unique_fd.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <unordered_map>

#include "crew/error.hpp"
#include "foundation/library_lock.hpp"

namespace crew::detail {
namespace {

struct Record {
    std::uint64_t serial;  // tells the handle that owns it from stale ones for the same number
    pid_t process;         // the process that opened it
};

// Guarded by library_mutex(). A fork child never writes to it to drop its parent's records (that
// would copy pages): records of other processes are simply not this process's to close.
struct FdList {
    std::unordered_map<int, Record> records;
    std::uint64_t next_serial = 1;
};

// Never destroyed: handles in static objects may still close descriptors after main returns.
FdList& fd_list() {
    static FdList* list = new FdList;
    return *list;
}

}  // namespace

UniqueFd::UniqueFd(int fd) : fd_(fd) {
    std::lock_guard lock(library_mutex());
    FdList& list = fd_list();
    serial_ = list.next_serial++;
    list.records[fd] = {serial_, ::getpid()};
}

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
        reset();
        fd_ = std::exchange(other.fd_, -1);
        serial_ = std::exchange(other.serial_, 0);
    }
    return *this;
}

void UniqueFd::reset() noexcept {
    if (fd_ < 0) return;
    {
        std::lock_guard lock(library_mutex());
        FdList& list = fd_list();
        auto record = list.records.find(fd_);
        if (record != list.records.end() && record->second.serial == serial_ &&
            record->second.process == ::getpid()) {
            list.records.erase(record);
            ::close(fd_);
        }
    }
    fd_ = -1;
    serial_ = 0;
}

int UniqueFd::release() noexcept {
    if (fd_ >= 0) {
        std::lock_guard lock(library_mutex());
        FdList& list = fd_list();
        auto record = list.records.find(fd_);
        if (record != list.records.end() && record->second.serial == serial_) {
            list.records.erase(record);
        }
    }
    serial_ = 0;
    return std::exchange(fd_, -1);
}

void close_library_fds_in_child(pid_t parent, std::span<const int> keep) noexcept {
    std::lock_guard lock(library_mutex());
    for (const auto& [fd, record] : fd_list().records) {
        if (record.process == parent && std::find(keep.begin(), keep.end(), fd) == keep.end()) {
            ::close(fd);
        }
    }
}

UniqueFd make_eventfd(std::string_view what) {
    const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) throw_system_error(std::string("cannot create ").append(what));
    return UniqueFd(fd);
}

std::pair<UniqueFd, UniqueFd> make_socket_pair(std::string_view what) {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
        throw_system_error(std::string("cannot create ").append(what));
    }
    return {UniqueFd(pair[0]), UniqueFd(pair[1])};
}

UniqueFd duplicate(int fd, std::string_view what) {
    const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) throw_system_error(std::string("cannot duplicate ").append(what));
    return UniqueFd(copy);
}

}  // namespace crew::detail
