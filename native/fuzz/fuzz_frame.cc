// libFuzzer target (e): the datapath's frame handling over fuzzed frames: frame::Parse and ReadVnet, and the guest
// endpoint's per-frame step (GuestStep: ARP reply, UDP echo by swapping addresses in place). Parsed offsets must lie
// inside the frame; an ARP reply must answer the request it was built from; an echo must re-parse as the same
// datagram with addresses and ports swapped and checksums still valid; nothing else in the buffer may change.
#include <string.h>

#include <vector>

#include "check.h"
#include "frame.h"

namespace f = macvtap::frame;

namespace {

void CheckParsed(const f::Parsed& p, size_t len) {
  switch (p.kind) {
    case f::Kind::kOther:
      break;
    case f::Kind::kArpRequest:
    case f::Kind::kArpReply:
      MVT_CHECK(len >= f::kEthLen + f::kArpLen && p.arp_sender_mac_off + 6 <= len, "ARP in %zu bytes", len);
      break;
    case f::Kind::kUdp4:
      MVT_CHECK(p.l3_off == f::kEthLen && p.l4_off >= p.l3_off + f::kIpv4Len && p.payload_off == p.l4_off + f::kUdpLen,
                "offsets l3 %zu l4 %zu payload %zu", p.l3_off, p.l4_off, p.payload_off);
      MVT_CHECK(p.payload_off + p.payload_len <= len, "payload [%zu, +%zu) beyond %zu bytes", p.payload_off,
                p.payload_len, len);
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  uint8_t ctl = data[0];
  static const size_t kVnet[4] = {0, 10, 12, 0};
  f::GuestIdentity id;
  id.vnet_hdr = kVnet[ctl & 3];
  id.echo = (ctl & 4) != 0;
  id.raw_echo = id.echo && (ctl & 8) != 0;
  bool verify = (ctl & 16) != 0;
  // Exact-size heap copies: AddressSanitizer reports any byte read or written past the frame.
  std::vector<uint8_t> in(data + 1, data + size);
  size_t n = in.size();

  f::VnetHdr vh;
  MVT_CHECK(f::ReadVnet(in.data(), n, &vh) == (n >= 10), "ReadVnet on %zu bytes", n);
  f::Parsed direct = f::Parse(in.data(), n, verify);
  CheckParsed(direct, n);

  if (n < id.vnet_hdr) return 0;
  const uint8_t* frame_in = in.data() + id.vnet_hdr;
  size_t flen = n - id.vnet_hdr;
  bool needs_csum = id.vnet_hdr && n >= 10 && (in[0] & f::kVnetNeedsCsum);
  f::Parsed before = f::Parse(frame_in, flen, !needs_csum);
  CheckParsed(before, flen);
  // Be the guest this frame is for (when ctl says so), so the accepting paths are reached, not only refusals.
  if (ctl & 32) {
    if (flen >= 6) memcpy(id.mac, frame_in, 6);
    id.ip = before.kind == f::Kind::kArpRequest ? before.arp_target_ip : before.dst_ip;
  }

  std::vector<uint8_t> buf = in;
  std::vector<uint8_t> reply(128);
  f::GuestVerdict v = f::GuestStep(buf.data(), n, id, reply.data(), reply.size());
  MVT_CHECK(id.vnet_hdr == 0 || memcmp(buf.data(), in.data(), id.vnet_hdr) == 0, "the vnet header was changed");
  if (v.action != f::GuestAction::kIgnore) MVT_CHECK(v.frame_len == flen, "frame_len %zu of %zu", v.frame_len, flen);
  const uint8_t* out = buf.data() + id.vnet_hdr;
  switch (v.action) {
    case f::GuestAction::kIgnore:
    case f::GuestAction::kReceived:
      MVT_CHECK(buf == in, "a frame that was not echoed was changed");
      break;
    case f::GuestAction::kArpReply: {
      MVT_CHECK(before.kind == f::Kind::kArpRequest && before.arp_target_ip == id.ip, "ARP reply to a non-request");
      MVT_CHECK(v.reply_len == id.vnet_hdr + f::kMinFrame, "ARP reply of %zu bytes", v.reply_len);
      MVT_CHECK(buf == in, "the request was changed");
      for (size_t i = 0; i < id.vnet_hdr; ++i) MVT_CHECK(reply[i] == 0, "vnet header byte %zu not zero", i);
      const uint8_t* r = reply.data() + id.vnet_hdr;
      f::Parsed rp = f::Parse(r, f::kMinFrame, true);
      MVT_CHECK(rp.kind == f::Kind::kArpReply, "the reply does not parse as an ARP reply");
      MVT_CHECK(rp.arp_sender_ip == id.ip && rp.arp_target_ip == before.arp_sender_ip, "ARP reply addresses");
      MVT_CHECK(memcmp(r, frame_in + before.arp_sender_mac_off, 6) == 0, "ARP reply not sent to the requester");
      MVT_CHECK(memcmp(r + rp.arp_sender_mac_off, id.mac, 6) == 0, "ARP reply does not carry our MAC");
      break;
    }
    case f::GuestAction::kEcho: {
      MVT_CHECK(id.echo, "echo while not echoing");
      MVT_CHECK(buf.size() == in.size(), "size changed");
      MVT_CHECK(memcmp(out, frame_in + 6, 6) == 0 && memcmp(out + 6, frame_in, 6) == 0, "MACs not swapped");
      if (before.kind == f::Kind::kUdp4 && before.ip_csum_ok && before.udp_csum_ok && before.dst_ip == id.ip) {
        // The validated path: the echo is the same datagram, reversed, and both checksums still hold.
        f::Parsed after = f::Parse(out, flen, !needs_csum);
        MVT_CHECK(after.kind == f::Kind::kUdp4, "the echo does not parse as UDP");
        MVT_CHECK(after.src_ip == before.dst_ip && after.dst_ip == before.src_ip, "IPs not swapped");
        MVT_CHECK(after.src_port == before.dst_port && after.dst_port == before.src_port, "ports not swapped");
        MVT_CHECK(after.payload_len == before.payload_len &&
                      memcmp(out + after.payload_off, frame_in + before.payload_off, before.payload_len) == 0,
                  "payload changed");
        MVT_CHECK(after.ip_csum_ok && after.udp_csum_ok, "the echo's checksums no longer verify");
      } else {
        MVT_CHECK(id.raw_echo, "an unvalidated frame echoed outside raw-echo mode");
      }
      // Only the swapped fields may differ.
      bool udp = before.kind == f::Kind::kUdp4;
      size_t l3 = udp ? before.l3_off : 14, l4 = udp ? before.l4_off : 34;
      for (size_t i = 0; i < flen; ++i) {
        bool swapped = i < 12 || (i >= l3 + 12 && i < l3 + 20) || (i >= l4 && i < l4 + 4);
        if (!swapped) MVT_CHECK(out[i] == frame_in[i], "byte %zu changed by the echo", i);
      }
      break;
    }
  }
  return 0;
}
