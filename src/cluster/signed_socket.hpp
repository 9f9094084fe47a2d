// cluster/signed_socket.hpp: a ZeroMQ socket whose messages are signed as they go and verified as
// they come (signed_message.hpp).
//
// A DEALER sends to the ROUTER it is connected to; a ROUTER receives from any of its DEALERs, each
// message with the peer it came from, and answers a peer by name. A message that fails
// verification is dropped and counted, and receive() waits on for a genuine one until its
// timeout: no bytes from the network reach the caller unverified, and none makes it throw. A
// socket binds to 127.0.0.1 only, on a port the system picks. ZeroMQ's failures (a bad endpoint,
// a closed context) throw crew::Error with ZeroMQ's text.
#pragma once

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "cluster/signed_message.hpp"

namespace crew::detail {

class SignedSocket {
  public:
    enum class Kind { dealer, router };

    SignedSocket(zmq::context_t& context, Kind kind, const ClusterKey& key);

    // Binds to tcp://127.0.0.1 on a free port; returns the endpoint to connect to.
    std::string bind_to_loopback();
    void connect(const std::string& endpoint);

    // Sends payload signed; a ROUTER names the peer to send to (a peer of a received message).
    void send(std::span<const Frame> payload, const Frame& peer = {});

    struct Received {
        Frame peer;  // the DEALER it came from (ROUTER only; empty for a DEALER)
        std::vector<Frame> payload;
    };
    // The next genuine message, or nothing once timeout has passed without one.
    std::optional<Received> receive(std::chrono::milliseconds timeout);

    const MessageVerifier::Dropped& dropped() const noexcept { return verifier_.dropped(); }

  private:
    Kind kind_;
    zmq::socket_t socket_;
    MessageSigner signer_;
    MessageVerifier verifier_;
};

}  // namespace crew::detail
