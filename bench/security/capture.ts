/**
 * The probe's two native tools (the harness addon's packet socket and capture): a packet
 * socket on a link of a namespace — the peer's view of its wire, which can also send frames onto it — and a bounded
 * wait for frames carrying a marker, on such a socket or on a tap queue's fd.
 * @internal
 */
import { callNative, callNativeSync } from 'macvtap/internal';
import { benchBinding as binding } from '../native.js';

/** Longest frame kept from a capture (a probe frame is 60 bytes; room for a vnet header and a VLAN tag). */
const KEEP = 256;

/** An `AF_PACKET` socket bound to one link inside a namespace. Close it with {@link PacketSocket.close}. */
export class PacketSocket {
  /** The socket's fd (owned by the harness addon), -1 once closed. */
  fd: number;
  /** The link's ifindex in its namespace. */
  readonly ifindex: number;

  private constructor(fd: number, ifindex: number) {
    this.fd = fd;
    this.ifindex = ifindex;
  }

  /** Opens the socket inside `netns` (a `/run/netns/…` path), bound to `ifname`: it sees every frame arriving there. */
  static async open(ifname: string, netns: string): Promise<PacketSocket> {
    const r = await callNative(() => binding.packetOpen(ifname, netns));
    return new PacketSocket(r.fd, r.ifindex);
  }

  /** Sends one Ethernet frame out of the link. */
  send(frame: Buffer): void {
    const fd = this.fd;
    callNativeSync(() => binding.frameWrite(fd, frame));
  }

  /** Closes the socket. Idempotent. */
  close(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    callNativeSync(() => binding.fdClose(fd));
  }
}

/**
 * Waits up to `timeoutMs` for `want` frames containing `marker` on `fd` (packet socket or tap queue); resolves those
 * that came (possibly none). Other frames read meanwhile are dropped.
 */
export function captureMarked(fd: number, marker: Buffer, want: number, timeoutMs: number): Promise<Buffer[]> {
  return callNative(() => binding.frameCapture(fd, marker, want, timeoutMs, KEEP));
}
