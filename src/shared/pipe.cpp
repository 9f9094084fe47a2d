#include "crew/pipe.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <tuple>

#include "crew/detail/spin.hpp"
#include "crew/detail/unique_fd.hpp"
#include "crew/serialization.hpp"

namespace crew::detail {
namespace {

// A reader asks without sleeping for this long: a reply that comes within it costs no wake-up.
constexpr auto spin_time = std::chrono::microseconds(50);

const char* const cut_short =
    "crew: a connection's other end closed in the middle of a message (its process died while "
    "sending?); the part that came was dropped";

// Whether the other end of the pipe's socket is gone: closed, or its process ended, as the
// socket closes with the last copy of that end. It carries nothing, so anything to read is the end.
bool peer_closed(int socket) {
    pollfd watched{socket, POLLIN, 0};
    return ::poll(&watched, 1, 0) > 0;
}

}  // namespace

std::pair<PipeChannel, PipeChannel> PipeChannel::pair(bool duplex) {
    PipeChannel first, second;
    std::tie(first.socket_, second.socket_) = make_socket_pair("a pipe (socketpair)");
    first.rings_ = RingPair::create(RingPair::pipe_capacity, 0, "crew-pipe");
    second.rings_ = RingPair::attach(duplicate(first.rings_.fd(), "a pipe's shared memory"),
                                     RingPair::pipe_capacity);
    first.wake_ = make_eventfd("a pipe's eventfd");
    second.wake_ = make_eventfd("a pipe's eventfd");
    first.other_wake_ = duplicate(second.wake_.get(), "a pipe's eventfd");
    second.other_wake_ = duplicate(first.wake_.get(), "a pipe's eventfd");
    first.index_ = 0;
    second.index_ = 1;
    first.can_receive_ = second.can_send_ = true;
    first.can_send_ = second.can_receive_ = duplex;
    first.open_rings();
    second.open_rings();
    return {std::move(first), std::move(second)};
}

// Ring i carries messages to end i.
void PipeChannel::open_rings() {
    const std::size_t capacity = rings_.capacity();
    if (can_receive_) in_ = std::make_unique<RingReader>(rings_.ring_to(index_), capacity);
    if (can_send_) {
        out_ =
            std::make_unique<RingWriter>(rings_.ring_to(1 - index_), capacity, other_wake_.get());
        // Not this: the channel moves. The socket's number does not.
        out_->check_while_waiting([socket = socket_.get()] {
            if (peer_closed(socket)) {
                throw SystemError("cannot send on a connection whose other end is closed", EPIPE);
            }
        });
    }
}

void PipeChannel::check_open() const {
    if (!socket_) throw Error("crew: the connection is closed");
}

bool PipeChannel::other_end_gone() {
    if (!other_end_gone_) other_end_gone_ = peer_closed(socket_.get());
    return other_end_gone_;
}

void PipeChannel::send(std::span<const std::byte> message) {
    check_open();
    if (!out_) {
        throw SystemError("cannot send on the receiving end of a one-way pipe", EBADF);
    }
    // Looked at every time (one poll(2), as Python's send makes one write(2)): a message for an
    // end that has gone would wait in the ring, unread, and the sender never know.
    if (other_end_gone()) {
        throw SystemError("cannot send on a connection whose other end is closed", EPIPE);
    }
    out_->write(message);
}

std::span<const std::byte> PipeChannel::receive() {
    check_open();
    if (!in_) throw SystemError("cannot receive on the sending end of a one-way pipe", EBADF);
    auto stop_spinning = Clock::now() + spin_time;
    while (true) {
        const std::uint64_t position = in_->position();
        if (auto message = in_->try_read()) return *message;
        // The pieces of a large message keep coming: wait for the next as for the first.
        if (in_->position() != position) stop_spinning = Clock::now() + spin_time;
        if (other_end_gone_) {
            // What was sent before the end went is read first.
            if (auto message = in_->try_read()) return *message;
            if (in_->assembling()) throw Error(cut_short);
            throw EOFError();
        }
        if (Clock::now() < stop_spinning) {
            for (int pause = 0; pause < 16; ++pause) cpu_relax();
            continue;
        }
        sleep(std::nullopt);
    }
}

bool PipeChannel::sleep(const Deadline& deadline) {
    pollfd watched[2];
    if (!begin_sleep(watched)) return true;
    int ready;
    do {
        ready = ::poll(watched, 2, milliseconds_until(deadline));
    } while (ready < 0 && errno == EINTR);
    const int poll_error = errno;
    end_sleep(watched);
    if (ready < 0) throw SystemError("cannot wait on a connection", poll_error);
    return ready > 0 || !deadline || Clock::now() < *deadline;
}

bool PipeChannel::begin_sleep(std::span<pollfd, 2> watched) {
    if (!in_->prepare_to_sleep()) return false;
    watched[0] = {wake_.get(), POLLIN, 0};
    watched[1] = {socket_.get(), POLLIN, 0};
    return true;
}

void PipeChannel::end_sleep(std::span<const pollfd, 2> watched) {
    in_->cancel_sleep();
    if (watched[0].revents != 0) {
        std::uint64_t count;
        (void)!::read(wake_.get(), &count, sizeof count);
    }
    if (watched[1].revents != 0) other_end_gone_ = true;
}

bool PipeChannel::poll(Timeout timeout) {
    check_open();
    if (!in_) return true;  // recv() throws at once
    const Deadline deadline = deadline_for(timeout);
    while (true) {
        if (in_->more_waiting() || other_end_gone()) return true;
        if (deadline && Clock::now() >= *deadline) return false;
        if (!sleep(deadline)) return in_->more_waiting() || other_end_gone();
    }
}

void PipeChannel::close() noexcept {
    if (!socket_) return;
    in_.reset();
    out_.reset();
    socket_.reset();
    wake_.reset();
    other_wake_.reset();
    rings_ = RingPair();
}

void PipeChannel::encode_into(Writer& writer) const {
    encode(writer, SentFd{socket_.get()});
    encode(writer, SentFd{rings_.fd()});
    encode(writer, SentFd{wake_.get()});
    encode(writer, SentFd{other_wake_.get()});
    encode(writer, index_);
    encode(writer, can_send_);
    encode(writer, can_receive_);
}

PipeChannel PipeChannel::decode_from(Reader& reader) {
    PipeChannel channel;
    channel.socket_ = UniqueFd(decode<SentFd>(reader).fd);
    channel.rings_ = RingPair::attach(UniqueFd(decode<SentFd>(reader).fd), RingPair::pipe_capacity);
    channel.wake_ = UniqueFd(decode<SentFd>(reader).fd);
    channel.other_wake_ = UniqueFd(decode<SentFd>(reader).fd);
    channel.index_ = decode<std::uint8_t>(reader);
    channel.can_send_ = decode<bool>(reader);
    channel.can_receive_ = decode<bool>(reader);
    channel.open_rings();
    return channel;
}

}  // namespace crew::detail
