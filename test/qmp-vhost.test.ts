/**
 * `attachMacvtap(…, { vhost: true })` on both kernels, against a real QEMU (a paused `pc` machine: `netdev_add` and
 * `device_add` need no guest):
 * - this host has no vhost-net: refused with `ENOENT` naming `vhost_net` before anything reaches QEMU — QEMU's fd
 *   table and ours unchanged;
 * - in the 6.1 VM (`npm run test:kernel -- test/qmp-vhost.test.ts`), where `vhost_net` loads: QEMU takes the queue and
 *   vhost-net fds over `getfd` (its `/proc/PID/fd` gains both kinds), and a `device_add` that fails undoes it all.
 * Each case skips on the other kernel with the reason printed.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { attachMacvtap, connectQmp, createMacvtap, type LinkInfo, type QmpClient } from '../lib/index.js';
import { binding } from '../lib/binding.js';
import { destroyAll, makeTestbed } from '../bench/testbed/netns.js';
import { countDeviceFds, qemuUnavailable } from '../bench/testbed/qemu.js';
import { cleanupStack, describeNeeding, isRoot } from './helpers/suite.js';
import { fdTable, qmpQemu } from './helpers/qemu.js';

const defer = cleanupStack();
afterAll(() => destroyAll());

/** Whether this kernel offers vhost-net, seen without the code under test (opening loads the module where it is one). */
const vhostMissing: string | null = (() => {
  if (!isRoot) return 'not root';
  try {
    fs.closeSync(fs.openSync('/dev/vhost-net', 'r+'));
  } catch (e) {
    return `this kernel has no vhost-net (${(e as NodeJS.ErrnoException).code} opening /dev/vhost-net)`;
  }
  return null;
})();

async function pausedQemu(): Promise<{ pid: number; qmp: QmpClient; sock: string }> {
  const { pid, sock } = await qmpQemu(defer, { machine: 'pc', paused: true });
  const qmp = await connectQmp(sock);
  defer(() => qmp.close());
  return { pid, qmp, sock };
}

async function macvtap(subnet: number): Promise<{ link: LinkInfo; netns: string }> {
  const tb = makeTestbed(subnet);
  defer(() => tb.destroy());
  return { link: await createMacvtap({ lower: tb.lower, name: 'mvtap0', up: true, netns: tb.host.path }), netns: tb.host.path };
}

const ownedCount = (link: LinkInfo): { device: number; owned: number[] } => ({ device: countDeviceFds(process.pid, link.tap!.major, link.tap!.minor), owned: binding.ownedFds() });

const vhostPresent: string | null = vhostMissing === null ? 'this kernel has vhost-net (the refusal runs where it has not)' : null;

describeNeeding('attachMacvtap with vhost', qemuUnavailable(), () => {
  it(`kernel without vhost-net: refused with ENOENT naming vhost_net before anything reaches QEMU${vhostPresent ? ` [SKIPPED: ${vhostPresent}]` : ''}`, async (ctx) => {
    if (vhostPresent) ctx.skip(vhostPresent);
    const { pid, qmp, sock } = await pausedQemu();
    const { link, netns } = await macvtap(74);
    const before = fdTable(pid);
    const mine = ownedCount(link);
    await expect(attachMacvtap(qmp, link.name, { id: 'hv', queues: 2, vhost: true, netns })).rejects.toMatchObject({
      name: 'MacvtapError', code: expect.stringMatching(/^(ENOENT|EOPNOTSUPP)$/), message: expect.stringMatching(/vhost_net/),
    });
    expect(fdTable(pid)).toEqual(before);
    expect(ownedCount(link)).toEqual(mine);
    expect(await qmp.execute('qom-list', { path: '/machine/peripheral' })).not.toContainEqual(expect.objectContaining({ name: 'hv' }));
    // The CLI says the same (QEMU serves one QMP client: ours steps aside).
    await qmp.close();
    const cli = resolve(import.meta.dirname, '..', 'dist', 'cli', 'macvtap.js');
    const r = spawnSync(process.execPath, [cli, 'qmp', 'attach', '--socket', sock, '--dev', link.name, '--netns', netns, '--vhost'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^macvtap: .*vhost_net/);
    // Everything as before but our QMP connection's socket, gone with our client.
    const files = (t: string[]): string[] => t.filter((l) => !/->socket:/.test(l));
    expect(files(fdTable(pid))).toEqual(files(before));
    expect(fdTable(pid).length).toBe(before.length - 1);
  });

  it(`kernel with vhost-net: QEMU takes the queue and vhost-net fds; a failing device_add undoes everything${vhostMissing ? ` [SKIPPED: ${vhostMissing}]` : ''}`, async (ctx) => {
    if (vhostMissing) ctx.skip(vhostMissing);
    const { pid, qmp } = await pausedQemu();
    const { link, netns } = await macvtap(75);
    const before = fdTable(pid);
    const mine = ownedCount(link);
    const vhostFds = (): number => fdTable(pid).filter((l) => l.endsWith('->/dev/vhost-net')).length;

    await expect(attachMacvtap(qmp, link.name, { id: 'hv', queues: 2, vhost: true, netns, bus: 'nope' })).rejects.toMatchObject({ name: 'QmpError', command: 'device_add' });
    expect(fdTable(pid)).toEqual(before);
    expect(ownedCount(link)).toEqual(mine);

    const nic = await attachMacvtap(qmp, link.name, { id: 'hv', queues: 2, vhost: true, netns });
    expect(nic).toMatchObject({ deviceId: 'hv', queues: 2, vhost: true, mac: link.mac });
    expect(countDeviceFds(pid, link.tap!.major, link.tap!.minor)).toBe(2);
    expect(vhostFds()).toBe(2);
    expect(ownedCount(link)).toEqual(mine);
    expect(String(await qmp.execute('human-monitor-command', { 'command-line': 'info network' }))).toMatch(/hv-tap: index=\d+,type=tap/);
  });
});
