// The cluster's signed messages (src/cluster/signed_message.hpp): a signed message comes back
// whole; a changed byte anywhere, bytes moved between frames, another key, a replay, a wrong shape
// and random bytes are all dropped and counted, never thrown for.
#include <gtest/gtest.h>

#include <crew/error.hpp>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cluster/signed_message.hpp"

namespace {

using crew::detail::ClusterKey;
using crew::detail::Frame;
using crew::detail::MessageSigner;
using crew::detail::MessageVerifier;

Frame frame_of(const std::string& text) {
    Frame frame(text.size());
    std::memcpy(frame.data(), text.data(), text.size());
    return frame;
}

std::vector<Frame> a_payload() {
    return {frame_of("apply"), Frame{}, frame_of(std::string(3000, 'x'))};
}

std::uint64_t dropped_in_all(const MessageVerifier& verifier) {
    const auto& dropped = verifier.dropped();
    return dropped.malformed + dropped.forged + dropped.replayed;
}

TEST(SignedMessage, ComesBackWhole) {
    const ClusterKey key = ClusterKey::generate();
    MessageSigner signer(key);
    MessageVerifier verifier(key);
    const std::vector<Frame> payload = a_payload();
    const auto received = verifier.verify(signer.sign(payload));
    ASSERT_TRUE(received.has_value());
    EXPECT_EQ(*received, payload);
    const auto empty = verifier.verify(signer.sign({}));
    ASSERT_TRUE(empty.has_value());
    EXPECT_TRUE(empty->empty());
    const std::vector<Frame> large{Frame(std::size_t{1} << 20, std::byte{7})};
    EXPECT_EQ(verifier.verify(signer.sign(large)), large);
    EXPECT_EQ(dropped_in_all(verifier), 0u);
}

TEST(SignedMessage, AChangedByteAnywhereIsForged) {
    const ClusterKey key = ClusterKey::generate();
    MessageSigner signer(key);
    MessageVerifier verifier(key);
    const std::vector<Frame> payload{frame_of("header"), frame_of("content")};
    const std::vector<Frame> wire = signer.sign(payload);
    std::uint64_t changed = 0;
    for (std::size_t f = 0; f < wire.size(); ++f) {
        for (std::size_t b = 0; b < wire[f].size(); ++b) {
            std::vector<Frame> tampered = wire;
            tampered[f][b] ^= std::byte{0x01};
            EXPECT_FALSE(verifier.verify(tampered).has_value()) << "frame " << f << " byte " << b;
            ++changed;
        }
    }
    EXPECT_EQ(verifier.dropped().forged, changed);
    EXPECT_TRUE(verifier.verify(wire).has_value()) << "the message itself is still good";
}

TEST(SignedMessage, BytesCannotMoveBetweenFrames) {
    const ClusterKey key = ClusterKey::generate();
    MessageSigner signer(key);
    MessageVerifier verifier(key);
    const std::vector<Frame> payload{frame_of("ab"), frame_of("cd")};
    std::vector<Frame> wire = signer.sign(payload);
    // "ab" | "cd" becomes "a" | "bcd": the same bytes, other frames.
    wire[2] = frame_of("a");
    wire[3] = frame_of("bcd");
    EXPECT_FALSE(verifier.verify(wire).has_value());
    EXPECT_EQ(verifier.dropped().forged, 1u);
}

TEST(SignedMessage, AnotherKeysMessageIsForged) {
    MessageSigner signer(ClusterKey::generate());
    MessageVerifier verifier(ClusterKey::generate());
    EXPECT_FALSE(verifier.verify(signer.sign(a_payload())).has_value());
    EXPECT_EQ(verifier.dropped().forged, 1u);
}

TEST(SignedMessage, AReplayIsDroppedAndSendersAreApart) {
    const ClusterKey key = ClusterKey::generate();
    MessageSigner first(key);
    MessageSigner second(key);
    MessageVerifier verifier(key);
    const auto older = first.sign(a_payload());
    const auto newer = first.sign(a_payload());
    EXPECT_TRUE(verifier.verify(newer).has_value());
    EXPECT_FALSE(verifier.verify(newer).has_value()) << "the same message twice";
    EXPECT_FALSE(verifier.verify(older).has_value()) << "an older one after a newer";
    EXPECT_EQ(verifier.dropped().replayed, 2u);
    // Another sender's nonces are its own.
    EXPECT_TRUE(verifier.verify(second.sign(a_payload())).has_value());
    EXPECT_TRUE(verifier.verify(first.sign(a_payload())).has_value());
}

TEST(SignedMessage, AWrongShapeIsMalformed) {
    const ClusterKey key = ClusterKey::generate();
    MessageSigner signer(key);
    MessageVerifier verifier(key);
    const std::vector<Frame> good = signer.sign(a_payload());
    EXPECT_FALSE(verifier.verify({}).has_value());
    EXPECT_FALSE(verifier.verify(std::span(good).first(1)).has_value());
    std::vector<Frame> short_signature = good;
    short_signature[0].pop_back();
    EXPECT_FALSE(verifier.verify(short_signature).has_value());
    std::vector<Frame> long_envelope = good;
    long_envelope[1].push_back(std::byte{0});
    EXPECT_FALSE(verifier.verify(long_envelope).has_value());
    EXPECT_EQ(verifier.dropped().malformed, 4u);
}

TEST(SignedMessage, RandomBytesNeverPassNorThrow) {
    const ClusterKey key = ClusterKey::generate();
    MessageVerifier verifier(key);
    std::mt19937 random(20261207);
    std::uniform_int_distribution<int> frames(0, 6), size(0, 64), byte(0, 255), shaped(0, 2);
    constexpr int messages = 20'000;
    for (int m = 0; m < messages; ++m) {
        std::vector<Frame> wire(static_cast<std::size_t>(frames(random)));
        for (std::size_t f = 0; f < wire.size(); ++f) {
            // A third of them have a signature's and an envelope's sizes, to reach the checks
            // past the shape.
            std::size_t bytes = static_cast<std::size_t>(size(random));
            if (shaped(random) == 0 && f < 2) bytes = f == 0 ? 32 : 24;
            wire[f].resize(bytes);
            for (std::byte& b : wire[f]) b = static_cast<std::byte>(byte(random));
        }
        ASSERT_FALSE(verifier.verify(wire).has_value()) << "message " << m;
    }
    EXPECT_EQ(dropped_in_all(verifier), static_cast<std::uint64_t>(messages));
    EXPECT_GT(verifier.dropped().forged, 0u) << "no random message reached the signature check";
}

TEST(SignedMessage, AKeyIsThirtyTwoRandomBytes) {
    const ClusterKey one = ClusterKey::generate();
    const ClusterKey other = ClusterKey::generate();
    EXPECT_FALSE(std::equal(one.bytes().begin(), one.bytes().end(), other.bytes().begin()));
    const std::vector<std::byte> short_key(31);
    try {
        (void)ClusterKey::from_bytes(short_key);
        FAIL() << "no exception";
    } catch (const crew::Error& error) {
        EXPECT_NE(std::string(error.what()).find("32 bytes"), std::string::npos) << error.what();
    }
    const ClusterKey copy = ClusterKey::from_bytes(one.bytes());
    MessageSigner signer(one);
    MessageVerifier verifier(copy);
    EXPECT_TRUE(verifier.verify(signer.sign(a_payload())).has_value());
}

}  // namespace
