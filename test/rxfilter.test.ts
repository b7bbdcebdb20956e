/**
 * followRxFilter with a real QEMU (TCG) guest on a bridge-mode macvtap, QEMU's QMP on a Unix socket. The guest
 * (bench/testbed/guest-image.ts, task `rxfilter`) changes its MAC and adds an IPv6 address (joining that address's
 * solicited-node group) — things only QEMU's virtio-net filter learns — then reports its `rx_dropped` counter, which
 * counts the host's probe frames (an unknown EtherType) that reached its stack; at a count the test reaches it changes
 * its MAC again and swaps its IPv6 address (leaving one group, joining another), later joins 70 more groups (more
 * than QEMU's filter table holds) and at last turns promiscuous.
 *
 * The independent views: `ip -j link show` (MAC, flags), `ip maddr show` (the macvtap's multicast list, `static` for
 * what was added), ping and ping -6 from the peer (ARP, neighbour discovery), and the guest's own counter. Probes come
 * from the wire: a second macvtap on the peer's veth end writes raw frames that cross the veth into the macvtap's lower.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connectQmp, createMacvtap, followRxFilter, openTap, type QmpClient, type TapQueue } from '../lib/index.js';
import { buildGuest, pingFrom, type GuestImage, type GuestTask } from '../bench/testbed/guest-image.js';
import { destroyAll, makeTestbed, type Testbed } from '../bench/testbed/netns.js';
import { QEMU, qemuArgs, QemuGuest, qemuUnavailable, SerialLog, waitListening } from '../bench/testbed/qemu.js';
import { rawFrame, marker } from './helpers/l2frames.js';
import { cleanupStack, describeNeeding } from './helpers/suite.js';
import { syncWhere } from './helpers/qemu.js';

const missing = qemuUnavailable();
const defer = cleanupStack();
afterAll(() => destroyAll());

const LINK_MAC = '02:00:00:00:51:0a';
const GUEST_MAC = '02:00:00:00:51:0b';
const GUEST_MAC2 = '02:00:00:00:51:0c';
const INJ_MAC = '02:00:00:00:51:99';
const V6 = 'fd00:51::10';
const V6B = 'fd00:51::20';
/** Solicited-node groups (ff02::1:ffXX:XXXX → 33:33:ff:XX:XX:XX) of V6 and V6B, and one nobody joined. */
const G1 = '33:33:ff:00:00:10';
const G3 = '33:33:ff:00:00:20';
const G_OTHER = '33:33:ff:00:00:99';
const PROBE_TYPE = 0x88b5; // IEEE "local experimental": no protocol handler in the guest

/** The last `MVT-DROP n=` value the guest printed (0 before any). */
function noh(vm: QemuGuest): number {
  vm.serial.poll();
  const lines = vm.serial.results.filter((r) => r.kind === 'DROP');
  return lines.length === 0 ? 0 : Number(lines[lines.length - 1]!.fields.n);
}

/** Waits until the guest has counted at least `n` unhandled frames. */
async function nohAtLeast(vm: QemuGuest, n: number, timeoutMs = 20_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = noh(vm);
    if (now >= n) return now;
    if (Date.now() > deadline) throw new Error(`the guest counted ${now} unhandled frames, expected ≥ ${n}\n${vm.serial.output.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, SerialLog.pollMs));
  }
}

/** The macvtap as `ip -d -j link show` sees it. */
function ipLink(tb: Testbed): { address: string; flags: string[] } {
  return JSON.parse(tb.host.ip('-j', 'link', 'show', 'dev', 'mvt-rx'))[0] as { address: string; flags: string[] };
}

/** `ip maddr show dev mvt-rx`: link-layer entries, `static` ones marked. */
function ipMaddr(tb: Testbed): { all: string[]; static: string[] } {
  const lines = tb.host.ip('maddr', 'show', 'dev', 'mvt-rx').split('\n').filter((l) => /^\s+link\s/.test(l));
  const all = lines.map((l) => l.trim().split(/\s+/)[1]!);
  return { all, static: lines.filter((l) => /\bstatic\b/.test(l)).map((l) => l.trim().split(/\s+/)[1]!) };
}

describeNeeding('followRxFilter: a QEMU guest changes its receive filter, the macvtap follows', missing, () => {
  let guest: GuestImage;
  beforeAll(() => {
    guest = buildGuest();
  }, 300_000);

  it('MAC changes, multicast joins and leaves, IPv6 neighbour discovery: applied at start and on every NIC_RX_FILTER_CHANGED', async () => {
    const tb = makeTestbed(51);
    defer(() => tb.destroy());
    tb.peer.ip('addr', 'add', 'fd00:51::2/64', 'dev', tb.peerIf, 'nodad');
    const guestIp = '10.200.51.10';
    const link = await createMacvtap({ lower: tb.lower, name: 'mvt-rx', mode: 'bridge', mac: LINK_MAC, up: true, netns: tb.host.path });
    // The probe injector: a macvtap on the peer's veth end; what it writes leaves through the veth like any wire frame.
    await createMacvtap({ lower: tb.peerIf, name: 'mvt-inj', mode: 'bridge', mac: INJ_MAC, up: true, netns: tb.peer.path });
    const [inj] = await openTap('mvt-inj', { vnetHdr: false, netns: tb.peer.path });
    defer(() => inj!.close());
    const probe = (dst: string, count: number): void => {
      for (let i = 0; i < count; i++) (inj as TapQueue).write(rawFrame(dst, INJ_MAC, PROBE_TYPE, marker()));
    };

    // QEMU with the macvtap's queue in slot 3, a NIC with an id, and QMP on a socket of ours.
    const dir = mkdtempSync(join(tmpdir(), 'mvt-rxf-'));
    const qmpPath = join(dir, 'qmp.sock');
    const task: GuestTask = {
      ip: `${guestIp}/24`, peer: tb.peerIp, tasks: ['rxfilter'], newMac: GUEST_MAC, ip6: `${V6}/64`, rxfSeconds: 90,
      phase2At: 6, newMac2: GUEST_MAC2, ip6b: `${V6B}/64`, phase3At: 7, phase4At: 12,
    };
    const args = qemuArgs({ guest, task, mac: link.mac!, serial: join(dir, 'console.log'), netdev: 'tap,id=n0,fd=3,vhost=off', queues: 1 });
    const dev = args.findIndex((a) => a.startsWith('virtio-net-pci,'));
    args[dev] += ',id=nic0';
    args.push('-qmp', `unix:${qmpPath},server=on,wait=off`);
    const [q] = await openTap(link.ifindex, { netns: tb.host.path });
    const child = spawn(QEMU, args, { stdio: ['ignore', 'pipe', 'pipe', q!.fd] });
    const vm = new QemuGuest(child, new SerialLog(join(dir, 'console.log')), dir, performance.now(), 150_000);
    defer(() => vm.kill());
    await q!.close(); // QEMU holds its own copy

    // The guest took MAC B and joined G1; the macvtap still has A, so unicast to the guest goes nowhere.
    expect((await vm.waitFor('RXF', 90_000)).fields.mac).toBe(GUEST_MAC);
    expect(ipLink(tb).address).toBe(LINK_MAC);
    expect(pingFrom(tb.peer.name, guestIp, 2, { waitS: 1 }).received).toBe(0);

    const qmp: QmpClient = await connectQmp(qmpPath);
    defer(() => qmp.close());
    const f = await followRxFilter(qmp, 'mvt-rx', { netdevId: 'n0', netns: tb.host.path });
    defer(() => f.stop());
    expect(f.nic).toBe('nic0');
    // The first sync applied the MAC (the guest's G1 join may come with this sync or the next event).
    expect(f.state).toMatchObject({ nic: 'nic0', mac: GUEST_MAC, promisc: false, allmulti: false });
    expect(f.state!.changed).toContain('mac');
    await syncWhere(f, (s) => s.multicast.includes(G1));
    expect(ipLink(tb).address).toBe(GUEST_MAC);
    expect(ipLink(tb).flags).not.toContain('PROMISC');
    expect(ipLink(tb).flags).not.toContain('ALLMULTI');
    expect(ipMaddr(tb).static).toContain(G1);
    expect(ipMaddr(tb).static).not.toContain(G_OTHER);

    // Unicast to the new MAC reaches the guest; neighbour discovery (a solicitation to G1) gets its answer.
    expect(pingFrom(tb.peer.name, guestIp, 3).received).toBe(3);
    const v6 = pingFrom(tb.peer.name, V6, 3);
    expect(v6.received, v6.output).toBe(3);
    expect((JSON.parse(tb.peer.ip('-j', '-6', 'neigh', 'show', V6)) as Array<{ lladdr?: string }>)[0]?.lladdr).toBe(GUEST_MAC);

    // Multicast to G1 reaches the guest's stack: five probes, five counted.
    const base = noh(vm);
    expect(base).toBe(0);
    probe(G1, 5);
    expect(await nohAtLeast(vm, 5)).toBe(5);
    // To a group nobody joined: not delivered. A broadcast probe after them (same path, in order) is the only one counted.
    probe(G_OTHER, 5);
    probe('ff:ff:ff:ff:ff:ff', 1);
    expect(await nohAtLeast(vm, 6)).toBe(6);

    // Phase 2 (the guest saw 6): MAC C, IPv6 address V6 → V6B (G1 left, G3 joined). Only events announce it.
    expect((await vm.waitFor('RXF-NEXT', 30_000)).fields.mac).toBe(GUEST_MAC2);
    const s2 = await syncWhere(f, (s) => s.mac === GUEST_MAC2 && s.multicast.includes(G3) && !s.multicast.includes(G1));
    expect(s2.changed.length).toBeGreaterThan(0);
    expect(ipLink(tb).address).toBe(GUEST_MAC2);
    const m2 = ipMaddr(tb);
    expect(m2.static).toContain(G3);
    expect(m2.static).not.toContain(G1);
    expect(pingFrom(tb.peer.name, guestIp, 3).received).toBe(3);
    const v6b = pingFrom(tb.peer.name, V6B, 3);
    expect(v6b.received, v6b.output).toBe(3);
    // G1 is no longer the guest's: its probes stop reaching it; the broadcast after them is counted alone.
    probe(G1, 5);
    probe('ff:ff:ff:ff:ff:ff', 1);
    expect(await nohAtLeast(vm, 7)).toBe(7);

    // Phase 3 (the guest saw 7): 70 more groups overflow QEMU's 64-entry table; the macvtap goes all-multicast, and
    // its filter then passes a group nobody joined.
    expect(Number((await vm.waitFor('RXF-MANY', 60_000)).fields.groups)).toBeGreaterThan(64);
    await syncWhere(f, (s) => s.allmulti, 30_000);
    expect(ipLink(tb).flags).toContain('ALLMULTI');
    expect(ipLink(tb).flags).not.toContain('PROMISC');
    probe(G_OTHER, 5);
    expect(await nohAtLeast(vm, 12)).toBe(12);

    // Phase 4 (the guest saw 12): promiscuous. The macvtap follows.
    expect((await vm.waitFor('RXF-LAST', 30_000)).fields.promisc).toBe('1');
    await syncWhere(f, (s) => s.promisc);
    expect(ipLink(tb).flags).toContain('PROMISC');

    // Stopping leaves the macvtap as it is and follows nothing more.
    const why = new Promise((r) => f.once('stop', r));
    await f.stop();
    expect(await why).toBe('stop');
    expect(f.stopped).toBe(true);
    expect(f.stopReason).toBe('stop');
    expect(ipLink(tb).address).toBe(GUEST_MAC2);
  }, 240_000);

  it('refuses a netdev id no NIC uses, and a link that is not a macvtap, before changing anything', async () => {
    const tb = makeTestbed(52);
    defer(() => tb.destroy());
    const dir = mkdtempSync(join(tmpdir(), 'mvt-rxf-'));
    const qmpPath = join(dir, 'qmp.sock');
    // No guest needed: QEMU stopped before it runs anything, with a NIC (id nic0) on a netdev n0 of its own.
    const child = spawn(QEMU, ['-machine', 'none', '-accel', 'tcg', '-nodefaults', '-display', 'none', '-S', '-monitor', 'none',
      '-netdev', 'user,id=n0', '-qmp', `unix:${qmpPath},server=on,wait=off`], { stdio: ['ignore', 'pipe', 'pipe'] });
    const vm = new QemuGuest(child, new SerialLog(join(dir, 'console.log')), dir, performance.now(), 60_000);
    defer(() => vm.kill());
    await waitListening(qmpPath);
    const qmp = await connectQmp(qmpPath);
    defer(() => qmp.close());
    const link = await createMacvtap({ lower: tb.lower, name: 'mvt-rx', mode: 'bridge', mac: LINK_MAC, up: true, netns: tb.host.path });
    await expect(followRxFilter(qmp, 'mvt-rx', { netdevId: 'n0', netns: tb.host.path })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(/netdevId/) });
    await expect(followRxFilter(qmp, tb.lower, { netdevId: 'n0', netns: tb.host.path })).rejects.toMatchObject({ name: 'MacvtapError', code: 'EINVAL' });
    await expect(followRxFilter(qmp, 'mvt-rx', { netdevId: 'bad id', netns: tb.host.path })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(followRxFilter(qmp, 'mvt-rx', { netdevId: 'n0', netns: tb.host.path, nic: 'x' } as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    expect(ipLink(tb).address).toBe(link.mac);
    expect(ipMaddr(tb).static).toEqual([]);
  }, 60_000);
});
