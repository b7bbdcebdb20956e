// Ethernet / ARP / IPv4 / UDP and the virtio-net header: parse and build, bounds-checked, as pure functions over
// byte buffers (no syscalls, no allocation), so the datapath endpoints share one implementation and a fuzzer can
// target it. Multi-byte fields are read and written with memcpy: frames are not aligned.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace macvtap {
namespace frame {

constexpr size_t kEthLen = 14;
constexpr size_t kArpLen = 28;
constexpr size_t kIpv4Len = 20;  // without options (what we build)
constexpr size_t kUdpLen = 8;
constexpr size_t kMinFrame = 60;  // Ethernet minimum without FCS; short frames are padded to it
constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherArp = 0x0806;
constexpr uint8_t kProtoUdp = 17;

// struct virtio_net_hdr (little-endian on the hosts we run on; the tap device uses native order by default).
constexpr uint8_t kVnetNeedsCsum = 1;   // VIRTIO_NET_HDR_F_NEEDS_CSUM
constexpr uint8_t kVnetDataValid = 2;   // VIRTIO_NET_HDR_F_DATA_VALID
constexpr uint8_t kGsoNone = 0;         // VIRTIO_NET_HDR_GSO_NONE
constexpr uint8_t kGsoUdpL4 = 5;        // VIRTIO_NET_HDR_GSO_UDP_L4 (Linux 5.x uapi; older headers lack it)

struct VnetHdr {
  uint8_t flags = 0;
  uint8_t gso_type = kGsoNone;
  uint16_t hdr_len = 0;
  uint16_t gso_size = 0;
  uint16_t csum_start = 0;
  uint16_t csum_offset = 0;
};

/** Reads the first 10 bytes of a vnet header; false when `len` < 10. */
bool ReadVnet(const uint8_t* p, size_t len, VnetHdr* out);
/** Writes a vnet header of `size` bytes (10 or 12; num_buffers, if any, is zeroed); false when it does not fit. */
bool WriteVnet(uint8_t* p, size_t cap, size_t size, const VnetHdr& h);

enum class Kind { kOther, kArpRequest, kArpReply, kUdp4 };

/** What Parse found. Offsets are from the start of the Ethernet frame; IPs are in network byte order. */
struct Parsed {
  Kind kind = Kind::kOther;
  uint16_t ethertype = 0;
  // ARP (Ethernet/IPv4 only)
  uint32_t arp_sender_ip = 0, arp_target_ip = 0;
  size_t arp_sender_mac_off = 0;
  // IPv4 / UDP
  size_t l3_off = 0, l4_off = 0, payload_off = 0;
  size_t payload_len = 0;
  uint32_t src_ip = 0, dst_ip = 0;
  uint16_t src_port = 0, dst_port = 0;
  bool ip_csum_ok = false;
  /** True when the UDP checksum verified, was 0 (none), or was not checked. */
  bool udp_csum_ok = false;
};

/**
 * Parses one Ethernet frame. Never reads outside [p, p+len). Truncated or inconsistent headers (IHL < 5, total
 * length beyond the frame, UDP length beyond the IP payload, fragments) give Kind::kOther. `verify_udp` checks the
 * UDP checksum (skip it for frames marked NEEDS_CSUM, whose checksum field holds only the pseudo-header sum).
 */
Parsed Parse(const uint8_t* p, size_t len, bool verify_udp);

/** RFC 1071 one's-complement sum of [p, p+len), added to `sum` (not folded, not complemented). */
uint32_t SumBytes(const uint8_t* p, size_t len, uint32_t sum);
/** Folds a 32-bit sum to 16 bits (not complemented). */
uint16_t Fold(uint32_t sum);
/** The IPv4 pseudo-header sum for UDP (addresses in network order, length in host order). */
uint32_t PseudoSum(uint32_t src_ip, uint32_t dst_ip, uint16_t udp_len);

/** An ARP reply "`our_ip` is at `our_mac`" to the request `req` in `in`. Returns its length (60), 0 if no room. */
size_t BuildArpReply(uint8_t* out, size_t cap, const uint8_t* in, const Parsed& req, const uint8_t our_mac[6],
                     uint32_t our_ip);

/** Addresses of a UDP/IPv4 frame to build. */
struct UdpSpec {
  uint8_t src_mac[6] = {0};
  uint8_t dst_mac[6] = {0};
  uint32_t src_ip = 0, dst_ip = 0;  // network order
  uint16_t src_port = 0, dst_port = 0;  // host order
};

/**
 * A UDP/IPv4 frame with `payload_len` bytes of payload (filled with a pattern), valid IP checksum and a full UDP
 * checksum — or, with `partial_csum`, the pseudo-header sum only (for NEEDS_CSUM / GSO, completed by the kernel).
 * Padded to 60 bytes. Returns the frame length, 0 when it does not fit or the payload exceeds IPv4's 65507 bytes.
 */
size_t BuildUdp4(uint8_t* out, size_t cap, const UdpSpec& spec, size_t payload_len, bool partial_csum);

/**
 * Turns a received UDP/IPv4 frame into its echo in place: swaps MACs, IPs and ports. The one's-complement sums are
 * order-independent, so both checksums (and a NEEDS_CSUM partial sum) stay valid without recomputing.
 */
void SwapUdp4(uint8_t* p, const Parsed& f);

/** What the guest endpoint does with one received frame (GuestStep). */
enum class GuestAction {
  kIgnore,    // too short, not for us, bad checksum, an ARP request for another address, …
  kArpReply,  // answer with the `reply_len` bytes (vnet header included) written to the reply buffer
  kReceived,  // a UDP datagram for us, counted (sink / generate modes)
  kEcho,      // the same, rewritten in place into its echo: write the `len` received bytes back
};

/** The guest's address and mode, as GuestStep needs them. */
struct GuestIdentity {
  uint8_t mac[6] = {0};
  uint32_t ip = 0;  // network order
  bool echo = false;      // echo UDP back (echo and raw-echo modes)
  bool raw_echo = false;  // the baseline: swap at fixed offsets with no validation at all
  size_t vnet_hdr = 0;    // 0, 10 or 12
};

struct GuestVerdict {
  GuestAction action = GuestAction::kIgnore;
  size_t reply_len = 0;  // kArpReply: vnet header + frame
  size_t frame_len = 0;  // the Ethernet frame's length (without the vnet header)
};

/**
 * The guest endpoint's per-frame logic, apart from its fd: `buf` holds `n` received bytes (vnet header, then the
 * frame). Answers ARP requests for `id.ip` into `reply` (`reply_cap` bytes), accepts UDP/IPv4 for its MAC (or
 * broadcast) and IP with valid checksums, and for kEcho rewrites the frame in place (SwapUdp4). Never reads or
 * writes outside [buf, buf+n) and [reply, reply+reply_cap).
 */
GuestVerdict GuestStep(uint8_t* buf, size_t n, const GuestIdentity& id, uint8_t* reply, size_t reply_cap);

}  // namespace frame
}  // namespace macvtap
