/**
 * The probe's frames: Ethernet II + IPv4 + UDP carrying a marker, and the addresses read back from a captured one.
 * The UDP checksum is 0 ("none", legal over IPv4): no host stack has to accept these frames, the probe matches them by
 * marker at layer 2. The IPv4 header checksum is real, so a switch or host that checks it does not drop them.
 */

/** Where a frame comes from and goes to. MACs as `aa:bb:…`, IPv4 dotted. */
export interface FrameAddrs {
  srcMac: string;
  dstMac: string;
  srcIp: string;
  dstIp: string;
}

const ETH = 14;
const IP = 20;
const UDP = 8;
/** UDP ports of every probe frame (either direction). */
export const PROBE_PORT = 7099;

function mac(s: string): Buffer {
  const b = Buffer.from(s.split(':').map((x) => parseInt(x, 16)));
  if (b.length !== 6 || !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(s)) throw new Error(`bad MAC ${JSON.stringify(s)}`);
  return b;
}

function ip(s: string): Buffer {
  const parts = s.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`bad IPv4 ${JSON.stringify(s)}`);
  return Buffer.from(parts);
}

/** The RFC 1071 checksum of an IPv4 header whose checksum field is zero. */
function ipHeaderChecksum(h: Buffer): number {
  let sum = 0;
  for (let i = 0; i < h.length; i += 2) sum += h.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * A UDP/IPv4 frame from `a.srcMac`/`a.srcIp` to `a.dstMac`/`a.dstIp` whose payload is `payload`, padded to the
 * 60-byte Ethernet minimum, preceded by `vnetHdrSize` zero bytes (a virtio-net header saying "nothing to offload").
 */
export function udpFrame(a: FrameAddrs, payload: Buffer, vnetHdrSize = 0): Buffer {
  const len = Math.max(60, ETH + IP + UDP + payload.length);
  const f = Buffer.alloc(vnetHdrSize + len);
  const e = f.subarray(vnetHdrSize);
  mac(a.dstMac).copy(e, 0);
  mac(a.srcMac).copy(e, 6);
  e.writeUInt16BE(0x0800, 12);
  const h = e.subarray(ETH, ETH + IP);
  h[0] = 0x45;
  h.writeUInt16BE(IP + UDP + payload.length, 2);
  h.writeUInt16BE(0x4000, 6); // don't fragment
  h[8] = 64;
  h[9] = 17;
  ip(a.srcIp).copy(h, 12);
  ip(a.dstIp).copy(h, 16);
  h.writeUInt16BE(ipHeaderChecksum(h), 10);
  const u = e.subarray(ETH + IP);
  u.writeUInt16BE(PROBE_PORT, 0);
  u.writeUInt16BE(PROBE_PORT, 2);
  u.writeUInt16BE(UDP + payload.length, 4);
  payload.copy(u, UDP);
  return f;
}

/** The addresses of a captured UDP/IPv4 frame (`vnetHdrSize` bytes of header first), or null if it is not one. */
export function frameAddrs(frame: Buffer, vnetHdrSize = 0): FrameAddrs | null {
  const e = frame.subarray(vnetHdrSize);
  if (e.length < ETH + IP || e.readUInt16BE(12) !== 0x0800) return null;
  const hex = (b: Buffer): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
  return {
    dstMac: hex(e.subarray(0, 6)),
    srcMac: hex(e.subarray(6, 12)),
    srcIp: [...e.subarray(ETH + 12, ETH + 16)].join('.'),
    dstIp: [...e.subarray(ETH + 16, ETH + 20)].join('.'),
  };
}
