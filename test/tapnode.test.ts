/**
 * Tap nodes for an unprivileged consumer: a process running as an unprivileged uid (`setpriv --reuid --regid
 * --clear-groups`, no capabilities) opens the node {@link createTapNode} made and moves real frames both ways through
 * it (a UDP datagram it writes arrives at a socket in the peer namespace; one sent from there is read back through
 * the node), a second uid is refused with EACCES; the node is the macvtap's own device as sysfs shows it from inside
 * its namespace; gc removes a node whose link is gone or whose namespace is gone; bad input is refused before anything
 * is created.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { createMacvtap, createTapNode, deleteLink, gc, type TapNode } from '../lib/index.js';
import { TAP_NODE_DIR } from '../lib/tapnode.js';
import { describePrivileged } from './helpers/suite.js';
import { tidyTapNodeDirs } from './helpers/statedirs.js';
import { vethHostFixture } from './helpers/hostns.js';
import { makeTestbed, TestNetns, type Testbed } from '../bench/testbed/netns.js';
import { buildUdpFrame, parseFrame } from '../bench/testbed/frames.js';
import { sendUdp, UdpListener } from '../bench/testbed/peer.js';

const TAP_MAC = '02:00:00:00:0c:0a';
const TAP_IP = '10.200.1.10';
const PEER_PORT = 41_300;
const TAP_PORT = 42_300;
const DIST = fileURLToPath(new URL('../dist/lib/index.js', import.meta.url));
const VMM_UID = 64_101;
const OTHER_UID = 64_102;

// Registered first, so its namespaces go after the processes, nodes and testbeds below (after-hooks run in reverse).
const { host, track } = vethHostFixture();
const beds: Testbed[] = [];
const nodes: TapNode[] = [];
const children: ChildProcess[] = [];
const listeners: UdpListener[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const l of listeners.splice(0)) l.stop();
  for (const n of nodes.splice(0)) await n.remove();
  for (const b of beds.splice(0)) b.destroy();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
tidyTapNodeDirs();

/**
 * The unprivileged VMM: opens the node read-write (the kernel's default queue flags: 10-byte vnet header), writes one
 * frame, then reads until a frame containing `want` arrives and prints it. Reports an open failure's code.
 */
const VMM_SCRIPT = `
const fs = require('node:fs');
const [node, outHex, wantHex] = process.argv.slice(1);
const say = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
let fd;
try { fd = fs.openSync(node, 'r+'); } catch (e) { say({ open: e.code, uid: process.getuid() }); process.exit(0); }
const capEff = /CapEff:\\s*(\\S+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1];
say({ open: 'ok', uid: process.getuid(), gid: process.getgid(), groups: process.getgroups().filter((g) => g !== process.getgid()), capEff });
if (!outHex) process.exit(0);
fs.writeSync(fd, Buffer.concat([Buffer.alloc(10), Buffer.from(outHex, 'hex')]));
const want = Buffer.from(wantHex, 'hex');
const buf = Buffer.alloc(65550);
for (let i = 0; i < 1000; i++) {
  const n = fs.readSync(fd, buf, 0, buf.length, null);
  const frame = buf.subarray(10, n);
  if (frame.includes(want)) { say({ got: frame.toString('hex'), vnetFlags: buf[0] }); process.exit(0); }
}
say({ got: null });
`;

/** Starts the VMM script as `uid` (gid the same, no supplementary groups); its JSON lines as they come. */
function vmm(uid: number, node: string, outFrame?: Buffer, want?: Buffer): { lines: Array<Record<string, unknown>>; next: () => Promise<Record<string, unknown>> } {
  const c = spawn('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, '-e', VMM_SCRIPT, node,
    outFrame?.toString('hex') ?? '', want?.toString('hex') ?? ''], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(c);
  const lines: Array<Record<string, unknown>> = [];
  let buf = '';
  let err = '';
  let wake: (() => void) | null = null;
  c.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
      buf = buf.slice(i + 1);
    }
    wake?.();
  });
  c.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  c.on('exit', () => wake?.());
  let taken = 0;
  const next = (): Promise<Record<string, unknown>> => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`vmm uid ${uid}: no line within 20 s (stderr: ${err})`)), 20_000);
    const check = (): void => {
      if (lines.length > taken) {
        clearTimeout(timer);
        wake = null;
        resolve(lines[taken++]!);
      } else if (c.exitCode !== null) {
        clearTimeout(timer);
        reject(new Error(`vmm uid ${uid} exited ${c.exitCode} without a line: ${err}`));
      } else wake = check;
    };
    check();
  });
  return { lines, next };
}

function devOf(rdev: bigint): { major: number; minor: number } {
  return {
    major: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)),
    minor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)),
  };
}

const records = (): string[] => (fs.existsSync(TAP_NODE_DIR) ? fs.readdirSync(TAP_NODE_DIR).filter((n) => n.endsWith('.json')) : []);

describePrivileged('tap nodes', () => {
  test('an unprivileged uid opens the node and moves frames both ways; another uid gets EACCES', async () => {
    const tb = makeTestbed(1);
    beds.push(tb);
    const link = await createMacvtap({ lower: tb.lower, name: 'mvt-tap', mac: TAP_MAC, up: true, ipv6: false, netns: tb.host.path });
    // The peer knows the guest's MAC (the guest here speaks no ARP).
    tb.peer.ip('neigh', 'replace', TAP_IP, 'lladdr', TAP_MAC, 'dev', tb.peerIf, 'nud', 'permanent');
    const node = await createTapNode('mvt-tap', { uid: VMM_UID, gid: VMM_UID, mode: 0o600, netns: tb.host.path });
    nodes.push(node);

    // The node is the link's own device (sysfs read inside the namespace), with the asked owner and mode.
    const [maj, min] = tb.host.exec('cat', [`/sys/class/net/mvt-tap/macvtap/tap${link.ifindex}/dev`]).trim().split(':').map(Number);
    const st = fs.lstatSync(node.path, { bigint: true });
    expect(st.isCharacterDevice()).toBe(true);
    expect(devOf(st.rdev)).toEqual({ major: maj, minor: min });
    expect({ major: node.major, minor: node.minor }).toEqual({ major: maj, minor: min });
    expect([Number(st.uid), Number(st.gid), Number(st.mode) & 0o7777]).toEqual([VMM_UID, VMM_UID, 0o600]);
    expect(node).toMatchObject({ device: 'mvt-tap', ifindex: link.ifindex, removed: false });

    const l = await UdpListener.start(tb.peer, PEER_PORT, { lifetimeMs: 30_000 });
    listeners.push(l);
    const out = buildUdpFrame({
      srcMac: TAP_MAC, dstMac: tb.peerMac, srcIp: TAP_IP, dstIp: tb.peerIp, srcPort: TAP_PORT, dstPort: PEER_PORT,
      payload: Buffer.from('from the unprivileged vmm'),
    });
    const inbound = Buffer.from('to the unprivileged vmm');
    const v = vmm(VMM_UID, node.path, out, inbound);
    // No supplementary groups beyond its own gid, no effective capabilities: plain file permissions decide.
    expect(await v.next()).toEqual({ open: 'ok', uid: VMM_UID, gid: VMM_UID, groups: [], capEff: '0000000000000000' });
    const d = await l.waitFor((x) => x.data.toString() === 'from the unprivileged vmm', 20_000);
    expect(d.from).toBe(TAP_IP);
    sendUdp(tb.peer, TAP_IP, TAP_PORT, inbound, PEER_PORT + 1);
    const got = await v.next();
    const f = parseFrame(Buffer.from(got.got as string, 'hex'));
    expect(f).toMatchObject({ dstMac: TAP_MAC, srcMac: tb.peerMac });
    expect(f.udp).toMatchObject({ srcIp: tb.peerIp, dstIp: TAP_IP, dstPort: TAP_PORT });
    // The checksum is complete, or left partial by the veth's offload and flagged so in the vnet header
    // (VIRTIO_NET_HDR_F_NEEDS_CSUM), as a virtio-net guest would be told.
    expect(f.udp!.udpChecksumOk || ((got.vnetFlags as number) & 1) === 1).toBe(true);
    expect(f.udp!.payload.equals(inbound)).toBe(true);

    // Another unprivileged uid is refused by the node's mode.
    const other = vmm(OTHER_UID, node.path);
    expect(await other.next()).toEqual({ open: 'EACCES', uid: OTHER_UID });

    await node.remove();
    expect(fs.existsSync(node.path)).toBe(false);
    await node.remove(); // idempotent
    expect(node.removed).toBe(true);
  });

  test('a custom path and mode; gc removes the node once its link is gone (dryRun first), not before', async () => {
    const ns = host();
    await createMacvtap({ lower: 'l0', name: 'mv0', netns: ns.path });
    const dir = fs.mkdtempSync('/dev/shm/mvt-node-');
    dirs.push(dir);
    const where = path.join(dir, 'vm1-net0');
    const node = await createTapNode('mv0', { uid: VMM_UID, gid: 0, mode: 0o660, path: where, netns: ns.path });
    nodes.push(node);
    expect(node.path).toBe(where);
    expect(fs.statSync(where).mode & 0o7777).toBe(0o660);
    expect((await gc({ netns: ns.path })).tapNodes).toEqual([]); // link alive: kept
    expect(fs.existsSync(where)).toBe(true);
    const before = records().length;

    await deleteLink('mv0', { netns: ns.path });
    // gc of another owner leaves it (the node was recorded by the default owner 'macvtap').
    expect((await gc({ netns: ns.path, owner: 'nova' })).tapNodes).toEqual([]);
    expect((await gc({ netns: ns.path, dryRun: true })).tapNodes).toEqual([where]);
    expect(fs.existsSync(where)).toBe(true);
    expect((await gc({ netns: ns.path })).tapNodes).toEqual([where]);
    expect(fs.existsSync(where)).toBe(false);
    expect(records().length).toBe(before - 1);
    await node.remove(); // already gone: no error
  });

  test('a creator SIGKILLed right after making its node leaves a recorded node, which gc removes once the link goes', async (ctx) => {
    if (!fs.existsSync(DIST)) return ctx.skip(`needs the compiled library ${DIST} (npm run build:ts; the pretest script builds it)`);
    const ns = host();
    // An alias of our own: the link is untagged, so gc leaves the link itself alone (only its node is in question).
    await createMacvtap({ lower: 'l0', name: 'mv0', alias: 'crash test', netns: ns.path });
    const script = `
      const lib = await import(${JSON.stringify(DIST)});
      const n = await lib.createTapNode('mv0', { uid: ${VMM_UID}, gid: ${VMM_UID}, mode: 0o600, netns: ${JSON.stringify(ns.path)} });
      process.stdout.write(n.path + '\\n', () => process.kill(process.pid, 'SIGKILL'));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(r.signal, r.stderr).toBe('SIGKILL');
    const left = r.stdout.trim();
    expect(fs.lstatSync(left).isCharacterDevice()).toBe(true);
    const rec = records().map((n) => JSON.parse(fs.readFileSync(path.join(TAP_NODE_DIR, n), 'utf8')) as { path: string }).find((x) => x.path === left);
    expect(rec).toBeDefined();
    expect((await gc({ netns: ns.path })).tapNodes).toEqual([]); // the link lives: the node is still its node
    await deleteLink('mv0', { netns: ns.path });
    expect((await gc({ netns: ns.path })).tapNodes).toEqual([left]);
    expect(fs.existsSync(left)).toBe(false);
    expect(records().some((n) => fs.readFileSync(path.join(TAP_NODE_DIR, n), 'utf8').includes(left))).toBe(false);
  });

  test('two nodes of one link coexist; a record of the same numbers for another link is dropped as stale', async () => {
    const ns = host();
    await createMacvtap({ lower: 'l0', name: 'mv0', netns: ns.path });
    const a = await createTapNode('mv0', { uid: VMM_UID, gid: VMM_UID, mode: 0o600, netns: ns.path });
    nodes.push(a);
    const b = await createTapNode('mv0', { uid: OTHER_UID, gid: OTHER_UID, mode: 0o600, netns: ns.path });
    nodes.push(b);
    expect(fs.lstatSync(a.path).isCharacterDevice() && fs.lstatSync(b.path).isCharacterDevice()).toBe(true);
    // Make a's record say it was made for another link with these numbers (what a record left from a deleted macvtap
    // whose minor this one got looks like); the next node for mv0 must take it and its node away.
    const recFile = records().map((n) => path.join(TAP_NODE_DIR, n)).find((f) => fs.readFileSync(f, 'utf8').includes(a.path))!;
    const rec = JSON.parse(fs.readFileSync(recFile, 'utf8')) as { ifindex: number };
    rec.ifindex += 100_000;
    fs.writeFileSync(recFile, JSON.stringify(rec));
    const c = await createTapNode('mv0', { uid: VMM_UID, gid: VMM_UID, mode: 0o600, netns: ns.path });
    nodes.push(c);
    expect(fs.existsSync(a.path)).toBe(false);
    expect(fs.existsSync(recFile)).toBe(false);
    expect(fs.existsSync(b.path)).toBe(true);
  });

  test('gc from another namespace removes a node whose namespace was deleted; a reused path is never unlinked', async () => {
    const ns = host();
    await createMacvtap({ lower: 'l0', name: 'mv0', netns: ns.path });
    const node = await createTapNode('mv0', { uid: VMM_UID, gid: VMM_UID, mode: 0o600, netns: ns.path });
    nodes.push(node);
    const dir = fs.mkdtempSync('/dev/shm/mvt-node-');
    dirs.push(dir);
    const keep = path.join(dir, 'reused');
    const other = await createTapNode('mv0', { uid: VMM_UID, gid: VMM_UID, mode: 0o600, path: keep, netns: ns.path });
    nodes.push(other);
    // `keep` now holds a regular file of someone else's: gc must not remove it (but drops its record).
    fs.unlinkSync(keep);
    fs.writeFileSync(keep, 'not a node');
    ns.destroy();
    const elsewhere = track(TestNetns.create());
    const r = await gc({ netns: elsewhere.path });
    expect(r.tapNodes).toEqual(expect.arrayContaining([node.path, keep]));
    expect(fs.existsSync(node.path)).toBe(false);
    expect(fs.readFileSync(keep, 'utf8')).toBe('not a node');
    expect(records().some((n) => fs.readFileSync(path.join(TAP_NODE_DIR, n), 'utf8').includes(keep))).toBe(false);
  });

  test.each([
    [{ uid: -1, gid: 0, mode: 0o600 }, 'ERR_OUT_OF_RANGE'],
    [{ uid: 0xffff_ffff, gid: 0, mode: 0o600 }, 'ERR_OUT_OF_RANGE'],
    [{ uid: 1.5, gid: 0, mode: 0o600 }, 'ERR_OUT_OF_RANGE'],
    [{ uid: '1000', gid: 0, mode: 0o600 }, 'ERR_INVALID_ARG_TYPE'],
    [{ gid: 0, mode: 0o600 }, 'ERR_INVALID_ARG_TYPE'],
    [{ uid: 0, gid: -2, mode: 0o600 }, 'ERR_OUT_OF_RANGE'],
    [{ uid: 0, gid: 0, mode: 0o4755 }, 'ERR_OUT_OF_RANGE'],
    [{ uid: 0, gid: 0, mode: -1 }, 'ERR_OUT_OF_RANGE'],
    [{ uid: 0, gid: 0, mode: '600' }, 'ERR_INVALID_ARG_TYPE'],
    [{ uid: 0, gid: 0, mode: 0o600, path: 'rel/node' }, 'ERR_INVALID_ARG_VALUE'],
    [{ uid: 0, gid: 0, mode: 0o600, path: '/dev/shm/../shm/x' }, 'ERR_INVALID_ARG_VALUE'],
    [{ uid: 0, gid: 0, mode: 0o600, path: '/nonexistent-dir-mvt/x' }, 'ERR_INVALID_ARG_VALUE'],
    [{ uid: 0, gid: 0, mode: 0o600, path: '/dev/null' }, 'ERR_INVALID_ARG_VALUE'],
    [{ uid: 0, gid: 0, mode: 0o600, owner: false }, 'ERR_INVALID_ARG_VALUE'],
    [{ uid: 0, gid: 0, mode: 0o600, colour: 'red' }, 'ERR_INVALID_ARG_VALUE'],
  ])('createTapNode(%j) is refused before anything is created (%s)', async (opts, code) => {
    const ns = host();
    await createMacvtap({ lower: 'l0', name: 'mv0', netns: ns.path });
    const before = records().length;
    await expect(createTapNode('mv0', { ...opts, netns: ns.path } as never)).rejects.toMatchObject({ code });
    expect(records().length).toBe(before);
  });

  test('a link that is not a macvtap, or none, is refused', async () => {
    const ns = host();
    const before = records().length;
    await expect(createTapNode('l0', { uid: 0, gid: 0, mode: 0o600, netns: ns.path })).rejects.toThrow(/must be a macvtap \("l0" is veth\)/);
    await expect(createTapNode('nope', { uid: 0, gid: 0, mode: 0o600, netns: ns.path })).rejects.toMatchObject({ code: 'ENODEV' });
    expect(records().length).toBe(before);
  });
});
