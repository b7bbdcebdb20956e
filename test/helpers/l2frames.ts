/**
 * Hand-built Ethernet frames for the port-security tests: IPv4 and IPv6 with any transport header, neighbour
 * discovery messages, VLAN tags. Each frame ends with a marker the far side's capture looks for. They are judged at
 * layer 2 only (a packet socket on the far side, or the tap fd), never handed to an IP stack, so transport checksums
 * are left zero (nothing on the paths tested validates them); the IPv4 header checksum is real.
 */
import { internetChecksum, ipBytes, macBytes } from '../../bench/testbed/frames.js';
import { parseAddress, V6 } from '../../lib/portsec/addr.js';

export function ip6Bytes(ip: string): Buffer {
  const n = parseAddress(ip, V6);
  if (n === null) throw new Error(`bad IPv6 address ${ip}`);
  return Buffer.from(n.toString(16).padStart(32, '0'), 'hex');
}

let seq = 0;
/** A fresh 8-byte marker. */
export function marker(): Buffer {
  const b = Buffer.from('MVTPS\0\0\0', 'latin1');
  b.writeUInt16BE(++seq, 6);
  b[5] = process.pid & 0xff;
  return b;
}

function eth(dst: string, src: string, type: number, body: Buffer, vlan?: number): Buffer {
  const tag = vlan === undefined ? Buffer.alloc(0) : Buffer.from([0x81, 0x00, vlan >> 8, vlan & 0xff]);
  const t = Buffer.alloc(2);
  t.writeUInt16BE(type);
  return Buffer.concat([macBytes(dst), macBytes(src), tag, t, body]);
}

/** Ports (TCP/UDP/SCTP/DCCP/UDP-Lite layout: source and destination first), ICMP type/code, or nothing. */
export type L4 = { sport: number; dport: number } | { type: number; code: number } | null;

function l4Header(proto: number, l4: L4): Buffer {
  if (l4 === null) return Buffer.alloc(8);
  if ('type' in l4) return Buffer.from([l4.type, l4.code, 0, 0, 0, 0, 0, 0]);
  const h = Buffer.alloc(proto === 6 ? 20 : 8);
  h.writeUInt16BE(l4.sport, 0);
  h.writeUInt16BE(l4.dport, 2);
  if (proto === 6) { h[12] = 0x50; h[13] = 0x02; } // data offset 5, SYN
  else if (proto === 17) h.writeUInt16BE(8 + 8, 4);
  return h;
}

export interface IpSpec {
  srcMac: string; dstMac: string; src: string; dst: string; proto: number; l4: L4; mark: Buffer; vlan?: number;
}

/** An Ethernet/IPv4 frame: `proto` with `l4`'s header, then the marker. */
export function ipv4Frame(s: IpSpec): Buffer {
  const payload = Buffer.concat([l4Header(s.proto, s.l4), s.mark]);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + payload.length, 2);
  ip[8] = 64;
  ip[9] = s.proto;
  ipBytes(s.src).copy(ip, 12);
  ipBytes(s.dst).copy(ip, 16);
  // The header checksum is real: a bridge with br_netfilter (bridge-nf-call-iptables, on by default once loaded)
  // validates IPv4 headers and drops a bad one.
  ip.writeUInt16BE(internetChecksum(ip), 10);
  return eth(s.dstMac, s.srcMac, 0x0800, Buffer.concat([ip, payload]), s.vlan);
}

/**
 * An Ethernet/IPv6 frame: next header `proto` with `l4`'s header (or `body` as the whole payload), then the marker as
 * an Ethernet trailer outside the IPv6 packet (its payload length leaves it out, as padding), so that length fields
 * the filter checks (neighbour discovery's) read as a real sender's would.
 */
export function ipv6Frame(s: IpSpec & { body?: Buffer; hopLimit?: number }): Buffer {
  const body = s.body ?? l4Header(s.proto, s.l4);
  const payload = Buffer.concat([body, s.mark]);
  const ip = Buffer.alloc(40);
  ip[0] = 0x60;
  ip.writeUInt16BE(body.length, 4);
  ip[6] = s.proto;
  ip[7] = s.hopLimit ?? 64;
  ip6Bytes(s.src).copy(ip, 8);
  ip6Bytes(s.dst).copy(ip, 24);
  return eth(s.dstMac, s.srcMac, 0x86dd, Buffer.concat([ip, payload]), s.vlan);
}

/** The ICMPv6 body of a neighbour solicitation (135) or advertisement (136), with an optional link-layer option. */
export function ndBody(type: 135 | 136, target: string, lladdr?: string, before?: Buffer): Buffer {
  const h = Buffer.alloc(24);
  h[0] = type;
  if (type === 136) h[4] = 0x60; // solicited + override
  ip6Bytes(target).copy(h, 8);
  if (lladdr === undefined) return h;
  // Option 1 = source link-layer address (in solicitations), 2 = target link-layer address (in advertisements);
  // `before`: options in front of it (e.g. a nonce, type 14).
  return Buffer.concat([h, before ?? Buffer.alloc(0), Buffer.from([type === 135 ? 1 : 2, 1]), macBytes(lladdr)]);
}

/** A nonce option (type 14, 8 bytes): harmless, here to put another option in front of a link-layer address. */
export const NONCE_OPTION = Buffer.from([14, 1, 1, 2, 3, 4, 5, 6]);

/** A router advertisement's ICMPv6 body (type 134, no options). */
export function raBody(): Buffer {
  const h = Buffer.alloc(16);
  h[0] = 134;
  h[4] = 64;
  return h;
}

/** An ARP frame ending with the marker (after the 28-byte body). */
export function arpFrame(s: { op: 1 | 2; srcMac: string; senderMac: string; senderIp: string; targetIp: string; mark: Buffer }): Buffer {
  const a = Buffer.alloc(28);
  a.writeUInt16BE(1, 0);
  a.writeUInt16BE(0x0800, 2);
  a[4] = 6;
  a[5] = 4;
  a.writeUInt16BE(s.op, 6);
  macBytes(s.senderMac).copy(a, 8);
  ipBytes(s.senderIp).copy(a, 14);
  ipBytes(s.targetIp).copy(a, 24);
  return eth('ff:ff:ff:ff:ff:ff', s.srcMac, 0x0806, Buffer.concat([a, s.mark]));
}

/** Any other ethertype (e.g. 0x88b5, the IEEE local experimental one), with the marker as payload. */
export function rawFrame(dst: string, src: string, type: number, mark: Buffer, vlan?: number): Buffer {
  return eth(dst, src, type, Buffer.concat([Buffer.alloc(46), mark]), vlan);
}
