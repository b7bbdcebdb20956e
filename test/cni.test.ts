/**
 * `macvtap-cni` driven as a runtime drives it: one process per verb, `CNI_*` in the environment, the config on stdin,
 * run in a test namespace standing for the runtime's ("host") namespace, with a second one as the sandbox. Every
 * outcome is checked with `ip -d -j` (and the sandbox's own sysctl and sysfs files), every refused input also for
 * having created nothing. Debian's reference plugins (host-local, static, macvlan) are the IPAM delegates and the
 * comparison.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, afterEach, expect, test } from 'vitest';
import { destroyAll, TestNetns } from '../bench/testbed/netns.js';
import { buildArp, parseFrame, vnetHdr } from '../bench/testbed/frames.js';
import { CNI_BIN, type CniVars, PLUGIN, referencePluginsMissing, runPlugin } from './helpers/cni.js';
import { nftUnavailable } from './helpers/nft.js';
import { describeNeeding } from './helpers/suite.js';

const spaces: TestNetns[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const s of spaces.splice(0)) s.destroy();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  stateDir = '';
});
afterAll(() => destroyAll());

interface Fixture {
  host: TestNetns;
  sandbox: TestNetns;
  peer: TestNetns;
  vars: (over?: CniVars) => CniVars;
}

/** This test's `stateDir` (the plugin's attachment records), made by {@link fixture}; `conf()` puts it in every config. */
let stateDir = '';

/** host: l0 (the master) ↔ l1 in `peer` (10.77.0.1/24); an empty sandbox; a fresh state directory. */
function fixture(): Fixture {
  stateDir = mkdtempSync(join(tmpdir(), 'mvt-cni-state-'));
  dirs.push(stateDir);
  const host = TestNetns.create();
  const sandbox = TestNetns.create();
  const peer = TestNetns.create();
  spaces.push(host, sandbox, peer);
  host.veth('l0', 'l1', peer);
  peer.ip('addr', 'add', '10.77.0.1/24', 'dev', 'l1');
  const vars = (over: CniVars = {}): CniVars => ({
    CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c0ffee', CNI_NETNS: sandbox.path, CNI_IFNAME: 'eth0', CNI_PATH: CNI_BIN, ...over,
  });
  return { host, sandbox, peer, vars };
}

const conf = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  cniVersion: '1.0.0', name: 'mvnet', type: 'macvtap-cni', master: 'l0', ...(stateDir !== '' && { stateDir }), ...over,
});

/** The attachment records of network `mvnet` in this test's state directory (file names, sorted). */
const records = (): string[] => {
  try {
    return readdirSync(join(stateDir, 'mvnet')).sort();
  } catch {
    return [];
  }
};

/** host-local's allocations in `dataDir` (its files named by address), with the container id each is held for. */
const allocations = (dataDir: string): Record<string, string> => Object.fromEntries(readdirSync(join(dataDir, 'mvnet'))
  .filter((n) => n.startsWith('10.')).sort().map((n) => [n, readFileSync(join(dataDir, 'mvnet', n), 'utf8').split(/\r?\n/)[0] as string]));

const names = (ns: TestNetns): string[] => ns.ipLinks().map((l) => l.ifname).sort();

/** A link's full `ip -d -j` record (the typed helper leaves out fields this file reads). */
const ipLink = (ns: TestNetns, dev: string): Record<string, unknown> => JSON.parse(ns.ip('-d', '-j', 'link', 'show', 'dev', dev))[0] as Record<string, unknown>;

function add(f: Fixture, c: Record<string, unknown>, over: CniVars = {}): Record<string, unknown> {
  const r = runPlugin(f.host.path, f.vars(over), c);
  expect(r.stderr).toBe('');
  expect(r.status, r.stdout).toBe(0);
  return r.json as Record<string, unknown>;
}

/** The bundled files `file` imports (statically, or with `import()` when `dynamic`), and the sources esbuild put in each. */
function bundleGraph(file: string, dynamic: boolean, seen = new Map<string, string[]>()): Map<string, string[]> {
  if (seen.has(file)) return seen;
  const text = readFileSync(file, 'utf8');
  seen.set(file, [...text.matchAll(/^\/\/ dist\/(\S+)\.js$/gm)].map((m) => m[1] as string));
  const re = dynamic ? /(?:^import\b[^;]*?from\s*|^import\s*|\bimport\()"(\.[^"]+)"/gm : /(?:^import\b[^;]*?from\s*|^import\s*)"(\.[^"]+)"/gm;
  for (const m of text.matchAll(re)) bundleGraph(resolve(dirname(file), m[1] as string), dynamic, seen);
  return seen;
}

test("the plugin's start loads only its input checks; its verbs load the link code, never the harness or other layers", () => {
  const sources = (g: Map<string, string[]>): string[] => [...new Set([...g.values()].flat())].sort();
  const start = sources(bundleGraph(PLUGIN, false));
  expect(start).toEqual(['cli/cni/config', 'cli/cni/errors', 'cli/cni/macvtap-cni', 'lib/errors', 'lib/validate']);
  const all = sources(bundleGraph(PLUGIN, true));
  expect(all).toEqual(expect.arrayContaining(['cli/cni/commands', 'cli/cni/ipam', 'lib/link', 'lib/binding', 'lib/portsec/index']));
  expect(all.filter((f) => /^(bench|lib\/vif|lib\/events|lib\/tap|cli\/commands)\b/.test(f) || f === 'cli/macvtap')).toEqual([]);
  // The verbs' own chunk and what it imports statically: no port security or IPAM code unless a config asks for it.
  const verbs = [...bundleGraph(PLUGIN, true).entries()].find(([, src]) => src.includes('cli/cni/commands'))?.[0] as string;
  expect(sources(bundleGraph(verbs, false)).filter((f) => /^(lib\/portsec\/(index|ruleset|policy|boxes)|cli\/cni\/ipam)\b/.test(f))).toEqual([]);
  for (const f of bundleGraph(PLUGIN, true).keys()) expect(readFileSync(f, 'utf8')).not.toMatch(/macvtap-bench|fast-xml-parser/);
  // VERSION and a refused config never load the addon: a path that cannot load does not matter to them.
  const env = { PATH: process.env.PATH, MACVTAP_ADDON: '/nonexistent/macvtap.node' };
  const version = spawnSync(process.execPath, [PLUGIN], { env: { ...env, CNI_COMMAND: 'VERSION' }, input: '', encoding: 'utf8' });
  expect([version.status, JSON.parse(version.stdout).cniVersion]).toEqual([0, '1.1.0']);
  const refused = spawnSync(process.execPath, [PLUGIN], { env: { ...env, CNI_COMMAND: 'ADD' }, input: '{"cniVersion":"1.0.0"}', encoding: 'utf8' });
  expect([refused.status, JSON.parse(refused.stdout).code]).toEqual([1, 4]);
});

describeNeeding('macvtap-cni', referencePluginsMissing(), () => {
  test('VERSION lists every version, with or without a config on stdin, and loads nothing else', () => {
    const host = TestNetns.create();
    spaces.push(host);
    const all = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];
    expect(runPlugin(host.path, { CNI_COMMAND: 'VERSION' }, '').json).toEqual({ cniVersion: '1.1.0', supportedVersions: all });
    expect(runPlugin(host.path, { CNI_COMMAND: 'VERSION' }, { cniVersion: '0.4.0' }).json).toEqual({ cniVersion: '0.4.0', supportedVersions: all });
  });

  test('ADD: moved into the sandbox as CNI_IFNAME with every configured property; the result describes it', () => {
    const f = fixture();
    const res = add(f, conf({ mtu: 1400, mac: '02:00:00:00:00:07', promisc: true, allmulti: true, ipv6: false, queues: 4, mode: 'vepa' }));
    expect(names(f.host)).toEqual(['l0', 'lo']); // nothing left under the temporary name
    const l = ipLink(f.sandbox, 'eth0');
    const info = l.linkinfo as { info_kind: string; info_data: { mode: string } };
    expect(info.info_kind).toBe('macvtap');
    expect(info.info_data.mode).toBe('vepa');
    expect(l.address).toBe('02:00:00:00:00:07');
    expect(l.mtu).toBe(1400);
    expect(l.flags).toEqual(expect.arrayContaining(['UP', 'PROMISC', 'ALLMULTI']));
    expect(l.num_tx_queues).toBe(4);
    expect(l.num_rx_queues).toBe(4);
    expect(l.ifalias).toBe('macvtap-cni:mvnet:c0ffee:eth0');
    expect(l.link_netnsid).toBeTypeOf('number'); // its lower device is in another namespace
    expect(f.sandbox.exec('cat', ['/proc/sys/net/ipv6/conf/eth0/disable_ipv6']).trim()).toBe('1');
    expect(JSON.parse(f.sandbox.ip('-j', '-6', 'addr', 'show', 'dev', 'eth0'))[0]?.addr_info ?? []).toEqual([]);
    // ip netns exec mounts the sandbox's own sysfs: the device numbers of its tap.
    const dev = f.sandbox.exec('sh', ['-c', 'cat /sys/class/net/eth0/macvtap/tap*/dev']).trim();
    expect(res).toEqual({
      cniVersion: '1.0.0',
      interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:07', mtu: 1400, sandbox: f.sandbox.path }],
      dns: {},
      macvtap: { ifindex: l.ifindex, master: 'l0', mode: 'vepa', tap: { major: Number(dev.split(':')[0]), minor: Number(dev.split(':')[1]) } },
    });
  });

  test('ADD: the MAC from runtimeConfig wins over CNI_ARGS MAC=, which wins over the config', () => {
    const f = fixture();
    add(f, conf({ mac: '02:00:00:00:00:01' }), { CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=p;MAC=02:00:00:00:00:02' });
    expect(f.sandbox.ipLink('eth0').address).toBe('02:00:00:00:00:02');
    add(f, conf({ mac: '02:00:00:00:00:01', runtimeConfig: { mac: '02:00:00:00:00:03' } }), { CNI_ARGS: 'MAC=02:00:00:00:00:02', CNI_IFNAME: 'net1', CNI_CONTAINERID: 'c2' });
    expect(f.sandbox.ipLink('net1').address).toBe('02:00:00:00:00:03');
  });

  test('the container reaches a peer on the lower through the macvtap (static IPAM); DEL leaves nothing', () => {
    const f = fixture();
    const c = conf({ ipam: { type: 'static', addresses: [{ address: '10.77.0.2/24' }] } });
    const res = add(f, c);
    expect(res.ips).toEqual([{ address: '10.77.0.2/24', interface: 0 }]);
    const addrs = JSON.parse(f.sandbox.ip('-j', '-4', 'addr', 'show', 'dev', 'eth0'))[0].addr_info as Array<{ local: string; prefixlen: number }>;
    expect(addrs.map((a) => `${a.local}/${a.prefixlen}`)).toEqual(['10.77.0.2/24']);
    expect(f.sandbox.exec('busybox', ['ping', '-c', '2', '-W', '2', '10.77.0.1'])).toMatch(/2 packets received/);
    const mac = f.sandbox.ipLink('eth0').address;
    expect(JSON.parse(f.peer.ip('-j', 'neigh', 'show', 'dev', 'l1', '10.77.0.2'))[0]?.lladdr).toBe(mac);
    expect(runPlugin(f.host.path, f.vars({ CNI_COMMAND: 'DEL' }), { ...c, prevResult: res }).status).toBe(0);
    expect(names(f.sandbox)).toEqual(['lo']);
    expect(names(f.host)).toEqual(['l0', 'lo']);
  });

  test('a VMM-like process in the sandbox makes the tap node from the reported major:minor and moves frames', () => {
    const f = fixture();
    const res = add(f, conf({ mac: '02:00:00:00:00:51' }));
    const { tap } = res.macvtap as { tap: { major: number; minor: number } };
    const dir = mkdtempSync(join(tmpdir(), 'mvt-cni-vmm-'));
    dirs.push(dir);
    // The guest's ARP request for the peer, behind the 10-byte virtio-net header the queue has by default.
    const request = Buffer.concat([vnetHdr(10), buildArp({ op: 1, senderMac: '02:00:00:00:00:51', senderIp: '10.77.0.2', targetMac: '00:00:00:00:00:00', targetIp: '10.77.0.1' })]);
    // What a VMM does with the result: mknod in its own directory, open, write a frame, read until the reply comes.
    const vmm = `
      const fs = require('node:fs');
      const [node, major, minor, hex] = process.argv.slice(1);
      require('node:child_process').execFileSync('mknod', [node, 'c', major, minor]);
      const fd = fs.openSync(node, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
      fs.writeSync(fd, Buffer.from(hex, 'hex'));
      const buf = Buffer.alloc(2048);
      const deadline = Date.now() + 5000;
      for (;;) {
        let n = -1;
        try { n = fs.readSync(fd, buf); } catch (e) { if (e.code !== 'EAGAIN') throw e; }
        if (n > 0 && buf.readUInt16BE(10 + 12) === 0x0806 && buf.readUInt16BE(10 + 14 + 6) === 2) { process.stdout.write(buf.subarray(0, n).toString('hex')); break; }
        if (Date.now() > deadline) { process.stderr.write('no ARP reply within 5 s'); process.exit(1); }
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
      }`;
    const r = spawnSync('nsenter', [`--net=${f.sandbox.path}`, process.execPath, '-e', vmm, join(dir, 'tap'), String(tap.major), String(tap.minor), request.toString('hex')], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    const reply = parseFrame(Buffer.from(r.stdout, 'hex').subarray(10));
    expect(reply.arp).toEqual({ op: 2, senderMac: f.peer.ipLink('l1').address, senderIp: '10.77.0.1', targetMac: '02:00:00:00:00:51', targetIp: '10.77.0.2' });
    expect(JSON.parse(f.peer.ip('-j', 'neigh', 'show', 'dev', 'l1', '10.77.0.2'))[0]?.lladdr).toBe('02:00:00:00:00:51');
  });

  test('host-local IPAM: the address is assigned, reported, and released by DEL', () => {
    const f = fixture();
    const dataDir = mkdtempSync(join(tmpdir(), 'mvt-cni-ipam-'));
    dirs.push(dataDir);
    const c = conf({ ipam: { type: 'host-local', subnet: '10.77.0.0/24', rangeStart: '10.77.0.50', rangeEnd: '10.77.0.60', dataDir } });
    const res = add(f, c);
    expect(res.ips).toEqual([{ address: '10.77.0.50/24', gateway: '10.77.0.1', interface: 0 }]);
    expect(JSON.parse(f.sandbox.ip('-j', '-4', 'addr', 'show', 'dev', 'eth0'))[0].addr_info[0].local).toBe('10.77.0.50');
    expect(readdirSync(join(dataDir, 'mvnet'))).toContain('10.77.0.50');
    // CHECK delegates to host-local's CHECK, which finds the allocation; without it, host-local's own error comes back.
    expect(runPlugin(f.host.path, f.vars({ CNI_COMMAND: 'CHECK' }), { ...c, prevResult: res }).status).toBe(0);
    rmSync(join(dataDir, 'mvnet', '10.77.0.50'));
    const check = runPlugin(f.host.path, f.vars({ CNI_COMMAND: 'CHECK' }), { ...c, prevResult: res });
    expect(check.status).toBe(1);
    expect(check.json?.msg).toMatch(/^IPAM plugin host-local \(CHECK\): /);
    expect(runPlugin(f.host.path, f.vars({ CNI_COMMAND: 'DEL' }), { ...c, prevResult: res }).status).toBe(0);
    expect(readdirSync(join(dataDir, 'mvnet'))).not.toContain('10.77.0.50');
    expect(names(f.sandbox)).toEqual(['lo']);
  });

  test('the result matches the reference macvlan plugin field by field (ours adds mtu and the tap numbers); routes installed', () => {
    const f = fixture();
    const refSandbox = TestNetns.create();
    spaces.push(refSandbox);
    const ipam = (dir: string): Record<string, unknown> => ({
      type: 'host-local', subnet: '10.77.0.0/24', rangeStart: '10.77.0.70', rangeEnd: '10.77.0.70', dataDir: dir,
      routes: [{ dst: '0.0.0.0/0' }, { dst: '192.0.2.0/24', gw: '10.77.0.254' }],
    });
    const d1 = mkdtempSync(join(tmpdir(), 'mvt-cni-ipam-'));
    const d2 = mkdtempSync(join(tmpdir(), 'mvt-cni-ipam-'));
    dirs.push(d1, d2);
    const ours = add(f, conf({ mac: '02:00:00:00:00:21', ipam: ipam(d1) }));
    const ref = runPlugin(f.host.path, f.vars({ CNI_NETNS: refSandbox.path }), conf({ type: 'macvlan', mac: '02:00:00:00:00:22', ipam: ipam(d2) }), `${CNI_BIN}/macvlan`);
    expect(ref.status, ref.stdout).toBe(0);
    const r = ref.json as { interfaces: Array<Record<string, unknown>> } & Record<string, unknown>;
    expect(Object.keys(ours).filter((k) => k !== 'macvtap')).toEqual(Object.keys(r));
    expect(ours.cniVersion).toBe(r.cniVersion);
    expect(ours.dns).toEqual(r.dns);
    expect(ours.ips).toEqual(r.ips);
    expect(ours.routes).toEqual(r.routes);
    const [oi] = ours.interfaces as Array<Record<string, unknown>>;
    const [ri] = r.interfaces;
    expect({ ...oi, mtu: undefined, mac: undefined, sandbox: undefined }).toEqual({ ...ri, mtu: undefined, mac: undefined, sandbox: undefined });
    expect([oi?.mac, oi?.mtu, oi?.sandbox, ri?.mac, ri?.sandbox]).toEqual(['02:00:00:00:00:21', 1500, f.sandbox.path, '02:00:00:00:00:22', refSandbox.path]);
    // The routes as the kernel has them, in both sandboxes alike.
    const routes = (ns: TestNetns): string[] => (JSON.parse(ns.ip('-j', '-4', 'route', 'show')) as Array<{ dst: string; gateway?: string; dev: string }>)
      .map((x) => `${x.dst}${x.gateway ? ` via ${x.gateway}` : ''} dev ${x.dev}`).sort();
    expect(routes(f.sandbox)).toEqual(['10.77.0.0/24 dev eth0', '192.0.2.0/24 via 10.77.0.254 dev eth0', 'default via 10.77.0.1 dev eth0']);
    expect(routes(refSandbox)).toEqual(routes(f.sandbox));
  });

  test('DEL is idempotent: twice, without CNI_NETNS, after the sandbox is gone, after a failed ADD', () => {
    const f = fixture();
    const del = (over: CniVars = {}, c = conf()): number | null => runPlugin(f.host.path, f.vars({ CNI_COMMAND: 'DEL', ...over }), c).status;
    add(f, conf());
    expect(del()).toBe(0);
    expect(del()).toBe(0);
    expect(del({ CNI_NETNS: undefined })).toBe(0);
    expect(names(f.sandbox)).toEqual(['lo']);
    // A failed ADD (the IPAM plugin is not in CNI_PATH): nothing made, DEL still succeeds.
    const bad = conf({ ipam: { type: 'no-such-ipam' } });
    expect(runPlugin(f.host.path, f.vars(), bad).json?.code).toBe(101);
    expect(names(f.sandbox)).toEqual(['lo']);
    expect(names(f.host)).toEqual(['l0', 'lo']);
    expect(del()).toBe(0);
    add(f, conf());
    f.sandbox.destroy();
    expect(del()).toBe(0);
    expect(names(f.host)).toEqual(['l0', 'lo']);
  });

  test('DEL removes only links with this attachment\'s tag: its leftover in the host, never another eth0', () => {
    const f = fixture();
    // Someone else's eth0 in the sandbox (untagged) and an ADD cut off before the move (tagged, in the host).
    f.sandbox.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'x0');
    f.host.ip('link', 'add', 'link', 'l0', 'name', 'mvcni7', 'type', 'macvtap');
    f.host.ip('link', 'set', 'mvcni7', 'alias', 'macvtap-cni:mvnet:c0ffee:eth0');
    f.host.ip('link', 'add', 'link', 'l0', 'name', 'mvcni8', 'type', 'macvtap');
    f.host.ip('link', 'set', 'mvcni8', 'alias', 'macvtap-cni:mvnet:other:eth0');
    expect(runPlugin(f.host.path, f.vars({ CNI_COMMAND: 'DEL' }), conf()).status).toBe(0);
    expect(names(f.sandbox)).toEqual(['eth0', 'lo', 'x0']);
    expect(names(f.host)).toEqual(['l0', 'lo', 'mvcni8']);
  });

  test('ADD refuses a CNI_IFNAME the sandbox already has, and creates nothing', () => {
    const f = fixture();
    f.sandbox.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'x0');
    const r = runPlugin(f.host.path, f.vars(), conf());
    expect(r.status).toBe(1);
    expect(r.json).toMatchObject({ code: 100, msg: expect.stringMatching(/already has an interface eth0/) });
    expect(names(f.host)).toEqual(['l0', 'lo']);
    expect(f.sandbox.ipLink('eth0').link_type).toBe('ether');
    expect(names(f.sandbox)).toEqual(['eth0', 'lo', 'x0']);
  });

  test('CHECK passes on a fresh attachment and names every difference otherwise', () => {
    const f = fixture();
    const c = conf({ mtu: 1400, mac: '02:00:00:00:00:31' });
    const res = add(f, c);
    const check = (cc: Record<string, unknown>): ReturnType<typeof runPlugin> => runPlugin(f.host.path, f.vars({ CNI_COMMAND: 'CHECK' }), cc);
    expect(check({ ...c, prevResult: res }).status).toBe(0);
    expect(check(c).json).toMatchObject({ code: 7, msg: expect.stringMatching(/prevResult/) });
    expect(check({ ...c, cniVersion: '0.3.1', prevResult: res }).json?.code).toBe(1);
    f.sandbox.ip('link', 'set', 'eth0', 'mtu', '1300');
    f.sandbox.ip('link', 'set', 'eth0', 'down');
    const r = check({ ...c, mode: 'private', prevResult: res });
    expect(r.status).toBe(1);
    expect(r.json?.code).toBe(102);
    for (const part of ['mode is bridge, not private', 'it is down', 'MTU is 1300, the config says 1400', 'MTU is 1300, prevResult says 1400']) {
      expect(r.json?.msg).toContain(part);
    }
    f.sandbox.ip('link', 'del', 'eth0');
    expect(check({ ...c, prevResult: res }).json).toMatchObject({ code: 102, msg: expect.stringMatching(/eth0 does not exist/) });
  });

  test('GC removes tagged links of this network whose attachment is not valid, and nothing else', () => {
    const f = fixture();
    add(f, conf(), { CNI_CONTAINERID: 'keep' });
    add(f, conf(), { CNI_CONTAINERID: 'stale', CNI_IFNAME: 'net1' });
    add(f, conf({ name: 'othernet' }), { CNI_CONTAINERID: 'stale2', CNI_IFNAME: 'net2' });
    f.sandbox.ip('link', 'add', 'link', 'eth0', 'name', 'mine', 'type', 'macvlan'); // untagged
    f.host.ip('link', 'add', 'link', 'l0', 'name', 'mvcni9', 'type', 'macvtap'); // a cut-off ADD's leftover
    f.host.ip('link', 'set', 'mvcni9', 'alias', 'macvtap-cni:mvnet:gone:eth0');
    f.host.ip('link', 'add', 'link', 'l0', 'name', 'plain', 'type', 'macvtap'); // untagged
    const gcConf = conf({ cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: 'keep', ifname: 'eth0' }] });
    expect(runPlugin(f.host.path, { CNI_COMMAND: 'GC', CNI_PATH: CNI_BIN }, { ...gcConf, cniVersion: '1.0.0' }).json?.code).toBe(1);
    const r = runPlugin(f.host.path, { CNI_COMMAND: 'GC', CNI_PATH: CNI_BIN }, gcConf);
    expect(r.status, r.stdout).toBe(0);
    expect(names(f.sandbox)).toEqual(['eth0', 'lo', 'mine', 'net2']);
    expect(names(f.host)).toEqual(['l0', 'lo', 'plain']);
  });

  test('GC with host-local IPAM releases the removed attachments\' addresses and keeps the valid one\'s', () => {
    const f = fixture();
    const dataDir = mkdtempSync(join(tmpdir(), 'mvt-cni-ipam-'));
    dirs.push(dataDir);
    const c = conf({ ipam: { type: 'host-local', subnet: '10.77.0.0/24', rangeStart: '10.77.0.80', rangeEnd: '10.77.0.89', dataDir } });
    add(f, c, { CNI_CONTAINERID: 'keep' });
    add(f, { ...c, mac: '02:00:00:00:00:72' }, { CNI_CONTAINERID: 'stale', CNI_IFNAME: 'net1' });
    expect(readdirSync(join(dataDir, 'mvnet')).filter((n) => n.startsWith('10.')).sort()).toEqual(['10.77.0.80', '10.77.0.81']);
    const r = runPlugin(f.host.path, { CNI_COMMAND: 'GC', CNI_PATH: CNI_BIN }, { ...c, cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: 'keep', ifname: 'eth0' }] });
    expect(r.status, r.stdout).toBe(0);
    expect(readdirSync(join(dataDir, 'mvnet')).filter((n) => n.startsWith('10.'))).toEqual(['10.77.0.80']);
    expect(names(f.sandbox)).toEqual(['eth0', 'lo']);
  });

  test('ADD with IPAM records the attachment; DEL removes the record; a failing ADD removes no one else\'s', () => {
    const f = fixture();
    const dataDir = mkdtempSync(join(tmpdir(), 'mvt-cni-ipam-'));
    dirs.push(dataDir);
    const c = conf({ ipam: { type: 'host-local', subnet: '10.77.0.0/24', rangeStart: '10.77.0.100', rangeEnd: '10.77.0.109', dataDir } });
    const res = add(f, c);
    expect(records()).toEqual(['c0ffee:eth0.json']);
    const rec = JSON.parse(readFileSync(join(stateDir, 'mvnet', 'c0ffee:eth0.json'), 'utf8'));
    expect(rec).toEqual({ network: 'mvnet', containerID: 'c0ffee', ifname: 'eth0', config: c, result: res });
    // A failed ADD of the same attachment (its eth0 exists), and one of another that fails after IPAM ADD (its MAC is the
    // master's: EADDRINUSE at up): c0ffee's record and address stay, the failed one leaves neither.
    expect(runPlugin(f.host.path, f.vars(), c).json?.code).toBe(100);
    const clash = runPlugin(f.host.path, f.vars({ CNI_CONTAINERID: 'bad', CNI_IFNAME: 'net1' }), { ...c, mac: f.host.ipLink('l0').address });
    expect(clash.json).toMatchObject({ code: 100, msg: expect.stringMatching(/EADDRINUSE/) });
    expect(records()).toEqual(['c0ffee:eth0.json']);
    expect(allocations(dataDir)).toEqual({ '10.77.0.100': 'c0ffee' });
    // ADD without IPAM has nothing to release later: no record.
    add(f, conf(), { CNI_CONTAINERID: 'noipam', CNI_IFNAME: 'net2' });
    expect(records()).toEqual(['c0ffee:eth0.json']);
    expect(runPlugin(f.host.path, f.vars({ CNI_COMMAND: 'DEL' }), { ...c, prevResult: res }).status).toBe(0);
    expect(records()).toEqual([]);
    expect(allocations(dataDir)).toEqual({});
    expect(readdirSync(stateDir)).toEqual(['mvnet']); // no temporary file left beside the records
  });

  test('GC releases host-local\'s allocation of an attachment whose namespace went without DEL, and removes its record', () => {
    const f = fixture();
    const gone = TestNetns.create();
    spaces.push(gone);
    const dataDir = mkdtempSync(join(tmpdir(), 'mvt-cni-ipam-'));
    dirs.push(dataDir);
    const c = conf({ ipam: { type: 'host-local', subnet: '10.77.0.0/24', rangeStart: '10.77.0.110', rangeEnd: '10.77.0.119', dataDir } });
    add(f, c, { CNI_CONTAINERID: 'keep' });
    add(f, { ...c, mac: '02:00:00:00:00:73' }, { CNI_CONTAINERID: 'stale', CNI_NETNS: gone.path });
    expect(allocations(dataDir)).toEqual({ '10.77.0.110': 'keep', '10.77.0.111': 'stale' });
    expect(records()).toEqual(['keep:eth0.json', 'stale:eth0.json']);
    // The runtime deletes the namespace without DEL: the link goes with it, and with it the tag GC finds links by.
    gone.destroy();
    const macvtaps = (): string[] => [f.host, f.sandbox].flatMap((ns) => ns.ipLinks()).filter((l) => (l as { linkinfo?: { info_kind?: string } }).linkinfo?.info_kind === 'macvtap').map((l) => String(l.ifalias));
    expect(macvtaps()).toEqual(['macvtap-cni:mvnet:keep:eth0']);
    const gc = (valid: Array<{ containerID: string; ifname: string }>, path = CNI_BIN): ReturnType<typeof runPlugin> =>
      runPlugin(f.host.path, { CNI_COMMAND: 'GC', CNI_PATH: path }, { ...c, cniVersion: '1.1.0', 'cni.dev/valid-attachments': valid });
    // host-local not found: the error comes back in CNI form, and the record stays for the next GC.
    const emptyBin = mkdtempSync(join(tmpdir(), 'mvt-cni-bin-'));
    dirs.push(emptyBin);
    const failed = gc([{ containerID: 'keep', ifname: 'eth0' }], emptyBin);
    expect(failed.status).toBe(1);
    expect(failed.json).toMatchObject({ cniVersion: '1.1.0', code: 101, msg: expect.stringContaining('releasing the IPAM allocation of stale/eth0') });
    expect(records()).toEqual(['keep:eth0.json', 'stale:eth0.json']);
    expect(allocations(dataDir)).toEqual({ '10.77.0.110': 'keep', '10.77.0.111': 'stale' });
    // With host-local found: the stale allocation and record go, the valid attachment keeps its link, address and record.
    const r = gc([{ containerID: 'keep', ifname: 'eth0' }]);
    expect(r.status, r.stdout).toBe(0);
    expect(allocations(dataDir)).toEqual({ '10.77.0.110': 'keep' });
    expect(records()).toEqual(['keep:eth0.json']);
    expect(macvtaps()).toEqual(['macvtap-cni:mvnet:keep:eth0']);
    // Nothing valid any more: the link, its allocation and its record all go.
    const all = gc([]);
    expect(all.status, all.stdout).toBe(0);
    expect(allocations(dataDir)).toEqual({});
    expect(records()).toEqual([]);
    expect(macvtaps()).toEqual([]);
  });

  test('STATUS: ready with the master up; code 50 naming why otherwise', () => {
    const f = fixture();
    const status = (c: Record<string, unknown>): ReturnType<typeof runPlugin> => runPlugin(f.host.path, { CNI_COMMAND: 'STATUS' }, { ...c, cniVersion: '1.1.0' });
    expect(status(conf())).toMatchObject({ status: 0, stdout: '' });
    expect(status(conf({ master: 'l9' })).json).toEqual({ cniVersion: '1.1.0', code: 50, msg: 'master l9 does not exist' });
    f.host.ip('link', 'set', 'l0', 'down');
    expect(status(conf()).json).toEqual({ cniVersion: '1.1.0', code: 50, msg: 'master l0 is down' });
  });

  // Every malformed input: the spec's code, the error object on stdout, exit status 1, and nothing created anywhere.
  const rows: Array<[string, CniVars, unknown, number]> = [
    ['no CNI_COMMAND', { CNI_COMMAND: undefined }, conf(), 4],
    ['an unknown CNI_COMMAND', { CNI_COMMAND: 'ATTACH' }, conf(), 4],
    ['no CNI_CONTAINERID', { CNI_CONTAINERID: undefined }, conf(), 4],
    ['a CNI_CONTAINERID with "/"', { CNI_CONTAINERID: 'a/b' }, conf(), 4],
    ['no CNI_IFNAME', { CNI_IFNAME: undefined }, conf(), 4],
    ['a CNI_IFNAME over 15 bytes', { CNI_IFNAME: 'abcdefghijklmnop' }, conf(), 4],
    ['a CNI_IFNAME with a space', { CNI_IFNAME: 'eth 0' }, conf(), 4],
    ['no CNI_NETNS for ADD', { CNI_NETNS: undefined }, conf(), 4],
    ['a relative CNI_NETNS', { CNI_NETNS: 'run/netns/x' }, conf(), 4],
    ['a CNI_ARGS item without "="', { CNI_ARGS: 'junk' }, conf(), 4],
    ['an unknown CNI_ARGS key without IgnoreUnknown', { CNI_ARGS: 'FOO=1' }, conf(), 4],
    ['a multicast CNI_ARGS MAC', { CNI_ARGS: 'MAC=01:00:5e:00:00:01' }, conf(), 4],
    ['a relative CNI_PATH entry', { CNI_PATH: 'usr/lib/cni' }, conf(), 4],
    ['IPAM without CNI_PATH', { CNI_PATH: undefined }, conf({ ipam: { type: 'static' } }), 4],
    ['stdin that is not JSON', {}, '{"cniVersion":', 6],
    ['stdin that is a JSON array', {}, '[]', 6],
    ['empty stdin', {}, '', 6],
    ['an unknown cniVersion', {}, conf({ cniVersion: '9.9.9' }), 1],
    ['GC with cniVersion 1.0.0', { CNI_COMMAND: 'GC' }, conf(), 1],
    ['STATUS with cniVersion 0.4.0', { CNI_COMMAND: 'STATUS' }, conf({ cniVersion: '0.4.0' }), 1],
    ['no cniVersion', {}, conf({ cniVersion: undefined }), 7],
    ['an unknown key', {}, conf({ vlan: 5 }), 2],
    ['ipMasq', {}, conf({ ipMasq: true }), 2],
    ['no name', {}, conf({ name: undefined }), 7],
    ['no master', {}, conf({ master: undefined }), 7],
    ['a master name with "/"', {}, conf({ master: 'a/b' }), 7],
    ['mode source', {}, conf({ mode: 'source' }), 7],
    ['an mtu below 68', {}, conf({ mtu: 10 }), 7],
    ['an mtu as a string', {}, conf({ mtu: '1500' }), 7],
    ['a multicast mac', {}, conf({ mac: '01:00:5e:00:00:01' }), 7],
    ['a malformed runtimeConfig.mac', {}, conf({ runtimeConfig: { mac: 'zz' } }), 7],
    ['promisc as a string', {}, conf({ promisc: 'yes' }), 7],
    ['queues 0', {}, conf({ queues: 0 }), 7],
    ['queues 257', {}, conf({ queues: 257 }), 7],
    ['ipam without a type', {}, conf({ ipam: { subnet: '10.0.0.0/24' } }), 7],
    ['ipam with a path as type', {}, conf({ ipam: { type: '../sbin/x' } }), 7],
    ['a relative stateDir', {}, conf({ stateDir: 'var/lib/cni' }), 7],
    ['portSecurity that is not an object', {}, conf({ portSecurity: true }), 7],
    ['an unknown portSecurity key', {}, conf({ portSecurity: { ips: [], mac: '02:00:00:00:00:01' } }), 2],
    ['portSecurity without ips or ipam', {}, conf({ portSecurity: {} }), 7],
    ['portSecurity with a malformed address', {}, conf({ portSecurity: { ips: ['10.0.0.300'] } }), 7],
    ['a stateful security group rule', {}, conf({ portSecurity: { ips: ['10.77.0.2'], rules: [{ direction: 'ingress', ethertype: 'IPv4', stateful: true }] } }), 7],
    ['a CNI_NETNS that does not exist', { CNI_NETNS: '/run/netns/mvt-no-such-ns' }, conf(), 3],
    ['a master that does not exist', {}, conf({ master: 'l9' }), 100],
    ['an IPAM plugin that is not in CNI_PATH', {}, conf({ ipam: { type: 'no-such-ipam' } }), 101],
  ];
  test.each(rows)('refused: %s', (_what, over, stdin, code) => {
    const f = fixture();
    const before = [names(f.host), names(f.sandbox)];
    const r = runPlugin(f.host.path, f.vars(over), stdin);
    expect(r.status).toBe(1);
    expect(r.json).toMatchObject({ code, msg: expect.any(String) });
    expect(Object.keys(r.json as object).every((k) => ['cniVersion', 'code', 'msg', 'details'].includes(k))).toBe(true);
    expect([names(f.host), names(f.sandbox)]).toEqual(before);
  });
});

describeNeeding('macvtap-cni with port security', referencePluginsMissing() ?? nftUnavailable, () => {
  test('the interface gets the port-security table before it is up: spoofed sources are dropped; CHECK sees it; DEL removes it', () => {
    const f = fixture();
    const c = conf({ mac: '02:00:00:00:00:61', ipam: { type: 'static', addresses: [{ address: '10.77.0.2/24' }] }, portSecurity: {} });
    const res = add(f, c);
    const table = f.sandbox.exec('nft', ['list', 'table', 'netdev', 'mvtps-eth0']);
    expect(table).toMatch(/device "eth0"/);
    expect(table).toContain('02:00:00:00:00:61');
    expect(table).toContain('10.77.0.2');
    expect(f.sandbox.exec('busybox', ['ping', '-c', '1', '-W', '2', '10.77.0.1'])).toMatch(/1 packets received/);
    // A source address the port does not own: its frames are dropped at the egress hook.
    f.sandbox.ip('addr', 'add', '10.77.0.9/24', 'dev', 'eth0');
    const spoof = spawnSync('ip', ['netns', 'exec', f.sandbox.name, 'busybox', 'ping', '-c', '2', '-W', '1', '-I', '10.77.0.9', '10.77.0.1'], { encoding: 'utf8', timeout: 30_000 });
    expect(spoof.stdout).toMatch(/2 packets transmitted, 0 packets received/);
    const check = (): ReturnType<typeof runPlugin> => runPlugin(f.host.path, f.vars({ CNI_COMMAND: 'CHECK' }), { ...c, prevResult: res });
    expect(check().status).toBe(0);
    f.sandbox.exec('nft', ['delete', 'table', 'netdev', 'mvtps-eth0']);
    expect(check().json).toMatchObject({ code: 102, msg: expect.stringContaining('it has no port security') });
    // A second attachment in the same sandbox: its DEL removes its link and its table, and leaves eth0's alone.
    const c2 = conf({ mac: '02:00:00:00:00:62', portSecurity: { ips: ['10.77.0.3'] } });
    add(f, c2, { CNI_IFNAME: 'net1', CNI_CONTAINERID: 'c2' });
    expect(f.sandbox.exec('nft', ['list', 'tables'])).toMatch(/mvtps-net1/);
    expect(runPlugin(f.host.path, f.vars({ CNI_COMMAND: 'DEL', CNI_IFNAME: 'net1', CNI_CONTAINERID: 'c2' }), c2).status).toBe(0);
    expect(f.sandbox.exec('nft', ['list', 'tables'])).not.toMatch(/mvtps-net1/);
    expect(names(f.sandbox)).toEqual(['eth0', 'lo']);
  });

  test('an ADD that fails at its last step (MAC clash with the master, at up) leaves no link, table or address', () => {
    const f = fixture();
    const dataDir = mkdtempSync(join(tmpdir(), 'mvt-cni-ipam-'));
    dirs.push(dataDir);
    const masterMac = f.host.ipLink('l0').address as string;
    const c = conf({ mac: masterMac, ipam: { type: 'host-local', subnet: '10.77.0.0/24', dataDir }, portSecurity: {} });
    const r = runPlugin(f.host.path, f.vars(), c);
    expect(r.json).toMatchObject({ code: 100, msg: expect.stringMatching(/bringing eth0 up.*EADDRINUSE/), details: expect.stringContaining('errno EADDRINUSE') });
    expect(names(f.host)).toEqual(['l0', 'lo']);
    expect(names(f.sandbox)).toEqual(['lo']);
    expect(f.sandbox.exec('nft', ['list', 'tables'])).not.toMatch(/mvtps/);
    expect(readdirSync(join(dataDir, 'mvnet')).filter((n) => n.startsWith('10.'))).toEqual([]);
  });
});
