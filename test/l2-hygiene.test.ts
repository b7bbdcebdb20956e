/**
 * L2 hygiene at create: `ipv6: false` (the host never puts a link-local address on the guest's macvtap, not even
 * briefly — watched with `ip -6 monitor address` against a control link that does get one), `allmulti` in the create
 * request, source mode's MAC list edited after create (add/del/set/flush, as `ip link set … type macvtap macaddr`)
 * and an empty list at create, and the refusal of a wireless lower device. Every result is read back with
 * `ip -d -j link show` or the namespace's own `/proc/sys/net/ipv6/conf/DEV/*`.
 *
 * This machine has no 802.11 device and no loadable mac80211_hwsim (no /sys/class/net/* /wireless or phy80211 exist),
 * so the wireless refusal is tested through the addon's test seam `MACVTAP_TEST_SYSFS_ROOT`: a fake sysfs tree where
 * the lower device `l0` has a `phy80211` link. The real path (the namespace's own sysfs, no seam) is exercised by
 * every other create here, which must not be refused.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { createHostShim, createMacvtap, getLink, MacvtapError, setLink } from '../lib/index.js';
import type { TestNetns } from '../bench/testbed/netns.js';
import { describePrivileged } from './helpers/suite.js';
import { vethHostFixture } from './helpers/hostns.js';

// Registered first, so its namespaces go after the undo steps below (after-hooks run in reverse order).
const { host } = vethHostFixture();
const undo: Array<() => void> = [];
afterEach(() => {
  for (const f of undo.splice(0).reverse()) f();
});

interface IpLinkDetail {
  flags: string[];
  allmulti?: number;
  inet6_addr_gen_mode?: string;
  linkinfo?: { info_kind: string; info_data?: { mode?: string; macaddr_count?: number; macaddr_data?: string[] } };
}
const ipLink = (ns: TestNetns, dev: string): IpLinkDetail => JSON.parse(ns.ip('-d', '-j', 'link', 'show', 'dev', dev))[0] as IpLinkDetail;
const sysctl = (ns: TestNetns, dev: string, key: string): string => ns.exec('cat', [`/proc/sys/net/ipv6/conf/${dev}/${key}`]).trim();
const addrs6 = (ns: TestNetns, dev: string): unknown[] =>
  (JSON.parse(ns.ip('-6', '-j', 'addr', 'show', 'dev', dev)) as Array<{ addr_info?: unknown[] }>)[0]?.addr_info ?? [];

describePrivileged('L2 hygiene at create', () => {
  test('ipv6: false — never a link-local, not even briefly (a control link gets one); sysctls and ip agree', async () => {
    const ns = host();
    // The monitor is the independent witness: every RTM_NEWADDR of the namespace, in kernel order.
    const mon = spawn('ip', ['-n', ns.name, '-6', 'monitor', 'address'], { stdio: ['ignore', 'pipe', 'pipe'] });
    undo.push(() => { if (mon.exitCode === null) mon.kill('SIGKILL'); });
    let out = '';
    let wake: (() => void) | null = null;
    mon.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; wake?.(); });
    // Resolves when the monitor's output matches; the bound is only for a failure (a loaded machine can take seconds
    // to start `ip`), never a wait in the passing case.
    const seen = (re: RegExp, what: string): Promise<void> => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`ip monitor never showed ${what} in 20 s; it printed:\n${out}`)), 20_000);
      const check = (): void => {
        if (re.test(out)) { clearTimeout(timer); wake = null; resolve(); } else wake = check;
      };
      check();
    });
    // `ip monitor` prints nothing when it has subscribed, so readiness is a handshake: add an address on lo until the
    // monitor shows one (an event from before its subscription is simply not seen; the next one is).
    for (let i = 1; i <= 400 && !/fd00::/.test(out); i++) {
      ns.ip('addr', 'add', `fd00::${i.toString(16)}/64`, 'dev', 'lo');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(out).toMatch(/fd00::/);

    const quiet = await createMacvtap({ lower: 'l0', name: 'mvq', up: true, ipv6: false, netns: ns.path });
    const control = await createMacvtap({ lower: 'l0', name: 'mvc', up: true, netns: ns.path });
    // Events come in kernel order: anything of mvq's (created first) would be printed before mvc's link-local.
    await seen(/mvc\s+inet6 fe80/, "the control link's link-local");
    mon.kill('SIGKILL');
    expect(out).toMatch(/mvc\s+inet6 fe80/); // the control got its link-local at up
    expect(out).not.toMatch(/mvq/); // ours never had any address, at any moment
    expect(quiet.up).toBe(true);
    expect(control.up).toBe(true);
    expect(ipLink(ns, 'mvq').flags).toContain('UP');
    expect(addrs6(ns, 'mvq')).toEqual([]);
    expect(sysctl(ns, 'mvq', 'disable_ipv6')).toBe('1');
    expect(sysctl(ns, 'mvq', 'addr_gen_mode')).toBe('1');
    expect(ipLink(ns, 'mvq').inet6_addr_gen_mode).toBe('none');
    expect(sysctl(ns, 'mvc', 'disable_ipv6')).toBe('0');
    expect(ipLink(ns, 'mvc').inet6_addr_gen_mode).toBe('eui64');
    // Down stays down: ipv6 false without up leaves the link down.
    const down = await createMacvtap({ lower: 'l0', name: 'mvd', ipv6: false, netns: ns.path });
    expect(down.up).toBe(false);
    expect(sysctl(ns, 'mvd', 'disable_ipv6')).toBe('1');
    await expect(createMacvtap({ lower: 'l0', ipv6: 'no' as never, netns: ns.path })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
  });

  test('allmulti at create is in the create request (ip shows ALLMULTI, counted once)', async () => {
    const ns = host();
    const info = await createMacvtap({ lower: 'l0', name: 'mva', allmulti: true, netns: ns.path });
    expect(info.flags & 0x200).toBe(0x200); // IFF_ALLMULTI
    expect(ipLink(ns, 'mva')).toMatchObject({ allmulti: 1, flags: expect.arrayContaining(['ALLMULTI']) });
    await setLink('mva', { allmulti: false }, { netns: ns.path });
    expect(ipLink(ns, 'mva').flags).not.toContain('ALLMULTI');
    const plain = await createMacvtap({ lower: 'l0', name: 'mvp', allmulti: false, netns: ns.path });
    expect(plain.flags & 0x200).toBe(0);
  });

  test('source mode: an empty list at create, then add/del/set/flush as `ip link set … macaddr` does', async () => {
    const ns = host();
    const [A, B, C, D] = ['02:00:00:00:0a:01', '02:00:00:00:0a:02', '02:00:00:00:0a:03', '02:00:00:00:0a:04'];
    const made = await createMacvtap({ lower: 'l0', name: 'mvs', mode: 'source', netns: ns.path });
    expect(made.macvlan).toMatchObject({ mode: 'source', sourceMacs: [] });
    const ipMacs = (): string[] => {
      const d = ipLink(ns, 'mvs').linkinfo!.info_data!;
      expect(d.macaddr_count ?? 0).toBe((d.macaddr_data ?? []).length);
      return [...(d.macaddr_data ?? [])].sort();
    };
    expect(ipMacs()).toEqual([]);
    await setLink('mvs', { sourceMacs: { add: A } }, { netns: ns.path });
    const after = await setLink('mvs', { sourceMacs: { add: B } }, { netns: ns.path });
    expect([...after!.macvlan!.sourceMacs].sort()).toEqual([A, B]);
    expect(ipMacs()).toEqual([A, B]);
    await setLink('mvs', { sourceMacs: { del: A } }, { netns: ns.path });
    expect(ipMacs()).toEqual([B]);
    await setLink('mvs', { sourceMacs: { set: [C, D] } }, { netns: ns.path });
    expect(ipMacs()).toEqual([C, D]);
    await setLink('mvs', { sourceMacs: { flush: true } }, { netns: ns.path });
    expect(ipMacs()).toEqual([]);
    await setLink('mvs', { sourceMacs: { set: [A] }, up: true }, { netns: ns.path });
    expect(ipMacs()).toEqual([A]);
    expect(ipLink(ns, 'mvs').flags).toContain('UP');
    await setLink('mvs', { sourceMacs: { set: [] } }, { netns: ns.path });
    expect(ipMacs()).toEqual([]);
    // An explicit empty list at create is the same as none.
    await createMacvtap({ lower: 'l0', name: 'mvs2', mode: 'source', sourceMacs: [], netns: ns.path });
    expect(ipLink(ns, 'mvs2').linkinfo!.info_data!.macaddr_count ?? 0).toBe(0);
    // The kernel treats adding a listed MAC and deleting an unlisted one as no-ops (no error), as ip does.
    await setLink('mvs', { sourceMacs: { add: C } }, { netns: ns.path });
    await setLink('mvs', { sourceMacs: { add: C } }, { netns: ns.path });
    await setLink('mvs', { sourceMacs: { del: D } }, { netns: ns.path });
    expect(ipMacs()).toEqual([C]);
  });

  test.each([
    [{ add: 'zz' }, 'ERR_INVALID_ARG_VALUE'],
    [{ add: '01:00:5e:00:00:01' }, 'ERR_INVALID_ARG_VALUE'], // multicast: not a source MAC
    [{ add: '02:00:00:00:00:01', del: '02:00:00:00:00:02' }, 'ERR_INVALID_ARG_VALUE'],
    [{}, 'ERR_INVALID_ARG_VALUE'],
    [{ flush: false }, 'ERR_INVALID_ARG_VALUE'],
    [{ set: '02:00:00:00:00:01' }, 'ERR_INVALID_ARG_VALUE'],
    [{ replace: [] }, 'ERR_INVALID_ARG_VALUE'],
    [['02:00:00:00:00:01'], 'ERR_INVALID_ARG_VALUE'],
  ])('sourceMacs %j is refused before the kernel (%s)', async (change, code) => {
    const ns = host();
    await createMacvtap({ lower: 'l0', name: 'mvs', mode: 'source', netns: ns.path });
    await expect(setLink('mvs', { sourceMacs: change as never }, { netns: ns.path })).rejects.toMatchObject({ code });
    expect(ipLink(ns, 'mvs').linkinfo!.info_data!.macaddr_count ?? 0).toBe(0);
  });

  test('sourceMacs on a link that is not in source mode is refused, naming its mode', async () => {
    const ns = host();
    await createMacvtap({ lower: 'l0', name: 'mvb', netns: ns.path });
    await expect(setLink('mvb', { sourceMacs: { flush: true } }, { netns: ns.path })).rejects.toThrow(/mode 'source'.*mode 'bridge'/);
    await expect(setLink('l0', { sourceMacs: { flush: true } }, { netns: ns.path })).rejects.toThrow(/is veth/);
  });

  test('a wireless lower is refused with EOPNOTSUPP and nothing is created (fake sysfs via the test seam)', async () => {
    const ns = host();
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mvt-sysfs-'));
    undo.push(() => fs.rmSync(root, { recursive: true, force: true }));
    fs.mkdirSync(path.join(root, 'class/net/l0'), { recursive: true });
    fs.symlinkSync('../../../devices/virtual/ieee80211/phy0', path.join(root, 'class/net/l0/phy80211'));
    fs.mkdirSync(path.join(root, 'class/net/l1/wireless'), { recursive: true });
    process.env.MACVTAP_TEST_SYSFS_ROOT = root;
    undo.push(() => { delete process.env.MACVTAP_TEST_SYSFS_ROOT; });
    const before = ns.ipLinks().length;
    for (const lower of ['l0', 'l1']) {
      const e = await createMacvtap({ lower, name: 'mvw', netns: ns.path }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(MacvtapError);
      expect(e).toMatchObject({ code: 'EOPNOTSUPP', syscall: 'RTM_NEWLINK', device: lower });
      expect((e as Error).message).toMatch(/wireless \(802\.11\)/);
    }
    // By ifindex too, and for the host shim.
    const idx = (await getLink('l0', { netns: ns.path })).ifindex;
    await expect(createMacvtap({ lower: idx, name: 'mvw', netns: ns.path })).rejects.toMatchObject({ code: 'EOPNOTSUPP' });
    await expect(createHostShim({ lower: 'l0', addresses: ['10.9.0.1/24'], netns: ns.path })).rejects.toMatchObject({ code: 'EOPNOTSUPP' });
    expect(ns.ipLinks().length).toBe(before);
    // The same lower with the seam's tree showing it as wired is accepted.
    fs.rmSync(path.join(root, 'class/net/l0/phy80211'));
    await createMacvtap({ lower: 'l0', name: 'mvw', netns: ns.path });
    expect(ipLink(ns, 'mvw').linkinfo!.info_kind).toBe('macvtap');
  });
});
