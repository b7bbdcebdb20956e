/**
 * vhost-net next to the tap queues (`openTap(…, { vhost: true })`, `macvtap exec --vhost`). Two kernels:
 * - this host's 6.18 has no vhost-net (no `/dev/vhost-net`, no modules): the open is refused with `ENOENT` naming
 *   `vhost_net`/`CONFIG_VHOST_NET`, and nothing stays open (the process's `/proc/self/fd`, the addon's own fd table,
 *   the macvtap's queues);
 * - in the 6.1 VM (`npm run test:kernel -- test/vhost.test.ts`) opening `/dev/vhost-net` loads `vhost_net`
 *   (test/vm/guest.sh makes the nodes from `modules.devname`, as systemd does): the fds are the misc device sysfs
 *   names, answer `VHOST_GET_FEATURES`, take `VHOST_SET_OWNER` once (`EBUSY` the second time), close and detach with
 *   their queue, reach a command through `macvtap exec --vhost`, and QEMU takes them (`vhostfds=`): its vhost
 *   worker thread appears and our copy of each fd then answers `EBUSY` to `VHOST_SET_OWNER` — QEMU owns that very file.
 * Cases of one kernel skip on the other with the reason printed.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeEach, expect, it } from 'vitest';
import { binding } from '../lib/binding.js';
import { createMacvtap, openTap, type TapQueue } from '../lib/index.js';
import { describePrivileged, isRoot } from './helpers/suite.js';
import { rejection } from './helpers/rejection.js';
import { destroyAll, makeTestbed, type Testbed } from '../bench/testbed/netns.js';
import { QEMU, qemuUnavailable } from '../bench/testbed/qemu.js';

const cli = resolve(import.meta.dirname, '..', 'dist', 'cli', 'macvtap.js');

/**
 * Whether this kernel offers vhost-net, seen without the code under test: the node exists and the misc class lists it
 * once it is opened (opening loads the module where it is one). `null` when it does.
 */
const vhostMissing: string | null = (() => {
  if (!isRoot) return 'not root';
  try {
    fs.closeSync(fs.openSync('/dev/vhost-net', 'r+'));
  } catch (e) {
    return `this kernel has no vhost-net (${(e as NodeJS.ErrnoException).code} opening /dev/vhost-net)`;
  }
  return fs.existsSync('/sys/class/misc/vhost-net/dev') ? null : 'no /sys/class/misc/vhost-net';
})();
const vhostPresent: string | null = vhostMissing === null ? 'this kernel has vhost-net (the refusal runs where it has not)' : null;

/** The process's open fds, by number. */
function openFds(): number[] {
  return fs.readdirSync('/proc/self/fd').map(Number).sort((a, b) => a - b);
}

/** `major:minor` of the char device behind `fd`. */
function devOf(fd: number): string {
  const rdev = fs.fstatSync(fd, { bigint: true }).rdev;
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
  return `${major}:${minor}`;
}

/** The flags field of `/proc/self/fdinfo/FD` (octal), to check close-on-exec. */
function fdFlags(fd: number): number {
  return parseInt(/flags:\s+([0-7]+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8);
}
const O_CLOEXEC = 0o2000000;

/** How many of this process's fds are queues of the test's macvtap (by st_rdev against sysfs's major:minor). */
function queuesHeld(tb: Testbed, ifindex: number): number {
  const dev = tb.host.exec('cat', [`/sys/class/net/mvt-vh/macvtap/tap${ifindex}/dev`]).trim();
  return openFds().filter((fd) => {
    try {
      return devOf(fd) === dev;
    } catch {
      return false;
    }
  }).length;
}

let tb: Testbed;
let ifindex = 0;
const open: TapQueue[] = [];
const rawFds: number[] = [];

afterAll(() => destroyAll());

describePrivileged('openTap({ vhost: true })', () => {
  beforeEach(async () => {
    tb = makeTestbed(31);
    ifindex = (await createMacvtap({ netns: tb.host.path, lower: tb.lower, name: 'mvt-vh', mode: 'bridge', up: true })).ifindex;
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((q) => q.close()));
    for (const fd of rawFds.splice(0)) fs.closeSync(fd);
    tb.destroy();
  });

  it('refuses a vhost option that is not a boolean, before opening anything', async () => {
    const before = openFds();
    await expect(openTap('mvt-vh', { netns: tb.host.path, vhost: 'yes' as unknown as boolean })).rejects.toMatchObject({
      name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: expect.stringMatching(/"vhost"/),
    });
    expect(openFds()).toEqual(before);
  });

  it(`without vhost-net: ENOENT naming vhost_net and CONFIG_VHOST_NET, and nothing left open${vhostPresent ? ` [SKIPPED: ${vhostPresent}]` : ''}`, async (ctx) => {
    if (vhostPresent) ctx.skip(vhostPresent);
    const fdsBefore = openFds();
    const ownedBefore = binding.ownedFds();
    // Several queues and several rounds: every tap queue opened before the refusal must be closed again.
    for (let round = 0; round < 20; round++) {
      const e = await rejection(openTap('mvt-vh', { netns: tb.host.path, queues: 4, vhost: true }));
      expect(e.code === 'ENOENT' || e.code === 'EOPNOTSUPP').toBe(true);
      expect(e.syscall).toBe('open');
      expect(e.path).toBe('/dev/vhost-net');
      expect(e.device).toBe('mvt-vh');
      expect(e.message).toMatch(/vhost_net/);
      expect(e.message).toMatch(/CONFIG_VHOST_NET/);
    }
    expect(openFds()).toEqual(fdsBefore);
    expect(binding.ownedFds()).toEqual(ownedBefore);
    expect(queuesHeld(tb, ifindex)).toBe(0);
    // The same queues open without vhost: the refusal left the device usable.
    const qs = await openTap('mvt-vh', { netns: tb.host.path, queues: 4 });
    open.push(...qs);
    expect(qs.map((q) => q.vhostFd)).toEqual([-1, -1, -1, -1]);
  });

  it(`opens one vhost-net fd per queue: the misc device, close-on-exec, VHOST_GET_FEATURES and VHOST_SET_OWNER answer${vhostMissing ? ` [SKIPPED: ${vhostMissing}]` : ''}`, async (ctx) => {
    if (vhostMissing) ctx.skip(vhostMissing);
    const vhostDev = fs.readFileSync('/sys/class/misc/vhost-net/dev', 'utf8').trim();
    const fdsBefore = openFds();
    const qs = await openTap('mvt-vh', { netns: tb.host.path, queues: 3, vhost: true, nonblock: true });
    open.push(...qs);
    const vfds = qs.map((q) => q.vhostFd);
    expect(new Set([...qs.map((q) => q.fd), ...vfds]).size).toBe(6);
    for (const fd of vfds) {
      expect(devOf(fd)).toBe(vhostDev);
      expect(fs.readlinkSync(`/proc/self/fd/${fd}`)).toBe('/dev/vhost-net');
      expect(fdFlags(fd) & O_CLOEXEC).toBe(O_CLOEXEC);
      // VIRTIO_NET_F_MRG_RXBUF (15) and VHOST_NET_F_VIRTIO_NET_HDR (27) are what vhost-net has offered since 2.6.33.
      const features = binding.vhostGetFeatures(fd);
      expect(features & (1n << 15n)).toBe(1n << 15n);
      expect(features & (1n << 27n)).toBe(1n << 27n);
    }
    // A tap fd is no vhost device: the ioctl is the kernel's own check that the two lists were not swapped.
    expect(() => binding.vhostGetFeatures(qs[0]!.fd)).toThrow(expect.objectContaining({ syscall: 'ioctl(VHOST_GET_FEATURES)' }));
    // The owner binds once; the second time the kernel says it is taken.
    binding.vhostSetOwner(vfds[0]!);
    expect(() => binding.vhostSetOwner(vfds[0]!)).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    expect(queuesHeld(tb, ifindex)).toBe(3);
    // close() ends both fds of each queue.
    await Promise.all(open.splice(0).map((q) => q.close()));
    expect(qs.map((q) => q.vhostFd)).toEqual([-1, -1, -1]);
    expect(openFds()).toEqual(fdsBefore);
  });

  it(`detach() hands the vhost fd away with its queue${vhostMissing ? ` [SKIPPED: ${vhostMissing}]` : ''}`, async (ctx) => {
    if (vhostMissing) ctx.skip(vhostMissing);
    const ownedBefore = binding.ownedFds();
    const [q] = await openTap('mvt-vh', { netns: tb.host.path, vhost: true });
    const vfd = q!.vhostFd;
    const fd = q!.detach();
    rawFds.push(fd, vfd);
    expect(q!.vhostFd).toBe(-1);
    expect(binding.ownedFds()).toEqual(ownedBefore);
    await q!.close(); // a no-op after detach
    expect(fs.readlinkSync(`/proc/self/fd/${vfd}`)).toBe('/dev/vhost-net');
    binding.vhostSetOwner(vfd);
  });

  it(`macvtap exec --vhost: the command inherits the queue and vhost fds, {vhostfds} substituted, nothing printed${vhostMissing ? ` [SKIPPED: ${vhostMissing}]` : ''}`, async (ctx) => {
    if (vhostMissing) ctx.skip(vhostMissing);
    const script = 'echo "T $1"; echo "V $2"; for f in $(echo "$1:$2" | tr ":" " "); do readlink /proc/self/fd/$f; done';
    const r = spawnSync(process.execPath, [cli, 'exec', '--netns', tb.host.name, '--dev', 'mvt-vh', '--queues', '2', '--vhost', '--', 'sh', '-c', script, 'sh', '{fds}', '{vhostfds}'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^T \d+:\d+$/);
    expect(lines[1]).toMatch(/^V \d+:\d+$/);
    expect(lines.slice(2)).toEqual([`/dev/tap${ifindex}`, `/dev/tap${ifindex}`, '/dev/vhost-net', '/dev/vhost-net']);
  });

  it('macvtap exec refuses {vhostfds} without --vhost, before opening anything', () => {
    const r = spawnSync(process.execPath, [cli, 'exec', '--netns', tb.host.name, '--dev', 'mvt-vh', '--', 'true', 'vhostfds={vhostfds}'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/need --vhost/);
  });

  const qemuMissing = vhostMissing ?? qemuUnavailable();
  it(`QEMU takes the fds: -netdev tap,fds=…,vhost=on,vhostfds=… starts, its vhost worker runs, and the fds are QEMU's${qemuMissing ? ` [SKIPPED: ${qemuMissing}]` : ''}`, async (ctx) => {
    if (qemuMissing) ctx.skip(qemuMissing);
    const qs = await openTap('mvt-vh', { netns: tb.host.path, queues: 2, vhost: true, nonblock: true });
    open.push(...qs);
    // Slots 3,4 the tap queues, 5,6 the vhost fds. No machine to boot: QEMU sets the netdev up (vhost_net_init:
    // VHOST_SET_OWNER, VHOST_GET_FEATURES on each vhostfd) before it would run anything, and -S keeps it there.
    const stdio = ['pipe', 'pipe', 'pipe', ...qs.map((q) => q.fd), ...qs.map((q) => q.vhostFd)] as const;
    const qemu = spawn(QEMU, [
      '-machine', 'none', '-accel', 'tcg', '-nodefaults', '-display', 'none', '-S', '-monitor', 'stdio',
      '-netdev', 'tap,id=n0,fds=3:4,vhost=on,vhostfds=5:6',
    ], { stdio: [...stdio] as never });
    let out = '';
    qemu.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    qemu.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((res) => qemu.on('exit', (code) => res(code)));
    try {
      // The monitor prompt is printed once every -netdev is set up (a vhost failure exits before it).
      const deadline = Date.now() + 60_000;
      while (!out.includes('(qemu)') && qemu.exitCode === null && Date.now() < deadline) await sleep(50);
      expect(out).toContain('(qemu)');
      // vhost_dev_set_owner started a worker for QEMU's mm: a kernel thread vhost-<pid> on 6.1.
      const workers = spawnSync('ps', ['-e', '-o', 'comm='], { encoding: 'utf8' }).stdout.split('\n').filter((c) => c === `vhost-${qemu.pid}`);
      expect(workers.length).toBeGreaterThanOrEqual(1);
      // Our copies are the same open files: their owner is set (QEMU's), so the kernel refuses us.
      for (const q of qs) expect(() => binding.vhostSetOwner(q.vhostFd)).toThrow(expect.objectContaining({ code: 'EBUSY' }));
      process.stdout.write(`QEMU with vhostfds: ${out.split('\n').filter((l) => l && !l.startsWith('(qemu)') && !l.startsWith('QEMU')).join(' | ') || 'accepted, no message'}\n`);
    } finally {
      if (qemu.exitCode === null && qemu.signalCode === null) process.kill(qemu.pid!, 'SIGKILL');
      await exited;
    }
  });
});
