#include "cluster/signed_message.hpp"

#include <sodium.h>

#include <cstring>

#include "crew/error.hpp"

namespace crew::detail {
namespace {

constexpr std::size_t signature_bytes = crypto_auth_hmacsha256_BYTES;
constexpr std::size_t sender_bytes = 16;
constexpr std::size_t envelope_bytes = sender_bytes + sizeof(std::uint64_t);
static_assert(cluster_key_bytes == crypto_auth_hmacsha256_KEYBYTES);

void start_sodium() {
    if (sodium_init() < 0) {
        throw Error(
            "crew: libsodium could not start (sodium_init failed); the cluster cannot sign");
    }
}

// HMAC-SHA256 of the frames, each preceded by its length as 8 bytes, little-endian.
std::array<unsigned char, signature_bytes> signature_of(const ClusterKey& key,
                                                        std::span<const Frame> frames) {
    crypto_auth_hmacsha256_state state;
    crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(key.bytes().data()),
                                cluster_key_bytes);
    for (const Frame& frame : frames) {
        const std::uint64_t length = frame.size();
        unsigned char length_bytes[sizeof length];
        for (std::size_t i = 0; i < sizeof length; ++i) {
            length_bytes[i] = static_cast<unsigned char>(length >> (8 * i));
        }
        crypto_auth_hmacsha256_update(&state, length_bytes, sizeof length_bytes);
        crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(frame.data()),
                                      frame.size());
    }
    std::array<unsigned char, signature_bytes> signature{};
    crypto_auth_hmacsha256_final(&state, signature.data());
    sodium_memzero(&state, sizeof state);
    return signature;
}

}  // namespace

ClusterKey ClusterKey::generate() {
    start_sodium();
    ClusterKey key;
    randombytes_buf(key.bytes_.data(), key.bytes_.size());
    return key;
}

ClusterKey ClusterKey::from_bytes(std::span<const std::byte> bytes) {
    if (bytes.size() != cluster_key_bytes) {
        throw Error("crew: a cluster key is " + std::to_string(cluster_key_bytes) +
                    " bytes, and this one is " + std::to_string(bytes.size()) +
                    "; take the key from the cluster's connection file");
    }
    ClusterKey key;
    std::memcpy(key.bytes_.data(), bytes.data(), cluster_key_bytes);
    return key;
}

ClusterKey::~ClusterKey() {
    sodium_memzero(bytes_.data(), bytes_.size());
}

MessageSigner::MessageSigner(const ClusterKey& key) : key_(key) {
    start_sodium();
    randombytes_buf(sender_.data(), sender_.size());
}

std::vector<Frame> MessageSigner::sign(std::span<const Frame> payload) {
    std::vector<Frame> wire;
    wire.reserve(payload.size() + 2);
    wire.emplace_back(signature_bytes);
    Frame& envelope = wire.emplace_back(envelope_bytes);
    std::memcpy(envelope.data(), sender_.data(), sender_bytes);
    const std::uint64_t nonce = next_nonce_++;
    for (std::size_t i = 0; i < sizeof nonce; ++i) {
        envelope[sender_bytes + i] = static_cast<std::byte>(nonce >> (8 * i));
    }
    wire.insert(wire.end(), payload.begin(), payload.end());
    const auto signature = signature_of(key_, std::span(wire).subspan(1));
    std::memcpy(wire[0].data(), signature.data(), signature_bytes);
    return wire;
}

MessageVerifier::MessageVerifier(const ClusterKey& key) : key_(key) {
    start_sodium();
}

std::optional<std::vector<Frame>> MessageVerifier::verify(std::span<const Frame> wire) {
    if (wire.size() < 2 || wire[0].size() != signature_bytes || wire[1].size() != envelope_bytes) {
        ++dropped_.malformed;
        return std::nullopt;
    }
    const auto expected = signature_of(key_, wire.subspan(1));
    if (sodium_memcmp(expected.data(), wire[0].data(), signature_bytes) != 0) {
        ++dropped_.forged;
        return std::nullopt;
    }
    std::array<std::byte, sender_bytes> sender{};
    std::memcpy(sender.data(), wire[1].data(), sender_bytes);
    std::uint64_t nonce = 0;
    for (std::size_t i = 0; i < sizeof nonce; ++i) {
        nonce |= static_cast<std::uint64_t>(wire[1][sender_bytes + i]) << (8 * i);
    }
    std::uint64_t& last = last_nonce_[sender];
    if (nonce <= last) {
        ++dropped_.replayed;
        return std::nullopt;
    }
    last = nonce;
    return std::vector<Frame>(wire.begin() + 2, wire.end());
}

}  // namespace crew::detail
