#include "crew/detail/byte_stream.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "crew/error.hpp"

namespace crew::detail {
namespace {

// Buffers of at least this size are kept when done with (see Buffer): a pool's chunks are
// about 64 KiB, its large arguments and results more.
constexpr std::size_t kept_buffer = std::size_t{32} << 10;
// At most this many are kept; when full, the smallest gives way to a larger one.
constexpr std::size_t most_spares = 32;

struct Spare {
    std::byte* bytes;
    std::size_t capacity;
};
std::mutex spares_mutex;
// Never destroyed: a buffer may be released by a thread still running while the program exits,
// and what is kept stays reachable (leak checkers see it as held, not lost).
std::vector<Spare>& spares = *[] {
    auto* reserved = new std::vector<Spare>;
    reserved->reserve(most_spares);
    return reserved;
}();

}  // namespace

void Buffer::Release::operator()(std::byte* bytes) const noexcept {
    if (bytes != nullptr && capacity >= kept_buffer) {
        std::lock_guard lock(spares_mutex);
        if (spares.size() < most_spares) {
            spares.push_back({bytes, capacity});  // within the reserved room: no allocation
            return;
        }
        auto smallest = std::min_element(spares.begin(), spares.end(),
                                         [](auto& a, auto& b) { return a.capacity < b.capacity; });
        if (smallest->capacity < capacity) {
            std::free(smallest->bytes);
            *smallest = {bytes, capacity};
            return;
        }
    }
    std::free(bytes);
}

Buffer::Owner Buffer::take_spare(std::size_t capacity) {
    std::lock_guard lock(spares_mutex);
    // The smallest that is big enough.
    auto best = spares.end();
    for (auto it = spares.begin(); it != spares.end(); ++it) {
        if (it->capacity >= capacity && (best == spares.end() || it->capacity < best->capacity)) {
            best = it;
        }
    }
    if (best == spares.end()) return Owner(nullptr, Release{0});
    Owner taken(best->bytes, Release{best->capacity});
    *best = spares.back();
    spares.pop_back();
    return taken;
}

void prefer_huge_pages(const void* data, std::size_t size) noexcept {
    constexpr std::size_t worth_it = std::size_t{4} << 20;
    if (size < worth_it) return;
    const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto begin = (reinterpret_cast<std::uintptr_t>(data) + page - 1) & ~(page - 1);
    const auto end = (reinterpret_cast<std::uintptr_t>(data) + size) & ~(page - 1);
    if (end <= begin) return;
    // Advice only: EINVAL where transparent huge pages are not built in leaves plain pages,
    // which work the same.
    (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

void Writer::Appender::append(const void* bytes, std::size_t count) {
    if (count == 0) return;  // an empty range's data() may be null, which memcpy must not get
    if (count > capacity - size) {
        grow_to(std::max<std::size_t>(std::max(size + count, capacity * 2), 256));
    }
    std::memcpy(data.get() + size, bytes, count);
    size += count;
}

void Writer::Appender::grow_to(std::size_t wanted) {
    if (wanted >= kept_buffer) {
        if (Buffer::Owner spare = Buffer::take_spare(wanted)) {
            if (size != 0) std::memcpy(spare.get(), data.get(), size);
            capacity = spare.get_deleter().capacity;
            data = std::move(spare);
            return;
        }
    }
    // realloc, not a new vector: large blocks grow by remapping, without a copy or a first touch.
    // No huge pages for a buffer crew keeps (see prefer_huge_pages).
    auto* grown = static_cast<std::byte*>(std::realloc(data.get(), wanted));
    if (grown == nullptr) throw std::bad_alloc();
    (void)data.release();
    data = Buffer::Owner(grown, Buffer::Release{wanted});
    capacity = wanted;
}

std::streamsize Writer::Appender::xsputn(const char* bytes, std::streamsize count) {
    append(bytes, static_cast<std::size_t>(count));
    return count;
}

Writer::Appender::int_type Writer::Appender::overflow(int_type byte) {
    if (!traits_type::eq_int_type(byte, traits_type::eof())) {
        char c = traits_type::to_char_type(byte);
        append(&c, 1);
    }
    return traits_type::not_eof(byte);
}

Writer::Writer() = default;

std::ostream& Writer::stream() {
    if (!stream_) stream_.emplace(&appender_);
    return *stream_;
}

Reader::Source::Source(std::span<const std::byte> bytes) {
    // std::streambuf's get area is char*, but nothing ever writes through it.
    char* begin = const_cast<char*>(reinterpret_cast<const char*>(bytes.data()));
    setg(begin, begin, begin + bytes.size());
}

void Writer::overwrite(std::size_t offset, const void* data, std::size_t size) {
    if (offset + size > appender_.size) {
        throw Error("crew: overwrite past the end of a message being written");
    }
    std::memcpy(appender_.data.get() + offset, data, size);
}

std::size_t Writer::attach_fd(int fd) {
    struct stat status {};
    if (::fstat(fd, &status) != 0)
        throw_system_error("cannot attach a file descriptor to a message");
    // Only a file's inode tells it apart: eventfds and other anonymous descriptors share one.
    std::pair<std::uint64_t, std::uint64_t> file{0, 0};
    if (S_ISREG(status.st_mode)) {
        file = {status.st_dev, status.st_ino};
        const auto known = std::find(attached_files_.begin(), attached_files_.end(), file);
        if (known != attached_files_.end()) {
            return static_cast<std::size_t>(known - attached_files_.begin());
        }
    }
    attached_files_.push_back(file);
    owned_fds_.push_back(duplicate(fd, "a file descriptor to attach to a message"));
    attached_fds_.push_back(owned_fds_.back().get());
    return attached_fds_.size() - 1;
}

Reader::Reader(std::span<const std::byte> bytes, std::span<const int> fds)
    : source_(bytes), fds_(fds) {}

Reader::~Reader() {
    for (int fd : fds_) ::close(fd);
}

int Reader::take_attached_fd(std::size_t index) const {
    if (index >= fds_.size()) {
        throw Error("crew: a message refers to file descriptor number " + std::to_string(index) +
                    " of its own, but came with only " + std::to_string(fds_.size()));
    }
    return duplicate(fds_[index], "a file descriptor a message carried").release();
}

std::istream& Reader::stream() {
    if (!stream_) stream_.emplace(&source_);
    return *stream_;
}

std::span<const std::byte> Reader::take(std::size_t size) {
    if (size > remaining()) {
        throw Error("crew: a message ended early: " + std::to_string(size) +
                    " more bytes were expected but only " + std::to_string(remaining()) +
                    " remain; it was cut short or corrupted on the way");
    }
    const auto* start = reinterpret_cast<const std::byte*>(source_.position());
    // gbump takes an int: step in pieces so messages over 2 GiB work too.
    for (std::size_t left = size; left > 0;) {
        std::size_t step = std::min<std::size_t>(left, std::numeric_limits<int>::max());
        source_.advance(step);
        left -= step;
    }
    return {start, size};
}

void Reader::read_bytes_slowly(void* out, std::size_t size) {
    std::span<const std::byte> bytes = take(size);
    if (size != 0) std::memcpy(out, bytes.data(), size);
}

}  // namespace crew::detail
