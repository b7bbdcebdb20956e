/**
 * Hand-built Ethernet frames, for tests and for the anti-spoofing probe: Ethernet II + IPv4 + UDP (with a correct IPv4
 * header checksum and UDP checksum, so a receiving kernel accepts them), Ethernet II + IPv6 + UDP, neighbour and
 * router advertisements (ICMPv6 with a correct checksum), ARP requests/replies, and the zero virtio-net header a
 * `vnetHdr` queue expects in front of every frame. Parsers read only what they have checked the length of.
 */
import { validate } from 'macvtap/internal';

/** EtherType of IPv4. */
export const ETH_P_IP = 0x0800;
/** EtherType of ARP. */
export const ETH_P_ARP = 0x0806;
/** EtherType of IPv6. */
export const ETH_P_IPV6 = 0x86dd;
/** IPv4 protocol number of UDP. */
export const IPPROTO_UDP = 17;
/** IPv6 next header of ICMPv6. */
export const IPPROTO_ICMPV6 = 58;

const ETH_HLEN = 14;
const IPV4_HLEN = 20;
const IPV6_HLEN = 40;
const UDP_HLEN = 8;
/** The shortest Ethernet frame on the wire without its FCS. */
const ETH_ZLEN = 60;

/** `aa:bb:cc:dd:ee:ff` → 6 bytes. Throws on anything else (a test bug, not a runtime condition). */
export function macBytes(mac: string): Buffer {
  if (validate.macKind(mac) === undefined) throw new Error(`bad MAC ${mac}`);
  return Buffer.from(mac.split(':').map((p) => parseInt(p, 16)));
}

/** 6 bytes → lower-case `aa:bb:cc:dd:ee:ff`. */
export function macString(b: Buffer): string {
  return [...b.subarray(0, 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Dotted IPv4 → 4 bytes. */
export function ipBytes(ip: string): Buffer {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || !parts.every((p) => Number.isInteger(p) && p >= 0 && p <= 255)) throw new Error(`bad IPv4 ${ip}`);
  return Buffer.from(parts);
}

/** 4 bytes → dotted IPv4. */
export function ipString(b: Buffer): string {
  return [...b.subarray(0, 4)].join('.');
}

/** IPv6 text (`fd00::1`, `fe80::1:2ff:fe03:405`; no embedded IPv4) → 16 bytes. Throws on anything else. */
export function ip6Bytes(ip: string): Buffer {
  const halves = ip.split('::');
  const groups = (h: string): string[] => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const missing = 8 - head.length - tail.length;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  if (halves.length > 2 || all.length !== 8 || !all.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) throw new Error(`bad IPv6 ${ip}`);
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** 16 bytes → IPv6 text, lower case, the longest run of two or more zero groups as `::` (RFC 5952). */
export function ip6String(b: Buffer): string {
  const g = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j > i ? j : i + 1;
  }
  const hex = g.map((x) => x.toString(16));
  return best < 0 ? hex.join(':') : `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** The EUI-64 link-local address (`fe80::/64`) a host derives from `mac` (the universal/local bit flipped). */
export function linkLocal6(mac: string): string {
  const m = macBytes(mac);
  const iid = Buffer.from([m[0]! ^ 0x02, m[1]!, m[2]!, 0xff, 0xfe, m[3]!, m[4]!, m[5]!]);
  return ip6String(Buffer.concat([Buffer.from([0xfe, 0x80, 0, 0, 0, 0, 0, 0]), iid]));
}

/** The Ethernet multicast MAC of an IPv6 multicast address (`33:33` + its last 32 bits). */
export function ip6MulticastMac(ip: string): string {
  return macString(Buffer.concat([Buffer.from([0x33, 0x33]), ip6Bytes(ip).subarray(12)]));
}

/** Sum of big-endian 16-bit words (odd trailing byte padded with zero), not yet folded. */
function sum16(buf: Buffer, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += buf.readUInt16BE(i);
  if (buf.length % 2 === 1) sum += (buf[buf.length - 1] as number) << 8;
  return sum;
}

/** Folds a 32-bit sum into 16 bits and complements it: the RFC 1071 Internet checksum. */
function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** RFC 1071 checksum of `buf` (0 when `buf` already contains a correct checksum field). */
export function internetChecksum(buf: Buffer): number {
  return fold(sum16(buf));
}

/**
 * UDP checksum over the IPv4 pseudo-header and `udp` (header + payload, checksum field as given). A computed 0 is sent
 * as 0xffff (RFC 768: 0 means "no checksum").
 */
export function udpChecksum(srcIp: Buffer, dstIp: Buffer, udp: Buffer): number {
  const pseudo = Buffer.alloc(12);
  srcIp.copy(pseudo, 0);
  dstIp.copy(pseudo, 4);
  pseudo[9] = IPPROTO_UDP;
  pseudo.writeUInt16BE(udp.length, 10);
  const c = fold(sum16(udp, sum16(pseudo)));
  return c === 0 ? 0xffff : c;
}

/** Checksum of an upper-layer message `l4` (checksum field as given) over the IPv6 pseudo-header (RFC 8200 8.1). */
export function ip6Checksum(src: Buffer, dst: Buffer, nextHeader: number, l4: Buffer): number {
  const pseudo = Buffer.alloc(40);
  src.copy(pseudo, 0);
  dst.copy(pseudo, 16);
  pseudo.writeUInt32BE(l4.length, 32);
  pseudo[39] = nextHeader;
  return fold(sum16(l4, sum16(pseudo)));
}

/** What {@link buildUdpFrame} needs. */
export interface UdpFrameSpec {
  srcMac: string;
  dstMac: string;
  srcIp: string;
  dstIp: string;
  srcPort: number;
  dstPort: number;
  payload: Buffer;
  /** IPv4 identification; any value works since the datagram is never fragmented. */
  id?: number;
  ttl?: number;
  /** Zero-pad the frame to the 60-byte Ethernet minimum (the IPv4 total length still says where the datagram ends). */
  pad?: boolean;
}

/** An Ethernet II / IPv4 / UDP frame with both checksums filled in (DF set, no options). */
export function buildUdpFrame(spec: UdpFrameSpec): Buffer {
  const udpLen = UDP_HLEN + spec.payload.length;
  const len = ETH_HLEN + IPV4_HLEN + udpLen;
  const frame = Buffer.alloc(spec.pad ? Math.max(ETH_ZLEN, len) : len);
  macBytes(spec.dstMac).copy(frame, 0);
  macBytes(spec.srcMac).copy(frame, 6);
  frame.writeUInt16BE(ETH_P_IP, 12);

  const ip = frame.subarray(ETH_HLEN, ETH_HLEN + IPV4_HLEN);
  ip[0] = 0x45; // version 4, IHL 5 words
  ip.writeUInt16BE(IPV4_HLEN + udpLen, 2);
  ip.writeUInt16BE(spec.id ?? 0x1234, 4);
  ip.writeUInt16BE(0x4000, 6); // DF
  ip[8] = spec.ttl ?? 64;
  ip[9] = IPPROTO_UDP;
  const src = ipBytes(spec.srcIp);
  const dst = ipBytes(spec.dstIp);
  src.copy(ip, 12);
  dst.copy(ip, 16);
  ip.writeUInt16BE(internetChecksum(ip), 10);

  const udp = frame.subarray(ETH_HLEN + IPV4_HLEN, len);
  udp.writeUInt16BE(spec.srcPort, 0);
  udp.writeUInt16BE(spec.dstPort, 2);
  udp.writeUInt16BE(udpLen, 4);
  spec.payload.copy(udp, UDP_HLEN);
  udp.writeUInt16BE(udpChecksum(src, dst, udp), 6);
  return frame;
}

/** An Ethernet II / IPv6 frame around an upper-layer message whose checksum sits at `csumAt` (filled in here). */
function ipv6Frame(o: { srcMac: string; dstMac: string; srcIp: string; dstIp: string; hopLimit: number }, next: number, l4: Buffer, csumAt: number): Buffer {
  const frame = Buffer.alloc(Math.max(ETH_ZLEN, ETH_HLEN + IPV6_HLEN + l4.length));
  macBytes(o.dstMac).copy(frame, 0);
  macBytes(o.srcMac).copy(frame, 6);
  frame.writeUInt16BE(ETH_P_IPV6, 12);
  const ip = frame.subarray(ETH_HLEN, ETH_HLEN + IPV6_HLEN);
  ip.writeUInt32BE(0x6000_0000, 0); // version 6, no traffic class or flow label
  ip.writeUInt16BE(l4.length, 4);
  ip[6] = next;
  ip[7] = o.hopLimit;
  const src = ip6Bytes(o.srcIp);
  const dst = ip6Bytes(o.dstIp);
  src.copy(ip, 8);
  dst.copy(ip, 24);
  const body = Buffer.from(l4);
  body.writeUInt16BE(0, csumAt);
  let c = ip6Checksum(src, dst, next, body);
  if (next === IPPROTO_UDP && c === 0) c = 0xffff; // UDP over IPv6: 0 is not allowed (RFC 8200 8.1)
  body.writeUInt16BE(c, csumAt);
  body.copy(frame, ETH_HLEN + IPV6_HLEN);
  return frame;
}

/** What {@link buildUdp6Frame} needs: {@link UdpFrameSpec} with IPv6 addresses. */
export type Udp6FrameSpec = Omit<UdpFrameSpec, 'id' | 'ttl' | 'pad'> & { hopLimit?: number };

/** An Ethernet II / IPv6 / UDP frame with its checksum filled in, padded to the Ethernet minimum when shorter. */
export function buildUdp6Frame(spec: Udp6FrameSpec): Buffer {
  const udp = Buffer.alloc(UDP_HLEN + spec.payload.length);
  udp.writeUInt16BE(spec.srcPort, 0);
  udp.writeUInt16BE(spec.dstPort, 2);
  udp.writeUInt16BE(udp.length, 4);
  spec.payload.copy(udp, UDP_HLEN);
  return ipv6Frame({ ...spec, hopLimit: spec.hopLimit ?? 64 }, IPPROTO_UDP, udp, 6);
}

/**
 * A neighbour discovery option (RFC 4861 4.6): type, length in units of 8 bytes, `data` zero-padded to fill them.
 * Type 1 source / 2 target link-layer address; 253 and 254 are for experiments (RFC 4727), which receivers ignore.
 */
export function ndOption(type: number, data: Buffer): Buffer {
  const units = Math.ceil((data.length + 2) / 8);
  const o = Buffer.alloc(units * 8);
  o[0] = type;
  o[1] = units;
  data.copy(o, 2);
  return o;
}

/** ND option type of a source link-layer address. */
export const ND_OPT_SOURCE_LLADDR = 1;
/** ND option type of a target link-layer address. */
export const ND_OPT_TARGET_LLADDR = 2;
/** An ND option type reserved for experiments (RFC 4727): ignored by receivers; the probe carries its marker in it. */
export const ND_OPT_EXPERIMENT = 253;

/** What {@link buildNeighborAdvert} needs. Sent with hop limit 255, as neighbour discovery must be. */
export interface NeighborAdvertSpec {
  srcMac: string;
  dstMac: string;
  srcIp: string;
  dstIp: string;
  /** The address the advertisement is about. */
  target: string;
  /** Router, solicited, override flags (RFC 4861 4.4). */
  flags?: { router?: boolean; solicited?: boolean; override?: boolean };
  /** Options after the fixed part, already encoded (see {@link ndOption}). */
  options: Buffer[];
}

/** An Ethernet II / IPv6 / ICMPv6 neighbour advertisement (type 136) with its checksum. */
export function buildNeighborAdvert(spec: NeighborAdvertSpec): Buffer {
  const fixed = Buffer.alloc(24);
  fixed[0] = 136;
  const f = spec.flags ?? {};
  fixed[4] = (f.router ? 0x80 : 0) | (f.solicited ? 0x40 : 0) | (f.override ? 0x20 : 0);
  ip6Bytes(spec.target).copy(fixed, 8);
  return ipv6Frame({ ...spec, hopLimit: 255 }, IPPROTO_ICMPV6, Buffer.concat([fixed, ...spec.options]), 2);
}

/** What {@link buildRouterAdvert} needs (hop limit 255; the source must be link-local for receivers to take it). */
export interface RouterAdvertSpec {
  srcMac: string;
  dstMac: string;
  srcIp: string;
  dstIp: string;
  /** Router lifetime, s (0: not a default router). */
  lifetime: number;
  options: Buffer[];
}

/** An Ethernet II / IPv6 / ICMPv6 router advertisement (type 134) with its checksum. */
export function buildRouterAdvert(spec: RouterAdvertSpec): Buffer {
  const fixed = Buffer.alloc(16);
  fixed[0] = 134;
  fixed[4] = 64; // current hop limit
  fixed.writeUInt16BE(spec.lifetime, 6);
  return ipv6Frame({ ...spec, hopLimit: 255 }, IPPROTO_ICMPV6, Buffer.concat([fixed, ...spec.options]), 2);
}

/** What {@link buildArp} needs. `op` 1 = request, 2 = reply. */
export interface ArpSpec {
  op: 1 | 2;
  senderMac: string;
  senderIp: string;
  /** Ignored by requests (sent as zeros). */
  targetMac: string;
  targetIp: string;
  /** Ethernet destination; default broadcast for requests, `targetMac` for replies. */
  dstMac?: string;
  /** Ethernet source; default `senderMac` (another value: an ARP body that disagrees with its frame). */
  srcMac?: string;
  /** Bytes after the ARP body, where Ethernet padding goes (receivers ignore them). */
  trailer?: Buffer;
}

/** An Ethernet II ARP frame (IPv4 over Ethernet), padded to the 60-byte minimum. */
export function buildArp(spec: ArpSpec): Buffer {
  const trailer = spec.trailer ?? Buffer.alloc(0);
  const frame = Buffer.alloc(Math.max(ETH_ZLEN, ETH_HLEN + 28 + trailer.length));
  const dst = spec.dstMac ?? (spec.op === 1 ? 'ff:ff:ff:ff:ff:ff' : spec.targetMac);
  macBytes(dst).copy(frame, 0);
  macBytes(spec.srcMac ?? spec.senderMac).copy(frame, 6);
  frame.writeUInt16BE(ETH_P_ARP, 12);
  const a = frame.subarray(ETH_HLEN);
  a.writeUInt16BE(1, 0); // hardware: Ethernet
  a.writeUInt16BE(ETH_P_IP, 2);
  a[4] = 6;
  a[5] = 4;
  a.writeUInt16BE(spec.op, 6);
  macBytes(spec.senderMac).copy(a, 8);
  ipBytes(spec.senderIp).copy(a, 14);
  if (spec.op === 2) macBytes(spec.targetMac).copy(a, 18);
  ipBytes(spec.targetIp).copy(a, 24);
  trailer.copy(a, 28);
  return frame;
}

/** A parsed ARP body. */
export interface ParsedArp {
  op: number;
  senderMac: string;
  senderIp: string;
  targetMac: string;
  targetIp: string;
}

/** A parsed IPv4/UDP datagram, with checksum verdicts. */
export interface ParsedUdp {
  srcIp: string;
  dstIp: string;
  ttl: number;
  /** The IPv4 header checksum verifies. */
  ipChecksumOk: boolean;
  srcPort: number;
  dstPort: number;
  /** The UDP checksum field as received (0 = none). */
  udpChecksum: number;
  /** The UDP checksum verifies (true when the field is 0: none was sent). */
  udpChecksumOk: boolean;
  payload: Buffer;
}

/** A parsed Ethernet frame: always the Ethernet header, plus ARP or IPv4/UDP when it is one. */
export interface ParsedFrame {
  dstMac: string;
  srcMac: string;
  ethertype: number;
  arp: ParsedArp | null;
  udp: ParsedUdp | null;
}

/** Parses an Ethernet frame (no vnet header; strip it with `frame.subarray(size)` first). Throws if truncated. */
export function parseFrame(frame: Buffer): ParsedFrame {
  if (frame.length < ETH_HLEN) throw new Error(`frame of ${frame.length} bytes is shorter than an Ethernet header`);
  const out: ParsedFrame = {
    dstMac: macString(frame.subarray(0, 6)),
    srcMac: macString(frame.subarray(6, 12)),
    ethertype: frame.readUInt16BE(12),
    arp: null,
    udp: null,
  };
  const body = frame.subarray(ETH_HLEN);
  if (out.ethertype === ETH_P_ARP && body.length >= 28) {
    out.arp = {
      op: body.readUInt16BE(6),
      senderMac: macString(body.subarray(8, 14)),
      senderIp: ipString(body.subarray(14, 18)),
      targetMac: macString(body.subarray(18, 24)),
      targetIp: ipString(body.subarray(24, 28)),
    };
  } else if (out.ethertype === ETH_P_IP && body.length >= IPV4_HLEN && body[0]! >> 4 === 4) {
    const ihl = (body[0]! & 0x0f) * 4;
    const totalLen = body.readUInt16BE(2);
    // Ethernet pads short frames: trust the IP total length, never read past what was received.
    if (body[9] === IPPROTO_UDP && ihl >= IPV4_HLEN && totalLen <= body.length && totalLen >= ihl + UDP_HLEN) {
      const ip = body.subarray(0, ihl);
      const udp = body.subarray(ihl, totalLen);
      const udpLen = udp.readUInt16BE(4);
      if (udpLen >= UDP_HLEN && udpLen <= udp.length) {
        const seg = udp.subarray(0, udpLen);
        const field = seg.readUInt16BE(6);
        const zeroed = Buffer.from(seg);
        zeroed.writeUInt16BE(0, 6);
        out.udp = {
          srcIp: ipString(ip.subarray(12, 16)),
          dstIp: ipString(ip.subarray(16, 20)),
          ttl: ip[8]!,
          ipChecksumOk: internetChecksum(ip) === 0,
          srcPort: seg.readUInt16BE(0),
          dstPort: seg.readUInt16BE(2),
          udpChecksum: field,
          udpChecksumOk: field === 0 || udpChecksum(ip.subarray(12, 16), ip.subarray(16, 20), zeroed) === field,
          payload: Buffer.from(seg.subarray(UDP_HLEN)),
        };
      }
    }
  }
  return out;
}

/**
 * A zero virtio-net header (`struct virtio_net_hdr`, 10 bytes; 12 with mergeable rx buffers' `num_buffers`): no
 * checksum offload, no GSO — what a sender puts in front of a complete frame on a `vnetHdr` queue. Size 0 (a queue
 * opened without the header) is an empty buffer.
 */
export function vnetHdr(size: 0 | 10 | 12 = 10): Buffer {
  return Buffer.alloc(size);
}

/** The fields of a received virtio-net header. */
export interface ParsedVnetHdr {
  /** `VIRTIO_NET_HDR_F_NEEDS_CSUM` 1, `VIRTIO_NET_HDR_F_DATA_VALID` 2. */
  flags: number;
  /** `VIRTIO_NET_HDR_GSO_NONE` 0, `TCPV4` 1, `UDP` 3, `TCPV6` 4. */
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

/** Parses the first 10 bytes of a virtio-net header (little-endian, as the kernel writes it on x86 for tap). */
export function parseVnetHdr(buf: Buffer): ParsedVnetHdr {
  if (buf.length < 10) throw new Error(`vnet header needs 10 bytes, got ${buf.length}`);
  return {
    flags: buf[0]!,
    gsoType: buf[1]!,
    hdrLen: buf.readUInt16LE(2),
    gsoSize: buf.readUInt16LE(4),
    csumStart: buf.readUInt16LE(6),
    csumOffset: buf.readUInt16LE(8),
  };
}

/** Where a frame comes from and goes to. MACs as `aa:bb:…`, IPv4 dotted or IPv6 text. */
export interface FrameAddrs {
  srcMac: string;
  dstMac: string;
  srcIp: string;
  dstIp: string;
}

/**
 * The addresses of a captured UDP/IPv4 or IPv6 frame (`vnetHdrSize` bytes of virtio-net header first), or null if it
 * is neither.
 */
export function frameAddrs(frame: Buffer, vnetHdrSize = 0): FrameAddrs | null {
  const e = frame.subarray(vnetHdrSize);
  if (e.length < ETH_HLEN) return null;
  if (e.readUInt16BE(12) === ETH_P_IPV6) {
    if (e.length < ETH_HLEN + IPV6_HLEN || e[ETH_HLEN + 6] !== IPPROTO_UDP) return null;
    return {
      srcMac: macString(e.subarray(6, 12)), dstMac: macString(e.subarray(0, 6)),
      srcIp: ip6String(e.subarray(ETH_HLEN + 8, ETH_HLEN + 24)), dstIp: ip6String(e.subarray(ETH_HLEN + 24, ETH_HLEN + 40)),
    };
  }
  const p = parseFrame(e);
  return p.udp ? { srcMac: p.srcMac, dstMac: p.dstMac, srcIp: p.udp.srcIp, dstIp: p.udp.dstIp } : null;
}

/** A locally administered unicast MAC `02:<tag>:…` for test links, from a small number. */
export function testMac(tag: number, n: number): string {
  const b = Buffer.from([0x02, tag & 0xff, 0x00, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
  return macString(b);
}
