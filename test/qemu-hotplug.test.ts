/**
 * A macvtap into a real QEMU (TCG) guest, at start and while it runs: the `-netdev`/`-device` pair from
 * `qemuNetdevArgs` (QEMU accepts it; the guest has the link's MAC and pings its peer), and QMP hot-plug — a guest
 * booted with no NIC gets the macvtap (`getfd` over SCM_RIGHTS, `netdev_add`, `device_add`), brings it up and pings
 * the peer through it, loses it again (`device_del`, `DEVICE_DELETED`, `netdev_del`), cycle after cycle, with QEMU's fd
 * table (`/proc/PID/fd`) and ours back where they began after every cycle and after every refused or failed attach
 * (one failing at `device_add`, one whose `netdev_add` QEMU itself refuses after the `getfd`s).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  attachMacvtap, connectQmp, createMacvtap, deleteLink, detachMacvtap, followRxFilter, getLink, openTap, qemuNetdevArgs,
  setLink, MAX_QEMU_QUEUES, type LinkInfo, type QmpClient,
} from '../lib/index.js';
import { binding } from '../lib/binding.js';
import { buildGuest, pingFrom, type GuestImage } from '../bench/testbed/guest-image.js';
import { destroyAll, makeTestbed, type Testbed } from '../bench/testbed/netns.js';
import { countDeviceFds, qemuUnavailable, startQemu, waitListening, type QemuGuest } from '../bench/testbed/qemu.js';
import { cleanupStack, describeNeeding } from './helpers/suite.js';
import { fdTable, qmpQemu, syncWhere } from './helpers/qemu.js';

const missing = qemuUnavailable();
/** Attach/detach cycles after the first, checked one by one (each costs ≈1 s of guest time under TCG). */
const CYCLES = 20;

/** The MAC the guest gives the NIC of the followRxFilter cycle. */
const HP_MAC = '02:00:00:00:72:0b';

const cli = resolve(import.meta.dirname, '..', 'dist', 'cli', 'macvtap.js');

function macvtap(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const defer = cleanupStack();
afterAll(() => destroyAll());

function testbed(subnet: number): Testbed {
  const tb = makeTestbed(subnet);
  defer(() => tb.destroy());
  return tb;
}

function qmpPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mvt-hp-'));
  defer(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'qmp.sock');
}

async function connect(sock: string): Promise<QmpClient> {
  await waitListening(sock);
  const qmp = await connectQmp(sock);
  defer(() => qmp.close());
  return qmp;
}

/** Our fds of the macvtap's device (this process), and every fd the addon owns. */
function ours(link: LinkInfo): { deviceFds: number; owned: number[] } {
  return { deviceFds: countDeviceFds(process.pid, link.tap!.major, link.tap!.minor), owned: binding.ownedFds() };
}

/** The macvtap's MAC as `ip -j link show` sees it. */
function ipLinkAddress(tb: Testbed, name: string): string {
  return (JSON.parse(tb.host.ip('-j', 'link', 'show', 'dev', name)) as Array<{ address: string }>)[0]!.address;
}

describe('qemuNetdevArgs', () => {
  const link = { name: 'mvtap0', kind: 'macvtap', mac: '02:AA:00:00:00:01', mtu: 1500 } as LinkInfo;

  it('one queue: fd= and the link MAC, no mq/vectors (QEMU\'s defaults serve one queue pair)', () => {
    expect(qemuNetdevArgs(link, [3], { id: 'net0' })).toEqual({
      netdevId: 'net0-tap',
      deviceId: 'net0',
      netdev: 'tap,id=net0-tap,fd=3',
      device: 'virtio-net-pci,id=net0,netdev=net0-tap,mac=02:aa:00:00:00:01',
      args: ['-netdev', 'tap,id=net0-tap,fd=3', '-device', 'virtio-net-pci,id=net0,netdev=net0-tap,mac=02:aa:00:00:00:01'],
    });
  });

  it('N queues: fds=, mq=on, vectors=2N+2; vhost fds and host_mtu when given', () => {
    const r = qemuNetdevArgs(link, [3, 4, 5, 6], { id: 'n1', vhostFds: [7, 8, 9, 10], mtu: 1400 });
    expect(r.netdev).toBe('tap,id=n1-tap,fds=3:4:5:6,vhost=on,vhostfds=7:8:9:10');
    expect(r.device).toBe('virtio-net-pci,id=n1,netdev=n1-tap,mac=02:aa:00:00:00:01,mq=on,vectors=10,host_mtu=1400');
    expect(qemuNetdevArgs(link, [3], { id: 'n1', vhostFds: [4] }).netdev).toBe('tap,id=n1-tap,fd=3,vhost=on,vhostfd=4');
  });

  it('refuses what would give the guest a wrong NIC', () => {
    expect(() => qemuNetdevArgs({ ...link, kind: 'macvlan' }, [3], { id: 'n' })).toThrow(/must be a macvtap/);
    expect(() => qemuNetdevArgs({ ...link, mac: null }, [3], { id: 'n' })).toThrow(/unicast MAC/);
    expect(() => qemuNetdevArgs(link, [], { id: 'n' })).toThrow(TypeError);
    expect(() => qemuNetdevArgs(link, Array.from({ length: MAX_QEMU_QUEUES + 1 }, (_, i) => i + 3), { id: 'n' })).toThrow(RangeError);
    expect(() => qemuNetdevArgs(link, [3, 4], { id: 'n', vhostFds: [5] })).toThrow(/one fd per queue/);
    expect(() => qemuNetdevArgs(link, [3], { id: 'n', mtu: 9000 })).toThrow(/at most the link's MTU \(1500\)/);
    expect(() => qemuNetdevArgs(link, [3], { id: '0bad' })).toThrow(/QEMU id/);
    expect(() => qemuNetdevArgs(link, [3], { id: 'a,b=c' })).toThrow(/QEMU id/);
    expect(() => qemuNetdevArgs(link, [3], { id: 'n', macaddr: 'x' } as never)).toThrow(/macaddr/);
  });
});

describe('macvtap qmp (CLI) input', () => {
  it('usage errors exit 2 before connecting; a socket that is not QMP exits 1 with the reason', async () => {
    expect(macvtap(['qmp', 'plug'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/qmp takes attach or detach/) });
    expect(macvtap(['qmp', 'attach', '--dev', 'x'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--socket/) });
    expect(macvtap(['qmp', 'detach', '--socket', '/tmp/x', '--dev', 'x', '--queues', '2'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--queues is for qmp attach/) });
    expect(macvtap(['qmp', 'detach', '--socket', '/tmp/x', '--dev', 'a@b'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/give --id/) });
    expect(macvtap(['qmp', 'attach', '--socket', '/nonexistent/qmp.sock', '--dev', 'x'])).toMatchObject({ code: 1, stderr: 'macvtap: connect ENOENT /nonexistent/qmp.sock\n' });
  });
});

describeNeeding('QEMU guest: macvtap at start and by QMP hot-plug', missing, () => {
  let guest: GuestImage;
  beforeAll(() => {
    guest = buildGuest();
  }, 300_000);

  it('QEMU starts with qemuNetdevArgs (2 queues): the guest has the link MAC and pings; detachMacvtap unplugs it and QEMU lets the queues go', async () => {
    const tb = testbed(71);
    const link = await createMacvtap({ lower: tb.lower, name: 'mvtap0', up: true, netns: tb.host.path });
    const q = await openTap(link.ifindex, { queues: 2, netns: tb.host.path });
    defer(() => Promise.all(q.map((x) => x.close())));
    const na = qemuNetdevArgs(link, [3, 4], { id: 'net0' });
    const sock = qmpPath();
    const task = { ip: '10.200.71.10/24', peer: tb.peerIp, tasks: ['ping' as const], count: 3, hold: 60 };
    const vm = startQemu({ guest, task, mac: link.mac!, qmp: sock, net: { type: 'fdsArgs', fds: q.map((x) => x.fd), args: na.args } });
    defer(() => vm.kill());
    await Promise.all(q.map((x) => x.close()));
    const mac = await vm.waitFor('MAC', 60_000);
    expect(mac.fields.addr).toBe(link.mac);
    const ping = await vm.waitFor('PING', 60_000);
    expect(Number(ping.fields.recv)).toBe(3);
    await vm.waitFor('READY', 10_000);
    expect(countDeviceFds(vm.pid, link.tap!.major, link.tap!.minor)).toBe(2);

    const qmp = await connect(sock);
    // The guest's own view of the queues: mq on, 2 pairs, 6 vectors, as the arguments said.
    expect(await qmp.execute('qom-get', { path: '/machine/peripheral/net0', property: 'vectors' })).toBe(6);
    expect(await qmp.execute('qom-get', { path: '/machine/peripheral/net0', property: 'mq' })).toBe(true);
    expect(await detachMacvtap(qmp, 'net0')).toEqual({ deviceId: 'net0', netdevId: 'net0-tap' });
    expect(countDeviceFds(vm.pid, link.tap!.major, link.tap!.minor)).toBe(0);
    expect(pingFrom(tb.peer.name, '10.200.71.10', 2, { waitS: 1 }).received).toBe(0);
    await expect(detachMacvtap(qmp, 'net0')).rejects.toMatchObject({ name: 'QmpError', class: 'DeviceNotFound' });
    await deleteLink(link.ifindex, { netns: tb.host.path });
  }, 120_000);

  it(`hot-plug into a guest booted with no NIC: ping through it, unplug, ${CYCLES} more cycles — QEMU's fds and ours back every time; refused and failed attaches change nothing`, async () => {
    const tb = testbed(72);
    const link = await createMacvtap({ lower: tb.lower, name: 'mvtap0', up: true, netns: tb.host.path });
    const sock = qmpPath();
    // 1 checked in detail, CYCLES counted, 1 with followRxFilter (the guest changes the NIC's MAC), 1 through the CLI.
    const task = {
      ip: '10.200.72.10/24', peer: tb.peerIp, tasks: ['hotplug' as const] as ['hotplug'], cycles: 3 + CYCLES, hold: 30,
      hotplugMac: HP_MAC, hotplugMacAt: 2 + CYCLES,
    };
    const vm: QemuGuest = startQemu({ guest, task, mac: link.mac!, qmp: sock, net: { type: 'none' } });
    defer(() => vm.kill());
    await vm.waitFor('BOOT', 60_000);
    const qmp = await connect(sock);
    // A QMP error alone does not say why QEMU went away: the guest's console and QEMU's stderr do.
    qmp.on('close', (why: Error) => {
      if (/closed \(QEMU exited/.test(why.message)) process.stderr.write(`QEMU went away; stderr: ${vm.stderr}\n--- console ---\n${vm.serial.output.slice(-3000)}\n`);
    });
    const before = fdTable(vm.pid);
    const mine = ours(link);
    expect(mine.deviceFds).toBe(0);

    // Refused before anything is sent: more queues than the tap driver has, an id QEMU already uses.
    await expect(attachMacvtap(qmp, link.name, { id: 'hp', queues: MAX_QEMU_QUEUES + 1, netns: tb.host.path })).rejects.toThrow(RangeError);
    await expect(attachMacvtap(qmp, link.name, { id: 'hp', netns: tb.host.path, speed: 1 } as never)).rejects.toThrow(/speed/);
    // Failing at device_add (no such bus) after getfd and netdev_add ran: both undone.
    const bad = await attachMacvtap(qmp, link.name, { id: 'hp', queues: 2, netns: tb.host.path, bus: 'nope' }).catch((e: unknown) => e);
    expect(bad).toMatchObject({ name: 'QmpError', class: 'GenericError', desc: "Bus 'nope' not found", command: 'device_add' });
    expect(fdTable(vm.pid)).toEqual(before);
    expect(ours(link)).toEqual(mine);
    expect(await qmp.execute('human-monitor-command', { 'command-line': 'info network' })).not.toMatch(/hp-tap/);
    // Failing at netdev_add: QEMU itself refuses it (a client that adds a property QEMU does not know to netdev_add and
    // passes everything else through unchanged), after the getfds ran. Every getfd undone with closefd: QEMU's fd table
    // as before, and each name gone from its monitor (a closefd of it now finds nothing).
    const seen: string[] = [];
    const refusing = new Proxy(qmp, {
      get(target, prop) {
        if (prop === 'execute') {
          return (cmd: string, args?: Record<string, unknown>, opts?: Parameters<QmpClient['execute']>[2]) => {
            if (cmd === 'getfd') seen.push(String(args!.fdname));
            return target.execute(cmd, cmd === 'netdev_add' ? { ...args, 'mvt-bogus': 1 } : args, opts);
          };
        }
        const x = Reflect.get(target, prop, target) as unknown;
        return typeof x === 'function' ? (x as (...a: unknown[]) => unknown).bind(target) : x;
      },
    });
    const refused = await attachMacvtap(refusing, link.name, { id: 'hp', queues: 2, netns: tb.host.path }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ name: 'QmpError', class: 'GenericError', command: 'netdev_add', desc: expect.stringMatching(/mvt-bogus/) });
    expect(seen).toHaveLength(2);
    expect(fdTable(vm.pid)).toEqual(before);
    expect(ours(link)).toEqual(mine);
    for (const name of seen) await expect(qmp.execute('closefd', { fdname: name })).rejects.toMatchObject({ name: 'QmpError', desc: expect.stringMatching(/not found/) });
    expect(await qmp.execute('human-monitor-command', { 'command-line': 'info network' })).not.toMatch(/hp-tap/);

    // Cycle 1, checked in detail.
    const t1 = performance.now();
    const nic = await attachMacvtap(qmp, link.name, { id: 'hp', queues: 2, netns: tb.host.path });
    expect(nic).toEqual({ deviceId: 'hp', netdevId: 'hp-tap', device: 'mvtap0', ifindex: link.ifindex, mac: link.mac, queues: 2, vhost: false });
    expect(countDeviceFds(vm.pid, link.tap!.major, link.tap!.minor)).toBe(2);
    expect(ours(link)).toEqual(mine);
    // The same id again: refused before anything is sent, the plugged NIC untouched.
    const during = fdTable(vm.pid);
    await expect(attachMacvtap(qmp, link.name, { id: 'hp', netns: tb.host.path })).rejects.toMatchObject({ name: 'MacvtapError', code: 'EEXIST' });
    expect(fdTable(vm.pid)).toEqual(during);
    const plugged = await vm.waitFor('PLUGGED', 60_000, (r) => r.fields.n === '1');
    expect(plugged.fields.mac).toBe(link.mac);
    const hping = await vm.waitFor('HPING', 90_000, (r) => r.fields.n === '1');
    expect(hping.fields.ok).toBe('1');
    // And the other way: the peer reaches the guest through the hot-plugged NIC.
    expect(pingFrom(tb.peer.name, '10.200.72.10', 2).received).toBe(2);
    await detachMacvtap(qmp, 'hp');
    await vm.waitFor('UNPLUGGED', 30_000, (r) => r.fields.n === '1');
    const first = performance.now() - t1;
    expect(countDeviceFds(vm.pid, link.tap!.major, link.tap!.minor)).toBe(0);
    expect(fdTable(vm.pid)).toEqual(before);
    expect(ours(link)).toEqual(mine);

    const t0 = performance.now();
    for (let n = 2; n <= 1 + CYCLES; n++) {
      await attachMacvtap(qmp, link.name, { id: 'hp', queues: 2, netns: tb.host.path });
      const ok = await vm.waitFor('HPING', 90_000, (r) => r.fields.n === String(n));
      expect(ok.fields.ok, `cycle ${n}`).toBe('1');
      await detachMacvtap(qmp, 'hp');
      await vm.waitFor('UNPLUGGED', 30_000, (r) => r.fields.n === String(n));
      expect(fdTable(vm.pid), `cycle ${n}`).toEqual(before);
      expect(ours(link), `cycle ${n}`).toEqual(mine);
    }
    const per = (performance.now() - t0) / CYCLES;
    process.stderr.write(`hot-plug: first cycle ${first.toFixed(0)} ms, then ${per.toFixed(0)} ms per attach→ping→detach cycle (${CYCLES} cycles, TCG)\n`);

    // A hot-plugged NIC followed by followRxFilter: the guest gives it a new MAC, the macvtap takes it, the peer reaches
    // the guest at it; detaching the NIC stops the follower ('deleted'), with no sync error.
    const nf = 2 + CYCLES;
    const fnic = await attachMacvtap(qmp, link.name, { id: 'hpf', queues: 2, netns: tb.host.path });
    const f = await followRxFilter(qmp, link.name, { netdevId: fnic.netdevId, netns: tb.host.path });
    defer(() => f.stop());
    const errors: unknown[] = [];
    f.on('error', (e) => errors.push(e));
    expect(f.nic).toBe('hpf');
    expect(f.state).toMatchObject({ nic: 'hpf', mac: link.mac });
    expect((await vm.waitFor('HPING', 90_000, (r) => r.fields.n === String(nf))).fields.ok).toBe('1');
    expect((await vm.waitFor('HPMAC', 30_000, (r) => r.fields.n === String(nf))).fields.mac).toBe(HP_MAC);
    await syncWhere(f, (s) => s.mac === HP_MAC);
    expect(ipLinkAddress(tb, link.name)).toBe(HP_MAC);
    tb.peer.ip('neigh', 'flush', 'dev', tb.peerIf);
    expect(pingFrom(tb.peer.name, '10.200.72.10', 2).received).toBe(2);
    const filterEvents: unknown[] = [];
    const countFilterEvents = (ev: { data: Record<string, unknown> }): void => {
      if (ev.data.name === 'hpf') filterEvents.push(ev.data);
    };
    qmp.on('NIC_RX_FILTER_CHANGED', countFilterEvents);
    const stopped = new Promise((r) => f.once('stop', r));
    await detachMacvtap(qmp, 'hpf');
    expect(await stopped).toBe('deleted');
    expect(f.stopped).toBe(true);
    expect(f.stopReason).toBe('deleted');
    await vm.waitFor('UNPLUGGED', 30_000, (r) => r.fields.n === String(nf));
    qmp.off('NIC_RX_FILTER_CHANGED', countFilterEvents);
    expect(errors).toEqual([]);
    process.stderr.write(`followRxFilter on a hot-plugged NIC: ${filterEvents.length} NIC_RX_FILTER_CHANGED for it during detach\n`);
    expect(fdTable(vm.pid)).toEqual(before);
    expect(ours(link)).toEqual(mine);
    // What was applied stays on the macvtap; the CLI cycle below expects the link's own MAC again.
    await setLink(link.name, { mac: link.mac! }, { netns: tb.host.path });

    // The last cycle through the CLI (QEMU serves one QMP client: ours steps aside).
    await qmp.close();
    const n = String(3 + CYCLES);
    const nsName = tb.host.path.split('/').pop()!;
    const att = macvtap(['qmp', 'attach', '--socket', sock, '--dev', link.name, '--queues', '2', '--netns', nsName, '--json']);
    expect(att.code, att.stderr).toBe(0);
    expect(JSON.parse(att.stdout)).toMatchObject({ deviceId: 'mvt-mvtap0', netdevId: 'mvt-mvtap0-tap', mac: link.mac, queues: 2 });
    expect((await vm.waitFor('HPING', 90_000, (r) => r.fields.n === n)).fields.ok).toBe('1');
    expect(countDeviceFds(vm.pid, link.tap!.major, link.tap!.minor)).toBe(2);
    const det = macvtap(['qmp', 'detach', '--socket', sock, '--dev', link.name]);
    expect(det, det.stderr).toMatchObject({ code: 0, stdout: 'detached mvt-mvtap0 (backend mvt-mvtap0-tap)\n' });
    await vm.waitFor('UNPLUGGED', 30_000, (r) => r.fields.n === n);
    // A new QMP client in the old one's place: the same table, but for the connection socket's inode.
    const again = await connect(sock);
    const bare = (t: string[]): string[] => t.map((e) => e.replace(/socket:\[\d+\]/, 'socket'));
    expect(bare(fdTable(vm.pid))).toEqual(bare(before));

    // A backend id someone else took (here a user-mode netdev named like ours would be): refused before any fd goes.
    await again.execute('netdev_add', { type: 'user', id: 'taken-tap' });
    const withUser = fdTable(vm.pid);
    await expect(attachMacvtap(again, link.name, { id: 'taken', netns: tb.host.path })).rejects.toMatchObject({ code: 'EEXIST', message: expect.stringMatching(/network backend with id "taken-tap"/) });
    expect(fdTable(vm.pid)).toEqual(withUser);
    expect(ours(link)).toEqual(mine);
    await vm.waitFor('READY', 10_000);
    await deleteLink(link.ifindex, { netns: tb.host.path });
    await expect(getLink(link.ifindex, { netns: tb.host.path })).rejects.toMatchObject({ code: 'ENODEV' });
  }, 240_000);

  it('QEMU dying mid-attach rejects with ERR_QMP_CLOSED, and our queue fds are closed', async () => {
    const tb = testbed(73);
    const link = await createMacvtap({ lower: tb.lower, name: 'mvtap0', up: true, netns: tb.host.path });
    // No guest needed: a paused pc machine takes device_add.
    const { child, sock } = await qmpQemu(defer, { machine: 'pc', paused: true });
    const qmp = await connect(sock);
    const mine = ours(link);
    const attach = attachMacvtap(qmp, link.name, { id: 'hp', queues: 4, netns: tb.host.path });
    attach.catch(() => undefined);
    // Stop QEMU as soon as our queues are open (the getfd round trips still ahead), then kill it.
    for (let i = 0; i < 100_000 && binding.ownedFds().length <= mine.owned.length; i++) await new Promise((r) => setImmediate(r));
    expect(binding.ownedFds().length).toBeGreaterThan(mine.owned.length);
    process.kill(child.pid!, 'SIGSTOP');
    await new Promise((r) => setTimeout(r, 100));
    process.kill(child.pid!, 'SIGKILL');
    await expect(attach).rejects.toMatchObject({ code: 'ERR_QMP_CLOSED' });
    expect(ours(link)).toEqual(mine);
    await deleteLink(link.ifindex, { netns: tb.host.path });
  }, 60_000);
});
