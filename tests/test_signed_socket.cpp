// The cluster's signed ZeroMQ sockets (src/cluster/signed_socket.hpp), over 127.0.0.1: a DEALER
// and a ROUTER talk both ways; unsigned bytes, another key's messages and a replayed message
// reach nobody while the genuine one after them does; a receive with nothing coming gives up at
// its timeout; misuse and bad endpoints throw crew::Error.
#include <gtest/gtest.h>

#include <chrono>
#include <crew/error.hpp>
#include <cstring>
#include <iterator>
#include <string>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "cluster/signed_socket.hpp"

namespace {

using namespace std::chrono_literals;
using crew::detail::ClusterKey;
using crew::detail::Frame;
using crew::detail::SignedSocket;

Frame frame_of(const std::string& text) {
    Frame frame(text.size());
    std::memcpy(frame.data(), text.data(), text.size());
    return frame;
}

// A generous wait: the machine may be busy; a message on loopback takes microseconds.
constexpr auto patience = 10'000ms;

TEST(SignedSocket, ADealerAndARouterTalkBothWays) {
    zmq::context_t context;
    const ClusterKey key = ClusterKey::generate();
    SignedSocket router(context, SignedSocket::Kind::router, key);
    SignedSocket dealer(context, SignedSocket::Kind::dealer, key);
    const std::string endpoint = router.bind_to_loopback();
    EXPECT_EQ(endpoint.rfind("tcp://127.0.0.1:", 0), 0u) << endpoint;
    dealer.connect(endpoint);

    const std::vector<Frame> request{frame_of("apply"), frame_of("square(12)")};
    dealer.send(request);
    const auto received = router.receive(patience);
    ASSERT_TRUE(received.has_value());
    EXPECT_EQ(received->payload, request);
    EXPECT_FALSE(received->peer.empty());

    const std::vector<Frame> reply{frame_of("144")};
    router.send(reply, received->peer);
    const auto answered = dealer.receive(patience);
    ASSERT_TRUE(answered.has_value());
    EXPECT_EQ(answered->payload, reply);
    EXPECT_TRUE(answered->peer.empty());
}

TEST(SignedSocket, OnlyTheGenuineMessageArrives) {
    zmq::context_t context;
    const ClusterKey key = ClusterKey::generate();
    SignedSocket router(context, SignedSocket::Kind::router, key);
    const std::string endpoint = router.bind_to_loopback();

    // Unsigned bytes, then a message signed with another key, then a genuine one.
    zmq::socket_t raw(context, zmq::socket_type::dealer);
    raw.set(zmq::sockopt::linger, 0);
    raw.connect(endpoint);
    std::vector<zmq::message_t> garbage;
    garbage.emplace_back(std::string("not a signature"));
    garbage.emplace_back(std::string("nor an envelope"));
    (void)zmq::send_multipart(raw, garbage);
    SignedSocket stranger(context, SignedSocket::Kind::dealer, ClusterKey::generate());
    stranger.connect(endpoint);
    stranger.send(std::vector<Frame>{frame_of("let me in")});
    SignedSocket member(context, SignedSocket::Kind::dealer, key);
    member.connect(endpoint);
    member.send(std::vector<Frame>{frame_of("hello")});

    const auto received = router.receive(patience);
    ASSERT_TRUE(received.has_value());
    EXPECT_EQ(received->payload, std::vector<Frame>{frame_of("hello")});
    // The two others came before it from their own peers, or come still: both are dropped, and
    // nothing else is received.
    const auto give_up = std::chrono::steady_clock::now() + patience;
    while (router.dropped().malformed + router.dropped().forged < 2 &&
           std::chrono::steady_clock::now() < give_up) {
        EXPECT_FALSE(router.receive(100ms).has_value());
    }
    EXPECT_EQ(router.dropped().malformed, 1u);
    EXPECT_EQ(router.dropped().forged, 1u);
}

TEST(SignedSocket, AReplayedMessageIsDropped) {
    zmq::context_t context;
    const ClusterKey key = ClusterKey::generate();
    // Capture a genuine message's frames on a plain ROUTER.
    zmq::socket_t capture(context, zmq::socket_type::router);
    capture.set(zmq::sockopt::linger, 0);
    capture.bind("tcp://127.0.0.1:*");
    SignedSocket sender(context, SignedSocket::Kind::dealer, key);
    sender.connect(capture.get(zmq::sockopt::last_endpoint));
    sender.send(std::vector<Frame>{frame_of("transfer")});
    std::vector<zmq::message_t> captured;
    zmq::pollitem_t item{capture.handle(), 0, ZMQ_POLLIN, 0};
    ASSERT_EQ(zmq::poll(&item, 1, patience), 1);
    ASSERT_TRUE(zmq::recv_multipart(capture, std::back_inserter(captured)).has_value());
    captured.erase(captured.begin());  // the sender's routing id

    // Sent twice to a signed ROUTER: once is taken, the second time is a replay.
    SignedSocket router(context, SignedSocket::Kind::router, key);
    zmq::socket_t replayer(context, zmq::socket_type::dealer);
    replayer.set(zmq::sockopt::linger, 0);
    replayer.connect(router.bind_to_loopback());
    for (int time = 0; time < 2; ++time) {
        std::vector<zmq::message_t> copy;
        for (const auto& part : captured) copy.emplace_back(part.data(), part.size());
        (void)zmq::send_multipart(replayer, copy);
    }
    const auto first = router.receive(patience);
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->payload, std::vector<Frame>{frame_of("transfer")});
    EXPECT_FALSE(router.receive(500ms).has_value());
    EXPECT_EQ(router.dropped().replayed, 1u);
}

TEST(SignedSocket, AReceiveGivesUpAtItsTimeout) {
    zmq::context_t context;
    SignedSocket router(context, SignedSocket::Kind::router, ClusterKey::generate());
    (void)router.bind_to_loopback();
    const auto started = std::chrono::steady_clock::now();
    EXPECT_FALSE(router.receive(50ms).has_value());
    EXPECT_GE(std::chrono::steady_clock::now() - started, 50ms);
}

TEST(SignedSocket, MisuseAndBadEndpointsThrow) {
    zmq::context_t context;
    const ClusterKey key = ClusterKey::generate();
    SignedSocket router(context, SignedSocket::Kind::router, key);
    SignedSocket dealer(context, SignedSocket::Kind::dealer, key);
    const std::vector<Frame> payload{frame_of("x")};
    EXPECT_THROW(router.send(payload), crew::Error);
    EXPECT_THROW(dealer.send(payload, frame_of("someone")), crew::Error);
    try {
        dealer.connect("no-such-transport://here");
        FAIL() << "no exception";
    } catch (const crew::Error& error) {
        EXPECT_NE(std::string(error.what()).find("no-such-transport://here"), std::string::npos)
            << error.what();
    }
}

}  // namespace
