/**
 * Errors: every bad-input row is refused with the right `TypeError`/`RangeError` (Node's `code`, the option named in
 * the message) before the kernel is touched — the namespace's links are identical before and after — and kernel
 * refusals come back as `MacvtapError` with `code`, negative `errno`, `syscall` and the extended ack when the kernel
 * sent one (cross-checked against what `ip` prints for the same request). Without `CAP_NET_ADMIN` → `EPERM` saying so.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  createMacvtap, createVlan, deleteGroup, deleteLink, getLink, listLinks, MacvtapError, openTap, setLink,
} from '../lib/index.js';
import { describePrivileged } from './helpers/suite.js';
import { destroyAll, TestNetns } from '../bench/testbed/netns.js';
import { settleLinks } from './helpers/settle.js';

const DIST = fileURLToPath(new URL('../dist/lib/index.js', import.meta.url));

/** The error a promise rejects with (or a sync throw); fails the test when it resolves. */
async function rejection(f: () => Promise<unknown>): Promise<Error & { code?: string } & Partial<MacvtapError>> {
  try {
    await f();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected the call to reject, but it resolved');
}

/**
 * Everything about the namespace's links that a stray request could change, read once the kernel's link watcher has
 * run for them (the flags include NO-CARRIER/LOWER_UP, which it moves a while after a link is made or set up).
 */
async function snapshot(ns: TestNetns): Promise<string> {
  return JSON.stringify(
    (await settleLinks(ns)).map((l) => [l.ifindex, l.ifname, l.flags, l.mtu, l.address, l.group, l.txqlen, l.ifalias, l.linkinfo?.info_kind]),
  );
}

type Code = 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE' | 'ERR_OUT_OF_RANGE';

interface Row {
  what: string;
  call: (ns: string) => Promise<unknown>;
  /** Acceptable codes; the error class follows from the code (Node: OUT_OF_RANGE is a RangeError, the rest TypeError). */
  codes: Code[];
  /** The option the message must name. */
  option: string;
}

const L = 'mvt-l0';
const T = 'mvt-t0'; // an existing macvtap for setLink/openTap rows
const VALUE: Code[] = ['ERR_INVALID_ARG_VALUE'];
const RANGE: Code[] = ['ERR_OUT_OF_RANGE'];
const TYPE: Code[] = ['ERR_INVALID_ARG_TYPE'];
const LEN: Code[] = ['ERR_OUT_OF_RANGE', 'ERR_INVALID_ARG_VALUE'];

const rows: Row[] = [
  // Names.
  { what: 'empty name', call: (n) => createMacvtap({ lower: L, name: '', netns: n }), codes: VALUE, option: 'name' },
  { what: '16-byte name', call: (n) => createMacvtap({ lower: L, name: 'a'.repeat(16), netns: n }), codes: LEN, option: 'name' },
  { what: '16-byte UTF-8 name of 8 characters', call: (n) => createMacvtap({ lower: L, name: 'é'.repeat(8), netns: n }), codes: LEN, option: 'name' },
  { what: 'name with /', call: (n) => createMacvtap({ lower: L, name: 'mvt/x', netns: n }), codes: VALUE, option: 'name' },
  { what: 'name with a space', call: (n) => createMacvtap({ lower: L, name: 'mvt x', netns: n }), codes: VALUE, option: 'name' },
  { what: 'name with a tab', call: (n) => createMacvtap({ lower: L, name: 'mvt\tx', netns: n }), codes: VALUE, option: 'name' },
  { what: 'name "."', call: (n) => createMacvtap({ lower: L, name: '.', netns: n }), codes: VALUE, option: 'name' },
  { what: 'name ".."', call: (n) => createMacvtap({ lower: L, name: '..', netns: n }), codes: VALUE, option: 'name' },
  { what: 'template with two %d', call: (n) => createMacvtap({ lower: L, name: 'm%d%d', netns: n }), codes: VALUE, option: 'name' },
  { what: 'name not a string', call: (n) => createMacvtap({ lower: L, name: 7 as unknown as string, netns: n }), codes: TYPE, option: 'name' },
  { what: 'setLink rename to a template', call: (n) => setLink(T, { name: 'mvt%d' }, { netns: n }), codes: VALUE, option: 'name' },
  { what: 'setLink rename to "."', call: (n) => setLink(T, { name: '.' }, { netns: n }), codes: VALUE, option: 'name' },
  { what: 'setLink rename to 16 bytes', call: (n) => setLink(T, { name: 'b'.repeat(16) }, { netns: n }), codes: LEN, option: 'name' },
  { what: 'lower name with /', call: (n) => createMacvtap({ lower: 'a/b', netns: n }), codes: VALUE, option: 'lower' },
  { what: 'getLink of an empty name', call: (n) => getLink('', { netns: n }), codes: VALUE, option: 'link' },
  // MACs.
  { what: 'MAC of 5 octets', call: (n) => createMacvtap({ lower: L, mac: '02:00:00:00:01', netns: n }), codes: VALUE, option: 'mac' },
  { what: 'MAC of 7 octets', call: (n) => createMacvtap({ lower: L, mac: '02:00:00:00:00:01:02', netns: n }), codes: VALUE, option: 'mac' },
  { what: 'multicast MAC', call: (n) => createMacvtap({ lower: L, mac: '01:00:5e:00:00:01', netns: n }), codes: VALUE, option: 'mac' },
  { what: 'broadcast MAC', call: (n) => createMacvtap({ lower: L, mac: 'ff:ff:ff:ff:ff:ff', netns: n }), codes: VALUE, option: 'mac' },
  { what: 'all-zero MAC', call: (n) => createMacvtap({ lower: L, mac: '00:00:00:00:00:00', netns: n }), codes: VALUE, option: 'mac' },
  { what: 'garbage MAC', call: (n) => createMacvtap({ lower: L, mac: 'zz:zz:zz:zz:zz:zz', netns: n }), codes: VALUE, option: 'mac' },
  { what: 'MAC not a string', call: (n) => createMacvtap({ lower: L, mac: 42 as unknown as string, netns: n }), codes: TYPE, option: 'mac' },
  { what: 'setLink multicast MAC', call: (n) => setLink(T, { mac: '03:00:00:00:00:01' }, { netns: n }), codes: VALUE, option: 'mac' },
  { what: 'garbage source MAC', call: (n) => createMacvtap({ lower: L, mode: 'source', sourceMacs: ['nope'], netns: n }), codes: VALUE, option: 'sourceMacs' },
  // Modes.
  { what: 'unknown mode', call: (n) => createMacvtap({ lower: L, mode: 'hub' as 'bridge', netns: n }), codes: VALUE, option: 'mode' },
  { what: 'mode in the wrong case', call: (n) => createMacvtap({ lower: L, mode: 'Bridge' as 'bridge', netns: n }), codes: VALUE, option: 'mode' },
  { what: 'mode not a string', call: (n) => createMacvtap({ lower: L, mode: 4 as unknown as 'bridge', netns: n }), codes: [...VALUE, ...TYPE], option: 'mode' },
  { what: 'sourceMacs without source mode', call: (n) => createMacvtap({ lower: L, mode: 'bridge', sourceMacs: ['02:00:00:00:00:01'], netns: n }), codes: VALUE, option: 'sourceMacs' },
  // (source mode without sourceMacs is allowed: an empty list, as `ip link add … mode source` makes; see l2-hygiene.test.ts)
  { what: 'sourceMacs not an array', call: (n) => createMacvtap({ lower: L, mode: 'source', sourceMacs: '02:00:00:00:00:01' as never, netns: n }), codes: VALUE, option: 'sourceMacs' },
  { what: 'nopromisc outside passthru', call: (n) => createMacvtap({ lower: L, mode: 'bridge', nopromisc: true, netns: n }), codes: VALUE, option: 'nopromisc' },
  // MTU.
  { what: 'MTU 67', call: (n) => createMacvtap({ lower: L, mtu: 67, netns: n }), codes: RANGE, option: 'mtu' },
  { what: 'MTU 65536', call: (n) => createMacvtap({ lower: L, mtu: 65536, netns: n }), codes: RANGE, option: 'mtu' },
  { what: 'MTU 1500.5', call: (n) => createMacvtap({ lower: L, mtu: 1500.5, netns: n }), codes: RANGE, option: 'mtu' },
  { what: 'MTU as a string', call: (n) => createMacvtap({ lower: L, mtu: '1500' as unknown as number, netns: n }), codes: TYPE, option: 'mtu' },
  { what: 'setLink MTU 0', call: (n) => setLink(T, { mtu: 0 }, { netns: n }), codes: RANGE, option: 'mtu' },
  // Queue count.
  { what: '0 queues', call: (n) => openTap(T, { queues: 0, netns: n }), codes: RANGE, option: 'queues' },
  { what: '257 queues', call: (n) => openTap(T, { queues: 257, netns: n }), codes: RANGE, option: 'queues' },
  { what: '1.5 queues', call: (n) => openTap(T, { queues: 1.5, netns: n }), codes: RANGE, option: 'queues' },
  { what: 'vnetHdrSize 9', call: (n) => openTap(T, { vnetHdrSize: 9, netns: n }), codes: RANGE, option: 'vnetHdrSize' },
  // ifindex.
  { what: 'ifindex 0', call: (n) => createMacvtap({ lower: L, ifindex: 0, netns: n }), codes: RANGE, option: 'ifindex' },
  { what: 'ifindex -1', call: (n) => createMacvtap({ lower: L, ifindex: -1, netns: n }), codes: RANGE, option: 'ifindex' },
  { what: 'ifindex 2^31', call: (n) => createMacvtap({ lower: L, ifindex: 2 ** 31, netns: n }), codes: RANGE, option: 'ifindex' },
  { what: 'getLink(0)', call: (n) => getLink(0, { netns: n }), codes: RANGE, option: 'link' },
  { what: 'getLink(-3)', call: (n) => getLink(-3, { netns: n }), codes: RANGE, option: 'link' },
  { what: 'getLink(2^31)', call: (n) => getLink(2 ** 31, { netns: n }), codes: RANGE, option: 'link' },
  { what: 'lower ifindex 0', call: (n) => createMacvtap({ lower: 0, netns: n }), codes: RANGE, option: 'lower' },
  { what: 'deleteLink(-1)', call: (n) => deleteLink(-1, { netns: n }), codes: RANGE, option: 'link' },
  // Group.
  { what: 'group -1', call: (n) => createMacvtap({ lower: L, group: -1, netns: n }), codes: RANGE, option: 'group' },
  { what: 'group 2^32', call: (n) => createMacvtap({ lower: L, group: 2 ** 32, netns: n }), codes: RANGE, option: 'group' },
  { what: 'setLink group -1', call: (n) => setLink(T, { group: -1 }, { netns: n }), codes: RANGE, option: 'group' },
  { what: 'deleteGroup(-1)', call: (n) => deleteGroup(-1, { netns: n }), codes: RANGE, option: 'group' },
  { what: 'deleteGroup(2^32)', call: (n) => deleteGroup(2 ** 32, { netns: n }), codes: RANGE, option: 'group' },
  // Other shapes.
  { what: 'txqlen -1', call: (n) => createMacvtap({ lower: L, txqlen: -1, netns: n }), codes: RANGE, option: 'txqlen' },
  { what: 'alias of 256 bytes', call: (n) => createMacvtap({ lower: L, alias: 'x'.repeat(256), netns: n }), codes: LEN, option: 'alias' },
  { what: 'unknown option', call: (n) => createMacvtap({ lower: L, nmae: 'typo', netns: n } as never), codes: VALUE, option: 'options.nmae' },
  { what: 'missing lower', call: (n) => createMacvtap({ netns: n } as never), codes: [...VALUE, ...TYPE], option: 'lower' },
  { what: 'relative netns path', call: () => listLinks({ netns: 'run/netns/x' }), codes: VALUE, option: 'netns' },
  { what: 'listLinks kind with a space', call: (n) => listLinks({ kind: 'mac vtap', netns: n }), codes: VALUE, option: 'kind' },
  { what: 'VLAN id 4095', call: (n) => createVlan({ lower: L, id: 4095, netns: n }), codes: RANGE, option: 'id' },
];

describePrivileged('errors', () => {
  let ns: TestNetns;

  beforeAll(() => {
    ns = TestNetns.create();
    ns.veth(L, 'mvt-p0');
    ns.ip('link', 'add', 'link', L, 'name', T, 'type', 'macvtap', 'mode', 'bridge');
  });
  afterAll(() => {
    ns?.destroy();
    destroyAll();
  });

  it.each(rows)('bad input: $what → $codes naming "$option", host untouched', async (row) => {
    const before = await snapshot(ns);
    const err = await rejection(() => row.call(ns.path));
    expect(err).not.toBeInstanceOf(MacvtapError);
    expect(row.codes).toContain(err.code);
    expect(err).toBeInstanceOf(err.code === 'ERR_OUT_OF_RANGE' ? RangeError : TypeError);
    expect(err.message).toContain(`"${row.option}`);
    expect(await snapshot(ns)).toBe(before);
  });

  it('EEXIST on a duplicate name: code, negative errno, syscall, no extack (ip gets none either)', async () => {
    await createMacvtap({ lower: L, name: 'mvt-dup', netns: ns.path });
    const before = await snapshot(ns);
    const err = await rejection(() => createMacvtap({ lower: L, name: 'mvt-dup', netns: ns.path }));
    expect(err).toBeInstanceOf(MacvtapError);
    expect(err.code).toBe('EEXIST');
    expect(err.errno).toBe(-17);
    expect(err.syscall).toBe('RTM_NEWLINK');
    expect(err.stack).toContain('errors.test.ts'); // the caller's stack, not the event loop's
    const ip = spawnSync('ip', ['-n', ns.name, 'link', 'add', 'link', L, 'name', 'mvt-dup', 'type', 'macvtap'], { encoding: 'utf8' });
    expect(ip.stderr).toMatch(/RTNETLINK answers: File exists/);
    expect(err.extack).toBeUndefined();
    expect(await snapshot(ns)).toBe(before);
    await deleteLink('mvt-dup', { netns: ns.path });
  });

  it('an ifindex already taken in the namespace is refused (this kernel: EEXIST, as ip reports; older: EBUSY)', async () => {
    const taken = ns.ipLink(T).ifindex;
    const ip = spawnSync('ip', ['-n', ns.name, 'link', 'add', 'link', L, 'index', String(taken), 'name', 'mvt-ix', 'type', 'macvtap'], { encoding: 'utf8' });
    expect(ip.status).not.toBe(0);
    const before = await snapshot(ns);
    const err = await rejection(() => createMacvtap({ lower: L, name: 'mvt-ix', ifindex: taken, netns: ns.path }));
    expect(err).toBeInstanceOf(MacvtapError);
    expect(['EEXIST', 'EBUSY']).toContain(err.code);
    expect(err.syscall).toBe('RTM_NEWLINK');
    // Same verdict as ip's: "File exists" ↔ EEXIST, "Device or resource busy" ↔ EBUSY.
    expect(ip.stderr).toContain(err.code === 'EEXIST' ? 'File exists' : 'Device or resource busy');
    expect(await snapshot(ns)).toBe(before);
  });

  it('ENODEV on a missing lower (by ifindex: the kernel refuses RTM_NEWLINK; by name: the lookup fails)', async () => {
    const before = await snapshot(ns);
    const err = await rejection(() => createMacvtap({ lower: 99_999, name: 'mvt-nl', netns: ns.path }));
    expect(err).toBeInstanceOf(MacvtapError);
    expect(err.code).toBe('ENODEV');
    expect(err.errno).toBe(-19);
    expect(err.syscall).toBe('RTM_NEWLINK');

    const err2 = await rejection(() => createMacvtap({ lower: 'mvt-nolower', name: 'mvt-nl', netns: ns.path }));
    expect(err2).toBeInstanceOf(MacvtapError);
    expect(err2.code).toBe('ENODEV');
    expect(err2.errno).toBe(-19);
    expect(err2.syscall).toMatch(/^RTM_(GET|NEW)LINK$/);
    expect(await snapshot(ns)).toBe(before);
  });

  it('moving lo is refused EINVAL with the kernel\'s extended ack when it sends one (6.18: "The interface netns is immutable"; 6.1 sends none)', async () => {
    const other = TestNetns.create();
    try {
      const ip = spawnSync('ip', ['-n', ns.name, 'link', 'set', 'lo', 'netns', other.name], { encoding: 'utf8' });
      // Kernels differ: 6.18 explains the refusal in an extack, Debian's 6.1 (test/vm) answers a bare EINVAL.
      const m = /^Error: (.*?)\.?$/m.exec(ip.stderr);
      if (m === null) expect(ip.stderr).toMatch(/RTNETLINK answers: Invalid argument/);
      const before = await snapshot(ns);
      const err = await rejection(() => setLink('lo', { moveToNetns: other.path }, { netns: ns.path }));
      expect(err).toBeInstanceOf(MacvtapError);
      expect(err.code).toBe('EINVAL');
      expect(err.errno).toBe(-22);
      expect(err.syscall).toMatch(/^RTM_(NEW|SET)LINK$/);
      if (m) {
        expect(err.extack?.replace(/\.$/, '')).toBe(m[1]);
        expect(err.message).toContain(m[1]);
      } else {
        expect(err.extack).toBeUndefined();
      }
      expect(await snapshot(ns)).toBe(before);
    } finally {
      other.destroy();
    }
  });

  it('openTap on a link that is not a macvtap is refused by the kernel or the library, never opens anything', async () => {
    const err = await rejection(() => openTap(L, { netns: ns.path }));
    expect(err).toBeInstanceOf(MacvtapError);
    expect(['EINVAL', 'ENODEV', 'ENOTTY', 'ENOENT']).toContain(err.code);
    expect(err.errno).toBeLessThan(0);
  });

  it('without CAP_NET_ADMIN: EPERM whose message says CAP_NET_ADMIN is needed', async (ctx) => {
    if (!existsSync(DIST)) {
      ctx.skip(`needs the compiled library ${DIST} (npm run build:ts; the pretest script builds it)`);
      return;
    }
    // A child in the namespace, dropped to nobody with no capabilities: reading links works, creating one must not.
    const script = `
      import { createMacvtap, getLink } from ${JSON.stringify(DIST)};
      const lower = await getLink('${L}');
      try { await createMacvtap({ lower: '${L}', name: 'mvt-eperm' }); console.log(JSON.stringify({ created: true })); }
      catch (e) { console.log(JSON.stringify({ lower: lower.name, name: e.name, code: e.code, errno: e.errno, syscall: e.syscall, message: e.message })); }
    `;
    const before = await snapshot(ns);
    const r = spawnSync('ip', ['netns', 'exec', ns.name, 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups',
      '--inh-caps=-all', process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    expect(out.lower).toBe(L);
    expect(out.created).toBeUndefined();
    expect(out.name).toBe('MacvtapError');
    expect(out.code).toBe('EPERM');
    expect(out.errno).toBe(-1);
    expect(out.syscall).toBe('RTM_NEWLINK');
    expect(out.message).toMatch(/CAP_NET_ADMIN/);
    expect(await snapshot(ns)).toBe(before);
  });
});
