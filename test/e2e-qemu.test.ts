/**
 * End to end with a real consumer: a QEMU (TCG) guest whose virtio-net NIC is backed by macvtap queues this package
 * opened and handed over — through spawn's stdio slots and through the `macvtap exec` CLI — in throwaway namespaces.
 * The guest (bench/testbed/guest-image.ts) pings its peer, does a UDP request/response and a small TCP transfer; the
 * peer pings the guest back. Scenarios 1–2 are here, 3–5 (libvirt) in e2e-libvirt.test.ts.
 */
import { statSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createMacvtap, deleteLink, getLink, openTap, type LinkInfo } from '../lib/index.js';
import { buildGuest, pingFrom, type GuestImage, type GuestTask } from '../bench/testbed/guest-image.js';
import { startGuestPeer, xferSha256 } from '../bench/testbed/peer.js';
import { cleanupStack, describeNeeding } from './helpers/suite.js';
import { destroyAll, makeTestbed, type Testbed } from '../bench/testbed/netns.js';
import { countDeviceFds, qemuUnavailable, startQemu, type QemuGuest } from '../bench/testbed/qemu.js';

const missing = qemuUnavailable();


const XFER = 256 * 1024;

const defer = cleanupStack();
afterAll(() => destroyAll());

function testbed(subnet: number): Testbed {
  const tb = makeTestbed(subnet);
  defer(() => tb.destroy());
  return tb;
}

function guestTask(tb: Testbed, token: string, hold = 30): GuestTask {
  return { ip: tb.peerIp.replace(/\.2$/, '.10') + '/24', peer: tb.peerIp, tasks: ['ping', 'udp', 'xfer'], count: 5, hold, token, xferBytes: XFER };
}

/** The guest's own checks, read from its console: MAC, pings, UDP, transfer. */
async function expectGuestTasks(vm: QemuGuest, link: LinkInfo, token: string): Promise<void> {
  const mac = await vm.waitFor('MAC', 60_000);
  expect(mac.fields.addr).toBe(link.mac);
  await vm.waitFor('FIRST-PING', 60_000);
  const ping = await vm.waitFor('PING', 30_000);
  expect(Number(ping.fields.recv)).toBe(5);
  const udp = await vm.waitFor('UDP', 30_000);
  expect(udp.fields).toMatchObject({ ok: '1', reply: `echo:${token}` });
  const xfer = await vm.waitFor('XFER', 60_000);
  expect(xfer.fields).toEqual({ ok: '1', bytes: String(XFER), sha256: xferSha256(XFER) });
  await vm.waitFor('READY', 10_000);
}

/** The peer pings the guest, and learned the guest's address at the macvtap's MAC. */
function expectPeerReachesGuest(tb: Testbed, guestIp: string, mac: string): void {
  const r = pingFrom(tb.peer.name, guestIp, 3);
  expect(r.received, r.output).toBe(3);
  const neigh = JSON.parse(tb.peer.ip('-j', 'neigh', 'show', guestIp)) as Array<{ lladdr?: string }>;
  expect(neigh[0]?.lladdr).toBe(mac);
}

describeNeeding('e2e: QEMU guest over our fds', missing, () => {
  let guest: GuestImage;
  beforeAll(() => {
    guest = buildGuest();
  }, 300_000);

  // 1. QEMU over our fds, 1 and 4 queues, through spawn's stdio slots and through `macvtap exec`.
  const cases = [
    { queues: 1, via: 'spawn' as const, subnet: 41 },
    { queues: 4, via: 'spawn' as const, subnet: 42 },
    { queues: 1, via: 'exec' as const, subnet: 43 },
    { queues: 4, via: 'exec' as const, subnet: 44 },
  ];
  it.each(cases)('scenario 1: $queues queue(s) via $via — guest and peer ping each other, guest has the macvtap MAC', async ({ queues, via, subnet }) => {
    const tb = testbed(subnet);
    const link = await createMacvtap({ lower: tb.lower, name: 'mvtap0', mode: 'bridge', up: true, netns: tb.host.path });
    expect(link.tap).not.toBeNull();
    const peer = await startGuestPeer(tb.peer.name);
    defer(() => peer.stop());
    const token = `q${queues}${via}${process.pid}`;
    const task = guestTask(tb, token);

    let vm: QemuGuest;
    if (via === 'spawn') {
      const q = await openTap(link.ifindex, { queues, netns: tb.host.path });
      defer(() => Promise.all(q.map((x) => x.close())));
      vm = startQemu({ guest, task, mac: link.mac!, net: { type: 'fds', fds: q.map((x) => x.fd) } });
      defer(() => vm.kill());
      // QEMU has its own copies now; ours go, so the queues live exactly as long as QEMU.
      await Promise.all(q.map((x) => x.close()));
    } else {
      vm = startQemu({ guest, task, mac: link.mac!, net: { type: 'exec', netns: tb.host.path, dev: link.name, queues } });
      defer(() => vm.kill());
    }
    await vm.waitFor('BOOT', 60_000);
    // By now the CLI has exec'd QEMU in place: the PID holds exactly `queues` fds of this macvtap's device.
    expect(countDeviceFds(vm.pid, link.tap!.major, link.tap!.minor)).toBe(queues);

    await expectGuestTasks(vm, link, token);
    expect(peer.requests).toEqual([
      { udp: token, from: task.ip.split('/')[0] },
      { http: XFER, from: task.ip.split('/')[0] },
    ]);
    expectPeerReachesGuest(tb, task.ip.split('/')[0]!, link.mac!);

    await vm.kill();
    // The device is still ours after QEMU is gone, and our delete removes it.
    expect((await getLink(link.ifindex, { netns: tb.host.path })).mac).toBe(link.mac);
    await deleteLink(link.ifindex, { netns: tb.host.path });
    await expect(getLink(link.ifindex, { netns: tb.host.path })).rejects.toMatchObject({ code: 'ENODEV' });
  }, 120_000);

  // 2. Two namespaces, same ifindex: /dev/tapN is the other namespace's device, and the guest must still be on ours.
  it('scenario 2: another namespace holds a macvtap with the same ifindex — the guest reaches its own peer only', async () => {
    const mine = testbed(51);
    const other = testbed(51); // same addresses on purpose: only the attachment decides which peer answers
    const ifindex = 3000 + Math.floor(Math.random() * 4000);
    const theirs = await createMacvtap({ lower: other.lower, name: 'mvtap0', ifindex, up: true, netns: other.host.path });
    const link = await createMacvtap({ lower: mine.lower, name: 'mvtap0', ifindex, up: true, netns: mine.host.path });
    expect(link.ifindex).toBe(theirs.ifindex);
    // The hazard is real: the conventional node is the other namespace's device.
    const node = statSync(`/dev/tap${ifindex}`, { bigint: true });
    expect([Number(node.rdev >> 8n) & 0xfff, Number(node.rdev & 0xffn)]).toEqual([theirs.tap!.major, theirs.tap!.minor & 0xff]);
    expect(theirs.tap!.minor).not.toBe(link.tap!.minor);

    const peerMine = await startGuestPeer(mine.peer.name);
    defer(() => peerMine.stop());
    const peerOther = await startGuestPeer(other.peer.name);
    defer(() => peerOther.stop());

    const q = await openTap(link.ifindex, { queues: 1, netns: mine.host.path });
    defer(() => Promise.all(q.map((x) => x.close())));
    const token = `same-ifindex-${process.pid}`;
    const task = guestTask(mine, token);
    const vm = startQemu({ guest, task, mac: link.mac!, net: { type: 'fds', fds: q.map((x) => x.fd) } });
    defer(() => vm.kill());
    await Promise.all(q.map((x) => x.close()));

    await vm.waitFor('BOOT', 60_000);
    expect(countDeviceFds(vm.pid, link.tap!.major, link.tap!.minor)).toBe(1);
    expect(countDeviceFds(vm.pid, theirs.tap!.major, theirs.tap!.minor)).toBe(0);
    await expectGuestTasks(vm, link, token);
    expectPeerReachesGuest(mine, task.ip.split('/')[0]!, link.mac!);

    // The other peer saw nothing of this guest: no requests, no neighbour entry for it.
    expect(peerMine.requests.length).toBe(2);
    expect(peerOther.requests).toEqual([]);
    const neigh = JSON.parse(other.peer.ip('-j', 'neigh', 'show')) as Array<{ dst: string; lladdr?: string }>;
    expect(neigh.filter((n) => n.lladdr === link.mac)).toEqual([]);
  }, 120_000);
});
