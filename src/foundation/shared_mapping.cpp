#include "crew/detail/shared_mapping.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <utility>

#include "crew/error.hpp"

namespace crew::detail {
namespace {

std::byte* map_shared(int fd, std::size_t size, SharedMapping::Pages pages) {
    const bool populate = pages == SharedMapping::Pages::touched;
    int flags = MAP_SHARED | (populate ? MAP_POPULATE : MAP_NORESERVE);
    void* address = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, flags, fd, 0);
    if (address == MAP_FAILED)
        throw_system_error("cannot map " + std::to_string(size) + " bytes of shared memory");
    return static_cast<std::byte*>(address);
}

}  // namespace

SharedMapping SharedMapping::create(std::size_t size, const char* name, Pages pages) {
    int fd = ::memfd_create(name, MFD_CLOEXEC);
    if (fd < 0) throw_system_error(std::string("cannot create shared memory ") + name);
    SharedMapping mapping;
    mapping.fd_ = UniqueFd(fd);
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
        throw_system_error("cannot size shared memory " + std::string(name) + " to " +
                           std::to_string(size) + " bytes");
    }
    mapping.data_ = map_shared(fd, size, pages);
    mapping.size_ = size;
    return mapping;
}

SharedMapping SharedMapping::attach(UniqueFd fd, Pages pages) {
    struct stat status {};
    if (::fstat(fd.get(), &status) != 0) throw_system_error("cannot stat shared memory");
    SharedMapping mapping;
    mapping.size_ = static_cast<std::size_t>(status.st_size);
    mapping.data_ = map_shared(fd.get(), mapping.size_, pages);
    mapping.fd_ = std::move(fd);
    return mapping;
}

SharedMapping::SharedMapping(SharedMapping&& other) noexcept {
    *this = std::move(other);
}

SharedMapping& SharedMapping::operator=(SharedMapping&& other) noexcept {
    if (this != &other) {
        if (data_ != nullptr) ::munmap(data_, size_);
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
        fd_ = std::move(other.fd_);
    }
    return *this;
}

SharedMapping::~SharedMapping() {
    if (data_ != nullptr) ::munmap(data_, size_);
}

}  // namespace crew::detail
