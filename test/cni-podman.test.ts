/**
 * `macvtap-cni` under a real container engine: Debian's podman 4.3.1 (libcni 1.1.2, the `cni` network backend) runs a
 * `busybox-static` container on a network whose conflist chains our plugin with the reference `tuning` plugin. The
 * container sees the macvtap as `eth0` with the configured MAC and MTU, reaches a peer on the lower device, and
 * `podman run --rm` removes everything again (checked with `ip -d -j` in the host namespace and podman's own files).
 */
import { readdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, expect, test } from 'vitest';
import { destroyAll, TestNetns } from '../bench/testbed/netns.js';
import { CNI_BIN, PLUGIN, referencePluginsMissing } from './helpers/cni.js';
import { PodmanSandbox, podmanMissing } from './helpers/podman.js';
import { describeNeeding } from './helpers/suite.js';

const undo: Array<() => void> = [];
afterEach(() => {
  for (const step of undo.splice(0).reverse()) step();
});
afterAll(() => destroyAll());

interface Setup { host: TestNetns; peer: TestNetns; pod: PodmanSandbox; net: string; stateDir: string }

/** host: l0 (the master) ↔ l1 in `peer` (10.77.0.1/24); a private podman seeing only our plugins. */
function setup(): Setup {
  const host = TestNetns.create();
  const peer = TestNetns.create();
  undo.push(() => host.destroy(), () => peer.destroy());
  host.veth('l0', 'l1', peer);
  peer.ip('addr', 'add', '10.77.0.1/24', 'dev', 'l1');
  const pod = new PodmanSandbox({ 'macvtap-cni': PLUGIN, tuning: `${CNI_BIN}/tuning`, static: `${CNI_BIN}/static`, 'host-local': `${CNI_BIN}/host-local` });
  undo.push(() => pod.destroy(host.path));
  // The plugin's attachment records (IPAM configs), here instead of /var/lib/cni/macvtap-cni.
  const stateDir = mkdtempSync(join(tmpdir(), 'mvt-cni-state-'));
  undo.push(() => rmSync(stateDir, { recursive: true, force: true }));
  return { host, peer, pod, net: `mvt-cni-${process.pid}`, stateDir };
}

const names = (ns: TestNetns): string[] => ns.ipLinks().map((l) => l.ifname).sort();

/** The container's view: eth0's address, MTU, kind (its macvtap directory), addresses, the tuning sysctl, a ping. */
const PROBE = [
  'cat /sys/class/net/eth0/address /sys/class/net/eth0/mtu /proc/sys/net/ipv4/conf/eth0/log_martians',
  'ls /sys/class/net/eth0/macvtap', 'ip -4 -o addr show dev eth0', 'ping -c 2 -W 2 10.77.0.1',
].join(' && ');

describeNeeding('macvtap-cni under podman', podmanMissing() ?? referencePluginsMissing(), () => {
  test('a container on macvtap-cni + tuning sees eth0 with our MAC and MTU and pings a peer; --rm leaves nothing', () => {
    const { host, peer, pod, net, stateDir } = setup();
    pod.network(net, [
      { type: 'macvtap-cni', master: 'l0', stateDir, mtu: 1400, mac: '02:00:00:00:00:44', ipam: { type: 'static', addresses: [{ address: '10.77.0.2/24' }] } },
      { type: 'tuning', sysctl: { 'net.ipv4.conf.eth0.log_martians': '1' } },
    ]);
    const r = pod.podman(host.path, ['run', '--rm', '--network', net, '--cap-add', 'NET_RAW', '--rootfs', pod.rootfs, '/bin/sh', '-c', PROBE]);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines.slice(0, 3)).toEqual(['02:00:00:00:00:44', '1400', '1']);
    expect(lines[3]).toMatch(/^tap\d+$/);
    expect(lines[4]).toMatch(/eth0\s+inet 10\.77\.0\.2\/24 /);
    expect(r.stdout).toMatch(/2 packets transmitted, 2 packets received/);
    expect(JSON.parse(peer.ip('-j', 'neigh', 'show', 'dev', 'l1', '10.77.0.2'))[0]?.lladdr).toBe('02:00:00:00:00:44');
    // DEL ran: nothing of ours in the host, podman's namespace and libcni's cached result are gone.
    expect(names(host)).toEqual(['l0', 'lo']);
    expect(host.ipLinks().filter((l) => (l as { linkinfo?: { info_kind?: string } }).linkinfo?.info_kind === 'macvtap')).toEqual([]);
    expect(pod.newNetns()).toEqual([]);
    expect(pod.cachedResults()).toEqual([]);
    expect(readdirSync(join(stateDir, net))).toEqual([]); // ADD made the network's record directory, DEL emptied it
  });

  test('with host-local IPAM the address is assigned from the range and released when the container goes', () => {
    const { host, pod, net, stateDir } = setup();
    const dataDir = mkdtempSync(join(tmpdir(), 'mvt-cni-ipam-'));
    undo.push(() => rmSync(dataDir, { recursive: true, force: true }));
    pod.network(net, [
      { type: 'macvtap-cni', master: 'l0', stateDir, ipam: { type: 'host-local', subnet: '10.77.0.0/24', rangeStart: '10.77.0.90', rangeEnd: '10.77.0.99', dataDir } },
      { type: 'tuning', sysctl: { 'net.ipv4.conf.eth0.log_martians': '1' } },
    ]);
    // While the container runs, host-local's allocation file exists (the container lists it through a bind mount).
    const r = pod.podman(host.path, ['run', '--rm', '--network', net, '--cap-add', 'NET_RAW', '-v', `${dataDir}:/ipam:ro`, '--rootfs', pod.rootfs,
      '/bin/sh', '-c', `${PROBE} && ls /ipam/${net}`]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/eth0\s+inet 10\.77\.0\.90\/24 /);
    expect(r.stdout.split('\n')).toContain('10.77.0.90');
    expect(readdirSync(join(dataDir, net))).not.toContain('10.77.0.90');
    expect(names(host)).toEqual(['l0', 'lo']);
    expect(pod.newNetns()).toEqual([]);
    expect(pod.cachedResults()).toEqual([]);
    expect(readdirSync(join(stateDir, net))).toEqual([]); // ADD made the network's record directory, DEL emptied it
  });
});
