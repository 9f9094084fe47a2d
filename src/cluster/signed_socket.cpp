#include "cluster/signed_socket.hpp"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <zmq_addon.hpp>

#include "crew/error.hpp"

namespace crew::detail {
namespace {

[[noreturn]] void throw_zmq_error(const char* what, const zmq::error_t& error) {
    throw Error(std::string("crew: ") + what + ": " + error.what());
}

zmq::message_t message_of(const Frame& frame) {
    return zmq::message_t(frame.data(), frame.size());
}

Frame frame_of(const zmq::message_t& message) {
    const auto* bytes = static_cast<const std::byte*>(message.data());
    return Frame(bytes, bytes + message.size());
}

}  // namespace

SignedSocket::SignedSocket(zmq::context_t& context, Kind kind, const ClusterKey& key)
    : kind_(kind), signer_(key), verifier_(key) {
    try {
        socket_ = zmq::socket_t(
            context, kind == Kind::dealer ? zmq::socket_type::dealer : zmq::socket_type::router);
        // Messages still queued when the socket closes are dropped, not waited for.
        socket_.set(zmq::sockopt::linger, 0);
    } catch (const zmq::error_t& error) {
        throw_zmq_error("cannot make a cluster socket", error);
    }
}

std::string SignedSocket::bind_to_loopback() {
    try {
        socket_.bind("tcp://127.0.0.1:*");
        return socket_.get(zmq::sockopt::last_endpoint);
    } catch (const zmq::error_t& error) {
        throw_zmq_error("cannot bind a cluster socket to 127.0.0.1", error);
    }
}

void SignedSocket::connect(const std::string& endpoint) {
    try {
        socket_.connect(endpoint);
    } catch (const zmq::error_t& error) {
        throw_zmq_error(("cannot connect a cluster socket to " + endpoint).c_str(), error);
    }
}

void SignedSocket::send(std::span<const Frame> payload, const Frame& peer) {
    if ((kind_ == Kind::router) == peer.empty()) {
        throw Error(
            kind_ == Kind::router
                ? "crew: a ROUTER socket sends to a peer: name the one to send to"
                : "crew: a DEALER socket sends to the one it is connected to: name no peer");
    }
    std::vector<zmq::message_t> parts;
    if (kind_ == Kind::router) parts.push_back(message_of(peer));
    for (const Frame& frame : signer_.sign(payload)) parts.push_back(message_of(frame));
    try {
        (void)zmq::send_multipart(socket_, parts);
    } catch (const zmq::error_t& error) {
        throw_zmq_error("cannot send on a cluster socket", error);
    }
}

std::optional<SignedSocket::Received> SignedSocket::receive(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        std::vector<zmq::message_t> parts;
        try {
            zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
            if (zmq::poll(&item, 1, std::max(left, std::chrono::milliseconds(0))) == 0) {
                // poll may wake a little early: only the deadline ends the wait.
                if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
                continue;
            }
            (void)zmq::recv_multipart(socket_, std::back_inserter(parts));
        } catch (const zmq::error_t& error) {
            if (error.num() == EINTR) continue;
            throw_zmq_error("cannot receive on a cluster socket", error);
        }
        Received received;
        auto first = parts.begin();
        if (kind_ == Kind::router && first != parts.end()) received.peer = frame_of(*first++);
        std::vector<Frame> wire;
        std::transform(first, parts.end(), std::back_inserter(wire), frame_of);
        if (auto payload = verifier_.verify(wire)) {
            received.payload = std::move(*payload);
            return received;
        }
    }
}

}  // namespace crew::detail
