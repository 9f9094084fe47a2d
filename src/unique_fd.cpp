#include "crew/detail/unique_fd.hpp"

#include <pthread.h>
#include <unistd.h>

#include <mutex>
#include <unordered_map>

namespace crew::detail {
namespace {

struct FdList {
    std::mutex mutex;
    std::unordered_map<int, std::uint64_t> serial_of;  // open descriptor -> serial of its owner
    std::uint64_t next_serial = 1;
};

// Never destroyed: handles in static objects may still close descriptors after main returns.
// Whoever forks, the child gets the list whole and unlocked.
FdList& fd_list() {
    static FdList* list = [] {
        auto* created = new FdList;
        pthread_atfork([] { fd_list().mutex.lock(); }, [] { fd_list().mutex.unlock(); },
                       [] { fd_list().mutex.unlock(); });
        return created;
    }();
    return *list;
}

}  // namespace

UniqueFd::UniqueFd(int fd) : fd_(fd) {
    FdList& list = fd_list();
    std::lock_guard lock(list.mutex);
    serial_ = list.next_serial++;
    list.serial_of[fd] = serial_;
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
    FdList& list = fd_list();
    {
        std::lock_guard lock(list.mutex);
        auto record = list.serial_of.find(fd_);
        if (record != list.serial_of.end() && record->second == serial_) {
            list.serial_of.erase(record);
            ::close(fd_);
        }
    }
    fd_ = -1;
    serial_ = 0;
}

void create_fd_list() { (void)fd_list(); }

void close_library_fds_in_child() noexcept {
    FdList& list = fd_list();
    std::lock_guard lock(list.mutex);
    for (const auto& [fd, serial] : list.serial_of) ::close(fd);
    list.serial_of.clear();
}

}  // namespace crew::detail
