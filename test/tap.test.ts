/**
 * Tap queues against the real kernel: opening (1, 4, up to the 256 limit and EBUSY past it), raw frames and
 * vnet-header frames in both directions between a queue and a UDP socket in a peer namespace, the `/dev/tapN`
 * cross-namespace hazard (two macvtaps with one ifindex: the open must reach its own device), ownership (`detach`,
 * idempotent `close`, `Symbol.dispose`, no fd leak over 1000 cycles) and handing queues to another process (spawn stdio,
 * `SCM_RIGHTS` over a Unix socket).
 *
 * Layout of every testbed (bench/testbed/netns.ts `makeTestbed`): namespace `host` holds the veth end `mvt-l0`, the macvtap's
 * lower; namespace `peer` holds `mvt-p0` with 10.200.1.2/24. The macvtap has no IP stack of its own: the test speaks
 * for it with hand-built frames from MAC {@link TAP_MAC} / IP {@link TAP_IP}.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeEach, expect, it, vi } from 'vitest';
import { binding } from '../lib/binding.js';
import { createMacvtap, getLink, MacvtapError, openTap, recvFds, sendFds, type TapQueue } from '../lib/index.js';
import { describePrivileged } from './helpers/suite.js';
import { destroyAll, makeTestbed, type Testbed, type TestNetns } from '../bench/testbed/netns.js';
import { buildArp, buildUdpFrame, parseFrame, parseVnetHdr, vnetHdr, type ParsedFrame } from '../bench/testbed/frames.js';
import { sendUdp, UdpListener } from '../bench/testbed/peer.js';

const TAP_MAC = '02:00:00:00:01:0a';
const TAP_IP = '10.200.1.10';
const PEER_PORT = 41_000;
const TAP_PORT = 42_000;
const DIST = fileURLToPath(new URL('../dist/lib/index.js', import.meta.url));

/** A UDP frame from the macvtap's identity to the peer's socket. */
function toPeer(tb: Testbed, payload: Buffer, srcPort = TAP_PORT): Buffer {
  return buildUdpFrame({
    srcMac: TAP_MAC, dstMac: tb.peerMac, srcIp: TAP_IP, dstIp: tb.peerIp, srcPort, dstPort: PEER_PORT, payload,
  });
}

/** Reads frames from `q` until one satisfies `pred` (the peer also sends IPv6 multicast noise), within `timeoutMs`. */
async function readUntil(q: TapQueue, pred: (f: Buffer) => boolean, timeoutMs = 5000): Promise<Buffer> {
  const deadline = Date.now() + timeoutMs;
  const seen: string[] = [];
  for (let i = 0; i < 1000; i++) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    const f = await q.read({ timeout: left });
    if (f === null) break;
    if (pred(f)) return f;
    seen.push(f.length + 'B');
  }
  throw new Error(`no matching frame within ${timeoutMs} ms (saw ${seen.join(', ') || 'nothing'})`);
}

/** `true` when the frame (after `skip` header bytes) is UDP to the tap's IP/port carrying `payload`. */
function isOurUdp(payload: Buffer, skip = 0): (f: Buffer) => boolean {
  return (f) => {
    const p = parseFrame(f.subarray(skip));
    return p.udp !== null && p.udp.dstIp === TAP_IP && p.udp.dstPort === TAP_PORT && p.udp.payload.equals(payload);
  };
}

/** Major and minor of a `st_rdev` (glibc's `gnu_dev_major`/`gnu_dev_minor` encoding). */
function devOf(rdev: bigint): { major: number; minor: number } {
  return {
    major: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)),
    minor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)),
  };
}

/** The tap char device of `name` as sysfs shows it from inside `ns` (the independent truth). */
function sysfsDev(ns: TestNetns, name: string, ifindex: number): { major: number; minor: number } {
  const [major, minor] = ns.exec('cat', [`/sys/class/net/${name}/macvtap/tap${ifindex}/dev`]).trim().split(':').map(Number);
  return { major: major!, minor: minor! };
}

/** Number of open fds of this process. */
function fdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

describePrivileged('tap queues', () => {
  let tb: Testbed;
  const beds: Testbed[] = [];
  const queues: TapQueue[] = [];
  const listeners: UdpListener[] = [];
  const rawFds: number[] = [];

  /** A macvtap `mvt-tap` with {@link TAP_MAC}, up, on the testbed's lower. */
  async function macvtap(bed: Testbed, extra: { ifindex?: number } = {}) {
    return createMacvtap({ lower: bed.lower, name: 'mvt-tap', mac: TAP_MAC, up: true, netns: bed.host.path, ...extra });
  }
  async function open(bed: Testbed, opts: Parameters<typeof openTap>[1] = {}): Promise<TapQueue[]> {
    const qs = await openTap('mvt-tap', { netns: bed.host.path, ...opts });
    queues.push(...qs);
    return qs;
  }
  async function listen(bed: Testbed): Promise<UdpListener> {
    const l = await UdpListener.start(bed.peer, PEER_PORT, { lifetimeMs: 60_000 });
    listeners.push(l);
    return l;
  }

  beforeEach(() => {
    tb = makeTestbed(1);
    beds.push(tb);
  });
  afterEach(async () => {
    for (const l of listeners.splice(0)) l.stop();
    await Promise.all(queues.splice(0).map((q) => q.close()));
    for (const fd of rawFds.splice(0)) {
      try {
        fs.closeSync(fd);
      } catch {
        // Closed by the test already.
      }
    }
    for (const b of beds.splice(0)) b.destroy();
  });
  afterAll(() => destroyAll());

  it('opens 1 queue and 4 queues (multiqueue); every queue of the 4 carries frames', async () => {
    const info = await macvtap(tb);
    const [one, ...none] = await open(tb);
    expect(none).toEqual([]);
    expect(one).toMatchObject({ device: 'mvt-tap', ifindex: info.ifindex, index: 0, vnetHdr: true, closed: false });
    expect(one!.fd).toBeGreaterThan(2);
    await one!.close();

    const four = await open(tb, { queues: 4, vnetHdr: false });
    expect(four.map((q) => q.index)).toEqual([0, 1, 2, 3]);
    expect(new Set(four.map((q) => q.fd)).size).toBe(4);
    for (const q of four) {
      // Each fd is the macvtap's own char device, close-on-exec.
      expect(devOf(fs.fstatSync(q.fd, { bigint: true }).rdev)).toEqual(sysfsDev(tb.host, 'mvt-tap', info.ifindex));
      const flags = /flags:\s+([0-7]+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${q.fd}`, 'utf8'))![1]!;
      expect(parseInt(flags, 8) & 0o2000000).not.toBe(0);
    }
    const l = await listen(tb);
    for (const q of four) q.write(toPeer(tb, Buffer.from(`queue ${q.index}`)));
    for (const q of four) await l.waitFor((d) => d.data.toString() === `queue ${q.index}`);
  });

  it('opens up to the 256-queue limit; past it the kernel says EBUSY (syscall open) and nothing leaks', async () => {
    await macvtap(tb);
    const all = await open(tb, { queues: 256, vnetHdr: false });
    expect(all).toHaveLength(256);
    expect(new Set(all.map((q) => q.fd)).size).toBe(256);

    const fds = fdCount();
    const err = (await openTap('mvt-tap', { netns: tb.host.path }).then(
      () => { throw new Error('the 257th queue opened'); },
      (e: unknown) => e,
    )) as MacvtapError;
    expect(err).toBeInstanceOf(MacvtapError);
    expect(err.code).toBe('EBUSY');
    expect(err.errno).toBe(-16);
    expect(err.syscall).toBe('open');
    expect(fdCount()).toBe(fds);

    // A multi-queue open that fits only partly fails whole, and closes what it had opened.
    await all.pop()!.close();
    const fds2 = fdCount();
    const err2 = (await openTap('mvt-tap', { queues: 2, netns: tb.host.path }).catch((e: unknown) => e)) as MacvtapError;
    expect(err2).toBeInstanceOf(MacvtapError);
    expect(err2.code).toBe('EBUSY');
    expect(fdCount()).toBe(fds2);

    // Closing frees the device's queue slots again.
    await Promise.all(all.map((q) => q.close()));
    const again = await open(tb, { queues: 8 });
    expect(again).toHaveLength(8);
  });

  it('vnet_hdr off: a raw UDP frame written on the queue reaches a socket in the peer namespace', async () => {
    await macvtap(tb);
    const [q] = await open(tb, { vnetHdr: false });
    expect(q!.vnetHdr).toBe(false);
    const l = await listen(tb);
    const payload = Buffer.from('raw frame from the tap queue');
    const frame = toPeer(tb, payload);
    expect(q!.write(frame)).toBe(frame.length);
    const d = await l.waitFor((x) => x.data.equals(payload));
    expect(d.from).toBe(TAP_IP);
    expect(d.port).toBe(TAP_PORT);
  });

  it('vnet_hdr off: the peer ARPs for the tap IP, the queue answers, and the datagram is read from the queue', async () => {
    await macvtap(tb);
    const [q] = await open(tb, { vnetHdr: false });
    const payload = Buffer.from('from the peer, after ARP');
    sendUdp(tb.peer, TAP_IP, TAP_PORT, payload, PEER_PORT);

    const req = await readUntil(q!, (f) => {
      const a = parseFrame(f).arp;
      return a !== null && a.op === 1 && a.targetIp === TAP_IP;
    });
    const arp = parseFrame(req).arp!;
    expect(arp.senderIp).toBe(tb.peerIp);
    expect(arp.senderMac).toBe(tb.peerMac);
    q!.write(buildArp({ op: 2, senderMac: TAP_MAC, senderIp: TAP_IP, targetMac: arp.senderMac, targetIp: arp.senderIp }));

    const f = await readUntil(q!, isOurUdp(payload));
    const p = parseFrame(f);
    expect(p.dstMac).toBe(TAP_MAC);
    expect(p.srcMac).toBe(tb.peerMac);
    expect(p.udp).toMatchObject({ srcIp: tb.peerIp, srcPort: PEER_PORT, ipChecksumOk: true, udpChecksumOk: true });
    // The peer learnt our MAC from the reply.
    expect(tb.peer.ip('neigh', 'show', TAP_IP)).toContain(TAP_MAC);
  });

  for (const size of [10, 12] as const) {
    it(`vnet_hdr on (${size}-byte header): frames both ways carry the header`, async () => {
      await macvtap(tb);
      const [q] = await open(tb, size === 10 ? {} : { vnetHdrSize: 12 });
      expect(q!.vnetHdr).toBe(true);
      const l = await listen(tb);

      const out = Buffer.from(`with a ${size}-byte vnet header`);
      const frame = Buffer.concat([vnetHdr(size), toPeer(tb, out)]);
      expect(q!.write(frame)).toBe(frame.length);
      await l.waitFor((d) => d.data.equals(out));

      tb.peer.ip('neigh', 'replace', TAP_IP, 'lladdr', TAP_MAC, 'dev', tb.peerIf, 'nud', 'permanent');
      const back = Buffer.from(`back through a ${size}-byte header`);
      sendUdp(tb.peer, TAP_IP, TAP_PORT, back, PEER_PORT + 1);
      const f = await readUntil(q!, isOurUdp(back, size));
      const hdr = parseVnetHdr(f);
      expect(hdr.gsoType).toBe(0);
      // (With 12 bytes the kernel writes the 10-byte struct and skips num_buffers: those 2 bytes are unspecified.)
      const p: ParsedFrame = parseFrame(f.subarray(size));
      expect(p.dstMac).toBe(TAP_MAC);
      expect(p.udp?.ipChecksumOk).toBe(true);
      if (hdr.flags & 1) {
        // VIRTIO_NET_HDR_F_NEEDS_CSUM: the kernel left the UDP checksum for us, and says where it goes.
        expect(hdr.csumStart).toBe(14 + 20);
        expect(hdr.csumOffset).toBe(6);
      } else {
        expect(p.udp?.udpChecksumOk).toBe(true);
      }
    });
  }

  it('two namespaces whose macvtaps share an ifindex: each open reaches its own device', async () => {
    // Same addresses on both sides, so a frame that went to the wrong device would be accepted by the wrong peer.
    const other = makeTestbed(1);
    beds.push(other);
    const ifindex = 5000 + (process.pid % 3000);
    const a = await macvtap(tb, { ifindex });
    const b = await macvtap(other, { ifindex });
    expect(a.ifindex).toBe(ifindex);
    expect(b.ifindex).toBe(ifindex);
    const devA = sysfsDev(tb.host, 'mvt-tap', ifindex);
    const devB = sysfsDev(other.host, 'mvt-tap', ifindex);
    expect(devA).not.toEqual(devB);
    expect(a.tap).toMatchObject(devA);
    expect(b.tap).toMatchObject(devB);

    // The hazard is real: the global node /dev/tapN (when devtmpfs made one) is the first device's, not B's.
    if (fs.existsSync(`/dev/tap${ifindex}`)) {
      expect(devOf(fs.statSync(`/dev/tap${ifindex}`, { bigint: true }).rdev)).toEqual(devA);
    }

    const la = await listen(tb);
    const lb = await listen(other);
    // The second device's open first: its /dev/tapN node (if any) is the first device's.
    const [qb] = await open(other, { vnetHdr: false });
    expect(devOf(fs.fstatSync(qb!.fd, { bigint: true }).rdev)).toEqual(devB);
    qb!.write(toPeer(other, Buffer.from('to B')));
    await lb.waitFor((d) => d.data.toString() === 'to B');

    const [qa] = await open(tb, { vnetHdr: false });
    expect(devOf(fs.fstatSync(qa!.fd, { bigint: true }).rdev)).toEqual(devA);
    qa!.write(toPeer(tb, Buffer.from('to A')));
    await la.waitFor((d) => d.data.toString() === 'to A');

    await sleep(300);
    expect(la.received.map((d) => d.data.toString())).toEqual(['to A']);
    expect(lb.received.map((d) => d.data.toString())).toEqual(['to B']);
    expect((await getLink('mvt-tap', { netns: other.host.path })).tap).toMatchObject(devB);
  });

  it('detach() hands the fd away: close() leaves it open, it still writes, the caller closes it', async () => {
    const info = await macvtap(tb);
    const [q] = await open(tb, { vnetHdr: false });
    const fd = q!.detach();
    rawFds.push(fd);
    expect(fd).toBeGreaterThan(2);
    expect(q!.closed).toBe(true);
    expect(q!.fd).toBe(-1);
    expect(() => q!.detach()).toThrow();
    await q!.close();
    q![Symbol.dispose]();
    const st = fs.fstatSync(fd, { bigint: true });
    expect(st.isCharacterDevice()).toBe(true);
    expect(devOf(st.rdev)).toEqual(sysfsDev(tb.host, 'mvt-tap', info.ifindex));
    const l = await listen(tb);
    fs.writeSync(fd, toPeer(tb, Buffer.from('written on a detached fd')));
    await l.waitFor((d) => d.data.toString() === 'written on a detached fd');
    fs.closeSync(fd);
    expect(() => fs.fstatSync(fd)).toThrow(/EBADF/);
  });

  it('close() is idempotent, releases the fd at once and resolves once the kernel is done; dispose closes', async () => {
    await macvtap(tb);
    const [q, r, s] = await open(tb, { queues: 3 });
    const fd = q!.fd;
    const closing = q!.close();
    expect(q!.closed).toBe(true);
    expect(q!.fd).toBe(-1);
    await closing;
    expect(() => fs.fstatSync(fd)).toThrow(/EBADF/);
    await q!.close();
    await q!.close();
    expect(() => q!.write(Buffer.alloc(60))).toThrow();
    await expect(q!.read({ timeout: 10 })).rejects.toThrow();

    const fd2 = r!.fd;
    await r![Symbol.asyncDispose]();
    expect(r!.closed).toBe(true);
    expect(() => fs.fstatSync(fd2)).toThrow(/EBADF/);

    // Sync dispose releases at once; the kernel's part finishes off the event loop.
    const fd3 = s!.fd;
    s![Symbol.dispose]();
    expect(s!.closed).toBe(true);
    expect(binding.ownedFds()).not.toContain(fd3);
    await vi.waitFor(() => expect(() => fs.fstatSync(fd3)).toThrow(/EBADF/), { timeout: 2000, interval: 5 });
    s![Symbol.dispose]();
  });

  it('no fd leak after 1000 open/close cycles', async () => {
    await macvtap(tb);
    // Warm up anything opened once and kept (the addon's netlink socket, thread pool).
    await Promise.all((await openTap('mvt-tap', { netns: tb.host.path })).map((q) => q.close()));
    const before = fdCount();
    for (let i = 0; i < 1000; i++) {
      const qs = await openTap('mvt-tap', { queues: i % 10 === 0 ? 4 : 1, netns: tb.host.path });
      await Promise.all(qs.map((q) => q.close()));
    }
    expect(fdCount()).toBe(before);
    // And the device has no queue left attached: the full 256 still open.
    const all = await open(tb, { queues: 256 });
    expect(all).toHaveLength(256);
  });

  it('hands a queue to a child through spawn stdio: the child writes a frame on fd 3 and it reaches the peer', async () => {
    await macvtap(tb);
    const [q] = await open(tb, { vnetHdr: false });
    const l = await listen(tb);
    const frame = toPeer(tb, Buffer.from('from a child on fd 3'));
    const child = spawn(process.execPath, ['-e', `require('node:fs').writeSync(3, Buffer.from(process.argv[1], 'hex'))`, frame.toString('hex')], {
      stdio: ['ignore', 'pipe', 'pipe', q!.fd],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), 15_000);
      child.once('exit', (c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
    expect(code, stderr).toBe(0);
    await l.waitFor((d) => d.data.toString() === 'from a child on fd 3');
    // The parent's queue is untouched by the child's exit.
    expect(fs.fstatSync(q!.fd).isCharacterDevice()).toBe(true);
  });

  it('sendFds/recvFds over a Unix socket path (in-process): the received fd is the same device and writes frames', async () => {
    const info = await macvtap(tb);
    const [q] = await open(tb, { vnetHdr: false });
    const sock = path.join(os.tmpdir(), `mvt-${process.pid}-fds.sock`);
    fs.rmSync(sock, { force: true });
    const receiving = recvFds(sock, { timeout: 10_000 });
    for (let i = 0; i < 500 && !fs.existsSync(sock); i++) await sleep(10);
    await sendFds(sock, [q!.fd], Buffer.from('{"queues":1}'));
    const got = await receiving;
    rawFds.push(...got.fds);
    expect(got.payload.toString()).toBe('{"queues":1}');
    expect(got.fds).toHaveLength(1);
    const fd = got.fds[0]!;
    expect(fd).not.toBe(q!.fd);
    expect(devOf(fs.fstatSync(fd, { bigint: true }).rdev)).toEqual(sysfsDev(tb.host, 'mvt-tap', info.ifindex));
    expect(fs.existsSync(sock)).toBe(false);
    const l = await listen(tb);
    fs.writeSync(fd, toPeer(tb, Buffer.from('via SCM_RIGHTS')));
    await l.waitFor((d) => d.data.toString() === 'via SCM_RIGHTS');
    fs.closeSync(fd);
  });

  it('sendFds to a child process that receives the queue with recvFds and writes a frame', async (ctx) => {
    if (!fs.existsSync(DIST)) {
      ctx.skip(`needs the compiled library ${DIST} (npm run build:ts; the pretest script builds it)`);
      return;
    }
    await macvtap(tb);
    const [q] = await open(tb, { vnetHdr: false });
    const l = await listen(tb);
    const sock = path.join(os.tmpdir(), `mvt-${process.pid}-child.sock`);
    fs.rmSync(sock, { force: true });
    const frame = toPeer(tb, Buffer.from('child got it over SCM_RIGHTS'));
    const script = `
      import { recvFds } from ${JSON.stringify(DIST)};
      import { writeSync, closeSync } from 'node:fs';
      const { fds, payload } = await recvFds(process.argv[1], { timeout: 10000 });
      writeSync(fds[0], Buffer.from(payload.toString(), 'hex'));
      closeSync(fds[0]);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, sock], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => {
      const t = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), 15_000);
      child.once('exit', (c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
    for (let i = 0; i < 1000 && !fs.existsSync(sock); i++) await sleep(10);
    // The socket file appears at bind(), a moment before the child's listen(): a slow machine (TCG) sees that gap.
    for (let i = 0; ; i++) {
      try {
        await sendFds(sock, [q!.fd], Buffer.from(frame.toString('hex')));
        break;
      } catch (e) {
        if ((e as MacvtapError).code !== 'ECONNREFUSED' || i >= 100) throw e;
        await sleep(20);
      }
    }
    expect(await exited, stderr).toBe(0);
    await l.waitFor((d) => d.data.toString() === 'child got it over SCM_RIGHTS');
  });
});

