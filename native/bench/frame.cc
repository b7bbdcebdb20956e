#include "frame.h"

#include <arpa/inet.h>
#include <string.h>

namespace macvtap {
namespace frame {

namespace {

uint16_t Get16(const uint8_t* p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return ntohs(v);
}
void Put16(uint8_t* p, uint16_t host) {
  uint16_t v = htons(host);
  memcpy(p, &v, 2);
}
uint32_t GetRaw32(const uint8_t* p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

template <size_t N>
void SwapBytes(uint8_t* a, uint8_t* b) {
  uint8_t t[N];
  memcpy(t, a, N);
  memcpy(a, b, N);
  memcpy(b, t, N);
}

}  // namespace

bool ReadVnet(const uint8_t* p, size_t len, VnetHdr* out) {
  if (len < 10) return false;
  out->flags = p[0];
  out->gso_type = p[1];
  memcpy(&out->hdr_len, p + 2, 2);
  memcpy(&out->gso_size, p + 4, 2);
  memcpy(&out->csum_start, p + 6, 2);
  memcpy(&out->csum_offset, p + 8, 2);
  return true;
}

bool WriteVnet(uint8_t* p, size_t cap, size_t size, const VnetHdr& h) {
  if (size < 10 || size > cap) return false;
  memset(p, 0, size);
  p[0] = h.flags;
  p[1] = h.gso_type;
  memcpy(p + 2, &h.hdr_len, 2);
  memcpy(p + 4, &h.gso_size, 2);
  memcpy(p + 6, &h.csum_start, 2);
  memcpy(p + 8, &h.csum_offset, 2);
  return true;
}

uint32_t SumBytes(const uint8_t* p, size_t len, uint32_t sum) {
  // 64-bit accumulator: no carry handling inside the loop for any frame size we can see (< 2^32 bytes).
  uint64_t acc = sum;
  size_t i = 0;
  for (; i + 4 <= len; i += 4) {
    uint32_t w;
    memcpy(&w, p + i, 4);
    acc += ntohl(w);
  }
  for (; i + 2 <= len; i += 2) acc += Get16(p + i);
  if (i < len) acc += static_cast<uint32_t>(p[i]) << 8;
  while (acc >> 32) acc = (acc & 0xffffffffu) + (acc >> 32);
  // 32-bit words summed as such equal the 16-bit sum after folding, so callers just Fold().
  return static_cast<uint32_t>(acc);
}

uint16_t Fold(uint32_t sum) {
  uint32_t s = (sum & 0xffff) + (sum >> 16);
  s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(s);
}

uint32_t PseudoSum(uint32_t src_ip, uint32_t dst_ip, uint16_t udp_len) {
  uint32_t s = 0;
  uint32_t a = ntohl(src_ip), b = ntohl(dst_ip);
  s += (a >> 16) + (a & 0xffff) + (b >> 16) + (b & 0xffff);
  s += kProtoUdp;
  s += udp_len;
  return s;
}

Parsed Parse(const uint8_t* p, size_t len, bool verify_udp) {
  Parsed f;
  if (p == nullptr || len < kEthLen) return f;
  f.ethertype = Get16(p + 12);
  if (f.ethertype == kEtherArp) {
    if (len < kEthLen + kArpLen) return f;
    const uint8_t* a = p + kEthLen;
    // Ethernet (1) / IPv4 (0x0800), 6-byte MACs, 4-byte addresses: anything else is not ours to answer.
    if (Get16(a) != 1 || Get16(a + 2) != kEtherIpv4 || a[4] != 6 || a[5] != 4) return f;
    uint16_t op = Get16(a + 6);
    f.arp_sender_mac_off = kEthLen + 8;
    f.arp_sender_ip = GetRaw32(a + 14);
    f.arp_target_ip = GetRaw32(a + 24);
    if (op == 1) f.kind = Kind::kArpRequest;
    if (op == 2) f.kind = Kind::kArpReply;
    return f;
  }
  if (f.ethertype != kEtherIpv4) return f;
  if (len < kEthLen + kIpv4Len) return f;
  const uint8_t* ip = p + kEthLen;
  if ((ip[0] >> 4) != 4) return f;
  size_t ihl = static_cast<size_t>(ip[0] & 0x0f) * 4;
  if (ihl < kIpv4Len || kEthLen + ihl > len) return f;
  size_t total = Get16(ip + 2);
  if (total < ihl || kEthLen + total > len) return f;
  // Fragments (MF set or an offset) carry no complete UDP header to answer.
  if ((Get16(ip + 6) & 0x3fff) != 0) return f;
  if (ip[9] != kProtoUdp) return f;
  f.ip_csum_ok = Fold(SumBytes(ip, ihl, 0)) == 0xffff;
  f.l3_off = kEthLen;
  f.l4_off = kEthLen + ihl;
  if (total - ihl < kUdpLen) return f;
  const uint8_t* u = p + f.l4_off;
  size_t udp_len = Get16(u + 4);
  if (udp_len < kUdpLen || udp_len > total - ihl) return f;
  f.src_ip = GetRaw32(ip + 12);
  f.dst_ip = GetRaw32(ip + 16);
  f.src_port = Get16(u);
  f.dst_port = Get16(u + 2);
  f.payload_off = f.l4_off + kUdpLen;
  f.payload_len = udp_len - kUdpLen;
  uint16_t csum = Get16(u + 6);
  if (!verify_udp || csum == 0) {
    f.udp_csum_ok = true;
  } else {
    uint32_t s = PseudoSum(f.src_ip, f.dst_ip, static_cast<uint16_t>(udp_len));
    f.udp_csum_ok = Fold(SumBytes(u, udp_len, s)) == 0xffff;
  }
  f.kind = Kind::kUdp4;
  return f;
}

size_t BuildArpReply(uint8_t* out, size_t cap, const uint8_t* in, const Parsed& req, const uint8_t our_mac[6],
                     uint32_t our_ip) {
  if (cap < kMinFrame || req.kind != Kind::kArpRequest) return 0;
  const uint8_t* requester = in + req.arp_sender_mac_off;
  memset(out, 0, kMinFrame);
  memcpy(out, requester, 6);
  memcpy(out + 6, our_mac, 6);
  Put16(out + 12, kEtherArp);
  uint8_t* a = out + kEthLen;
  Put16(a, 1);
  Put16(a + 2, kEtherIpv4);
  a[4] = 6;
  a[5] = 4;
  Put16(a + 6, 2);
  memcpy(a + 8, our_mac, 6);
  memcpy(a + 14, &our_ip, 4);
  memcpy(a + 18, requester, 6);
  memcpy(a + 24, &req.arp_sender_ip, 4);
  return kMinFrame;
}

size_t BuildUdp4(uint8_t* out, size_t cap, const UdpSpec& spec, size_t payload_len, bool partial_csum) {
  if (payload_len > 65535 - kIpv4Len - kUdpLen) return 0;
  size_t len = kEthLen + kIpv4Len + kUdpLen + payload_len;
  size_t padded = len < kMinFrame ? kMinFrame : len;
  if (padded > cap) return 0;
  memset(out, 0, padded);
  memcpy(out, spec.dst_mac, 6);
  memcpy(out + 6, spec.src_mac, 6);
  Put16(out + 12, kEtherIpv4);
  uint8_t* ip = out + kEthLen;
  ip[0] = 0x45;
  Put16(ip + 2, static_cast<uint16_t>(kIpv4Len + kUdpLen + payload_len));
  Put16(ip + 6, 0x4000);  // DF, no fragments
  ip[8] = 64;
  ip[9] = kProtoUdp;
  memcpy(ip + 12, &spec.src_ip, 4);
  memcpy(ip + 16, &spec.dst_ip, 4);
  Put16(ip + 10, static_cast<uint16_t>(~Fold(SumBytes(ip, kIpv4Len, 0))));
  uint8_t* u = ip + kIpv4Len;
  uint16_t udp_len = static_cast<uint16_t>(kUdpLen + payload_len);
  Put16(u, spec.src_port);
  Put16(u + 2, spec.dst_port);
  Put16(u + 4, udp_len);
  for (size_t i = 0; i < payload_len; ++i) u[kUdpLen + i] = static_cast<uint8_t>('a' + i % 26);
  uint32_t pseudo = PseudoSum(spec.src_ip, spec.dst_ip, udp_len);
  if (partial_csum) {
    // CHECKSUM_PARTIAL convention: the field holds the folded pseudo-header sum, not complemented.
    Put16(u + 6, Fold(pseudo));
  } else {
    uint16_t c = static_cast<uint16_t>(~Fold(SumBytes(u, udp_len, pseudo)));
    Put16(u + 6, c == 0 ? 0xffff : c);  // 0 means "no checksum" in UDP: send its one's-complement twin
  }
  return padded;
}

void SwapUdp4(uint8_t* p, const Parsed& f) {
  SwapBytes<6>(p, p + 6);
  SwapBytes<4>(p + f.l3_off + 12, p + f.l3_off + 16);
  SwapBytes<2>(p + f.l4_off, p + f.l4_off + 2);
}

GuestVerdict GuestStep(uint8_t* buf, size_t n, const GuestIdentity& id, uint8_t* reply, size_t reply_cap) {
  GuestVerdict v;
  size_t vh = id.vnet_hdr;
  if (n < vh + kEthLen) return v;
  uint8_t* f = buf + vh;
  size_t flen = n - vh;
  v.frame_len = flen;
  if (id.raw_echo && flen >= 42 && f[12] == 0x08 && f[13] == 0x00 && f[14] == 0x45 && f[23] == kProtoUdp) {
    // The baseline: a fixed-offset swap and a write, no validation at all.
    SwapBytes<6>(f, f + 6);
    SwapBytes<4>(f + 26, f + 30);
    SwapBytes<2>(f + 34, f + 36);
    v.action = GuestAction::kEcho;
    return v;
  }
  VnetHdr h;
  if (vh) ReadVnet(buf, n, &h);
  Parsed p = Parse(f, flen, !(h.flags & kVnetNeedsCsum));
  if (p.kind == Kind::kArpRequest) {
    if (p.arp_target_ip != id.ip || reply_cap < vh) return v;
    size_t len = BuildArpReply(reply + vh, reply_cap - vh, f, p, id.mac, id.ip);
    if (vh) WriteVnet(reply, reply_cap, vh, VnetHdr{});
    v.action = GuestAction::kArpReply;
    v.reply_len = vh + len;
    return v;
  }
  static const uint8_t kBroadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  bool for_us = memcmp(f, id.mac, 6) == 0 || memcmp(f, kBroadcast, 6) == 0;
  if (p.kind != Kind::kUdp4 || !p.ip_csum_ok || !p.udp_csum_ok || p.dst_ip != id.ip || !for_us) return v;
  if (id.echo) {
    SwapUdp4(f, p);
    v.action = GuestAction::kEcho;
  } else {
    v.action = GuestAction::kReceived;
  }
  return v;
}

}  // namespace frame
}  // namespace macvtap
