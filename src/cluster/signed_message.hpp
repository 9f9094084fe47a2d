// cluster/signed_message.hpp: the frames of every message between a cluster's processes, signed
// with the cluster's key (design.md section 6).
//
// On the wire a message is its payload's frames behind two of crew's: the signature (HMAC-SHA256
// with the cluster's key, libsodium's, over every frame after it, each preceded by its length, so
// that bytes cannot move from one frame to the next unseen), then the envelope (the sender's
// random 128-bit id and a nonce that grows with each message it signs). A verifier drops, and
// counts, a message that does not have this form, one whose signature is wrong (another key, a
// byte changed anywhere) and one whose nonce is not above the last it accepted from that sender
// (a replay). Whatever bytes arrive, verify() returns or drops them; it never throws for them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <vector>

namespace crew::detail {

inline constexpr std::size_t cluster_key_bytes = 32;
using Frame = std::vector<std::byte>;

// The secret a cluster's processes share: 256 random bits, wiped from memory when it goes.
class ClusterKey {
  public:
    // A new random key.
    static ClusterKey generate();
    // A key of exactly cluster_key_bytes bytes; throws crew::Error for another size.
    static ClusterKey from_bytes(std::span<const std::byte> bytes);
    ClusterKey(const ClusterKey& other) = default;
    ClusterKey& operator=(const ClusterKey& other) = default;
    ~ClusterKey();

    std::span<const std::byte, cluster_key_bytes> bytes() const noexcept { return bytes_; }

  private:
    ClusterKey() = default;
    std::array<std::byte, cluster_key_bytes> bytes_{};
};

class MessageSigner {
  public:
    explicit MessageSigner(const ClusterKey& key);
    // The wire frames of a message of these payload frames.
    std::vector<Frame> sign(std::span<const Frame> payload);

  private:
    ClusterKey key_;
    std::array<std::byte, 16> sender_{};
    std::uint64_t next_nonce_ = 1;
};

class MessageVerifier {
  public:
    // What was dropped, by reason.
    struct Dropped {
        std::uint64_t malformed = 0;  // not a signature, an envelope and a payload
        std::uint64_t forged = 0;     // a wrong signature
        std::uint64_t replayed = 0;   // a nonce not above the sender's last
    };

    explicit MessageVerifier(const ClusterKey& key);
    // The payload of a genuine message, new from its sender; nothing for any other bytes.
    std::optional<std::vector<Frame>> verify(std::span<const Frame> wire);
    const Dropped& dropped() const noexcept { return dropped_; }

  private:
    ClusterKey key_;
    std::map<std::array<std::byte, 16>, std::uint64_t> last_nonce_;  // by sender
    Dropped dropped_;
};

}  // namespace crew::detail
