#include "crew/shared_memory.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

#include "crew/detail/shared_mapping.hpp"
#include "crew/error.hpp"
#include "crew/serialization.hpp"
#include "process/fork_server.hpp"

namespace crew {
namespace {

// The name as Python's shared_memory shows it (no leading slash); throws if unusable.
std::string checked_name(const std::string& name) {
    std::string bare = !name.empty() && name.front() == '/' ? name.substr(1) : name;
    if (bare.empty() || bare.find('/') != std::string::npos || bare.size() > NAME_MAX) {
        throw Error("crew: \"" + name +
                    "\" cannot name shared memory: use 1 to 255 characters without '/'");
    }
    return bare;
}

std::string path_of(const std::string& name) {
    return "/" + name;
}

void check_size(std::size_t size) {
    if (size == 0) throw Error("crew: shared memory needs a size of at least one byte");
}

}  // namespace

struct SharedMemory::Segment {
    detail::SharedMapping mapping;
    std::string name;      // empty: unnamed
    bool creator = false;  // the name is unlinked when this goes
    bool unlinked = false;

    Segment(detail::SharedMapping mapping, std::string name, bool creator)
        : mapping(std::move(mapping)), name(std::move(name)), creator(creator) {}
    Segment(const Segment&) = delete;
    Segment& operator=(const Segment&) = delete;
    ~Segment() {
        if (!creator || unlinked) return;
        ::shm_unlink(path_of(name).c_str());  // gone already (unlinked elsewhere) is fine
        detail::forget_shared_memory(name);
    }
};

SharedMemory::SharedMemory(std::size_t size) {
    check_size(size);
    segment_ = std::make_shared<Segment>(detail::SharedMapping::create(size, "crew-shared-memory"),
                                         std::string(), false);
}

SharedMemory SharedMemory::create(const std::string& name, std::size_t size) {
    const std::string bare = checked_name(name);
    check_size(size);
    const std::string path = path_of(bare);
    const int fd = ::shm_open(path.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        detail::throw_system_error("cannot create shared memory \"" + bare + "\"" +
                                   (errno == EEXIST ? " (the name is taken)" : ""));
    }
    detail::UniqueFd owned(fd);
    try {
        if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
            detail::throw_system_error("cannot size shared memory \"" + bare + "\" to " +
                                       std::to_string(size) + " bytes");
        }
        detail::track_shared_memory(bare);
    } catch (...) {
        ::shm_unlink(path.c_str());
        throw;
    }
    return SharedMemory(
        std::make_shared<Segment>(detail::SharedMapping::attach(std::move(owned)), bare, true));
}

SharedMemory SharedMemory::attach(const std::string& name) {
    const std::string bare = checked_name(name);
    const int fd = ::shm_open(path_of(bare).c_str(), O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) {
        detail::throw_system_error("cannot attach shared memory \"" + bare + "\"" +
                                   (errno == ENOENT ? " (no segment has that name)" : ""));
    }
    return SharedMemory(std::make_shared<Segment>(
        detail::SharedMapping::attach(detail::UniqueFd(fd)), bare, false));
}

std::span<std::byte> SharedMemory::buf() const noexcept {
    return {segment_->mapping.data(), segment_->mapping.size()};
}

std::size_t SharedMemory::size() const noexcept {
    return segment_->mapping.size();
}

const std::string& SharedMemory::name() const noexcept {
    return segment_->name;
}

void SharedMemory::unlink() {
    Segment& segment = *segment_;
    if (segment.name.empty()) throw Error("crew: unlink() of unnamed shared memory");
    if (::shm_unlink(path_of(segment.name).c_str()) != 0) {
        detail::throw_system_error("cannot unlink shared memory \"" + segment.name + "\"");
    }
    segment.unlinked = true;
    if (segment.creator) detail::forget_shared_memory(segment.name);
}

void SharedMemory::encode_into(detail::Writer& writer) const {
    detail::encode(writer, detail::SentFd{segment_->mapping.fd()});
    detail::encode(writer, segment_->name);
}

SharedMemory SharedMemory::decode_from(detail::Reader& reader) {
    const auto sent = detail::decode<detail::SentFd>(reader);
    auto mapping = detail::SharedMapping::attach(detail::UniqueFd(sent.fd));
    return SharedMemory(
        std::make_shared<Segment>(std::move(mapping), detail::decode<std::string>(reader), false));
}

}  // namespace crew
