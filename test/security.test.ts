/**
 * Security checks: what a privileged process using the library can give away.
 *
 * (a) No fd of ours reaches a child unless handed to it: with netlink sockets (two namespaces' pools, an event
 *     watcher), tap queues (through `/dev/tapN` and through a private node) and a tun fd open, an unrelated child
 *     (`ls -l /proc/self/fd`, which lists its own fds) holds only its stdio; handed over by spawn's stdio or by
 *     `macvtap exec`, exactly the handed queues arrive.
 * (b) Private device nodes: made `0600` in a `0700` directory (seen in the syscalls with strace, and on disk after a
 *     SIGKILL mid-open) and gone before `openTap` resolves, so nothing is left on close, on `process.exit()` without
 *     close, or on SIGKILL with queues open; a SIGKILL inside the open leaves its directory, which the next private
 *     open removes.
 * (c) Without `CAP_NET_ADMIN` (capability dropped with setpriv; user namespace without mapping with unshare -U)
 *     every mutating call fails with our `EPERM` `MacvtapError` naming the capability, and `ip` sees nothing changed.
 *
 * Children run JavaScript, so they load the compiled library `dist/` (built by `pretest`); without it the tests that
 * need it skip and say why.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { createMacvtap, createTap, linkEvents, listLinks, openTap, type TapQueue } from '../lib/index.js';
import { novaVif } from './helpers/libvirt.js';
import { tracedChildEnv } from './helpers/sanitizer.js';
import { cleanupStack, describePrivileged } from './helpers/suite.js';
import { destroyAll, makeTestbed, TestNetns, type Testbed } from '../bench/testbed/netns.js';

const DIST = fileURLToPath(new URL('../dist/lib/index.js', import.meta.url));
const VIF = fileURLToPath(new URL('../dist/lib/vif/index.js', import.meta.url));
const CLI = fileURLToPath(new URL('../dist/cli/macvtap.js', import.meta.url));
/** Where private nodes are made (native/tap.cc: /run when writable, else /tmp). */
const NODE_BASE = fs.existsSync('/run') ? '/run' : '/tmp';

function needDist(ctx: TestContext): boolean {
  if (fs.existsSync(DIST) && fs.existsSync(CLI)) return true;
  ctx.skip(`needs the compiled library ${DIST} (npm run build:ts; the pretest script builds it)`);
  return false;
}

/** fd → what it is (`readlink /proc/PID/fd/N`), for this process or another. */
function fdTargets(pid: number | 'self' = 'self'): Map<number, string> {
  const dir = `/proc/${pid}/fd`;
  const out = new Map<number, string>();
  for (const n of fs.readdirSync(dir)) {
    try {
      out.set(Number(n), fs.readlinkSync(`${dir}/${n}`));
    } catch {
      // Closed while listing (the directory's own fd).
    }
  }
  return out;
}

/** Parses `ls -l /proc/self/fd` into fd → target, dropping the directory fd ls itself reads the listing through. */
function parseLs(out: string): Map<number, string> {
  const fds = new Map<number, string>();
  for (const line of out.split('\n')) {
    const m = / (\d+) -> (.*)$/.exec(line);
    if (m && !/^\/proc\/\d+\/fd$/.test(m[2]!)) fds.set(Number(m[1]), m[2]!);
  }
  return fds;
}

/** The fds (other than the directory it lists) of a child `ls -l /proc/self/fd` started with these extra stdio fds. */
async function childFds(extra: number[] = []): Promise<Map<number, string>> {
  const child = spawn('ls', ['-l', '/proc/self/fd'], { stdio: ['ignore', 'pipe', 'pipe', ...extra] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  expect(code).toBe(0);
  return parseLs(out);
}

/** `major:minor` of a macvtap's own char device, read from sysfs inside its namespace. */
function sysfsDev(ns: TestNetns, name: string, ifindex: number): string {
  return ns.exec('cat', [`/sys/class/net/${name}/macvtap/tap${ifindex}/dev`]).trim();
}

/** This machine's private node directories made by process `pid` (any when omitted). */
function nodeDirs(pid?: number): string[] {
  const prefix = pid === undefined ? 'macvtap-' : `macvtap-${pid}-`;
  return fs.readdirSync(NODE_BASE).filter((n) => n.startsWith(prefix)).map((n) => path.join(NODE_BASE, n));
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `cmd args…` (bounded: SIGKILL by PID after 30 s); resolves with how it ended. */
function runChild(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Exit> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    const t = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), 30_000);
    child.once('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** A node child running an ES module script that has the compiled library imported as `lib` (and the vif part as `vif`). */
function nodeArgs(script: string): string[] {
  return ['--input-type=module', '-e', `import * as lib from ${JSON.stringify(DIST)};\nimport * as vif from ${JSON.stringify(VIF)};\n${script}`];
}

describePrivileged('security', () => {
  const cleanup = cleanupStack();
  // A and B: namespaces whose macvtaps share one ifindex, so /dev/tapN is A's and B's queues come through a private
  // node (the cross-namespace hazard: README, "/dev/tapN across namespaces").
  let A: Testbed;
  let B: Testbed;
  const IFINDEX = 6000 + (process.pid % 2000);
  let devB: string;

  // Before anything of ours exists: the fds this process holds (inherited from whoever started it, the test
  // runner's own), and those an unrelated child gets anyway (an fd the runner's parent passed down without
  // close-on-exec reaches every child, ours or not).
  let inherited: Set<string>;
  let baseline: Map<number, string>;

  beforeAll(async () => {
    inherited = new Set(fdTargets().values());
    baseline = await childFds();
    A = makeTestbed(61);
    B = makeTestbed(62);
    await createMacvtap({ lower: A.lower, name: 'mvt-sa', ifindex: IFINDEX, up: true, netns: A.host.path });
    await createMacvtap({ lower: B.lower, name: 'mvt-sb', ifindex: IFINDEX, up: true, netns: B.host.path });
    devB = sysfsDev(B.host, 'mvt-sb', IFINDEX);
  });
  afterAll(() => {
    A?.destroy();
    B?.destroy();
    destroyAll();
  });

  /** A child's fds beyond its stdio and beyond what every child here gets anyway (the baseline), ascending. */
  function extra(child: Map<number, string>): number[] {
    return [...child.entries()].filter(([fd, t]) => fd > 2 && baseline.get(fd) !== t).map(([fd]) => fd).sort((a, b) => a - b);
  }

  async function queues(tb: Testbed, name: string, n: number): Promise<TapQueue[]> {
    const qs = await openTap(name, { queues: n, netns: tb.host.path });
    cleanup(() => Promise.all(qs.map((q) => q.close())));
    return qs;
  }

  describe('(a) fds reach a child only when handed to it', () => {
    it('an unrelated child gets none of our netlink sockets, watcher, tap queues (/dev and private node) or tun fd', async () => {
      await listLinks({ netns: A.host.path });
      await listLinks({ netns: B.host.path });
      const events = linkEvents({ netns: A.host.path, snapshot: true });
      cleanup(() => events.close());
      await once(events, 'ready');
      const qa = await queues(A, 'mvt-sa', 2);
      const qb = await queues(B, 'mvt-sb', 2);
      expect(qa[0]!.path).toBe(`/dev/tap${IFINDEX}`);
      expect(qb[0]!.path.startsWith(`${NODE_BASE}/macvtap-`)).toBe(true);
      const tun = await createTap({ name: 'mvt-tun', netns: A.host.path });
      cleanup(() => tun.close());

      const ours = [...fdTargets().entries()].filter(([, t]) => !inherited.has(t));
      const targets = new Set(ours.map(([, t]) => t));
      // What we hold, as the kernel names it: sockets (netlink pools, the watcher), both queue kinds, the tun fd.
      expect(ours.filter(([, t]) => t.startsWith('socket:')).length).toBeGreaterThanOrEqual(3);
      for (const q of [...qa, ...qb, tun]) expect(targets.has(fs.readlinkSync(`/proc/self/fd/${q.fd}`))).toBe(true);
      expect([...targets].some((t) => t.startsWith(`${NODE_BASE}/macvtap-`) && t.endsWith('(deleted)'))).toBe(true);

      const child = await childFds();
      expect(extra(child)).toEqual([]);
      for (const t of child.values()) expect(targets.has(t)).toBe(false);
    });

    it('spawn stdio hands exactly the given queue: the child has it as fd 3 and nothing else of ours', async () => {
      const [qb] = await queues(B, 'mvt-sb', 1);
      const [qa] = await queues(A, 'mvt-sa', 1);
      const child = await childFds([qb!.fd]);
      expect(extra(child)).toEqual([3]);
      expect(child.get(3)).toBe(fs.readlinkSync(`/proc/self/fd/${qb!.fd}`));
      expect(child.get(3)).not.toBe(fs.readlinkSync(`/proc/self/fd/${qa!.fd}`));
    });

    it('macvtap exec: the exec\'d program holds its stdio and the N queues, nothing else', (ctx) => {
      if (!needDist(ctx)) return;
      for (const [tb, name, dev] of [[A, 'mvt-sa', sysfsDev(A.host, 'mvt-sa', IFINDEX)], [B, 'mvt-sb', devB]] as const) {
        const r = spawnSync(process.execPath, [CLI, 'exec', '--netns', tb.host.name, '--dev', name, '--queues', '3', '--', 'sh', '-c',
          'ls -l /proc/self/fd; for f in /proc/self/fd/*; do stat -L -c "%n %t:%T" $f 2>/dev/null; done; true', 'sh'], { encoding: 'utf8', timeout: 30_000 });
        expect(r.stderr).toBe('');
        expect(r.status).toBe(0);
        // sh's fds: stdio, the three queues; ls (a child of sh) inherits the same. Their device numbers are the link's.
        const fds = parseLs(r.stdout);
        const handed = extra(fds);
        expect(handed).toHaveLength(3);
        const [major, minor] = dev.split(':').map(Number) as [number, number];
        for (const fd of handed) {
          expect(r.stdout).toContain(`/proc/self/fd/${fd} ${major.toString(16)}:${minor.toString(16)}`);
          expect(fds.get(fd)).toMatch(name === 'mvt-sa' ? new RegExp(`^/dev/tap${IFINDEX}$`) : /\/macvtap-\d+-\w+\/tap\d+ \(deleted\)$/);
        }
      }
    });
  });

  describe('(b) private device nodes', () => {
    it('made 0600 (char device of the link) in a 0700 directory, both removed before openTap resolves', async (ctx) => {
      if (!needDist(ctx)) return;
      const trace = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mvt-sec-')), 'trace');
      cleanup(() => fs.rmSync(path.dirname(trace), { recursive: true, force: true }));
      const script = `
        const [q] = await lib.openTap('mvt-sb', { netns: ${JSON.stringify(B.host.path)} });
        const left = (await import('node:fs')).readdirSync(${JSON.stringify(NODE_BASE)}).filter((n) => n.startsWith('macvtap-' + process.pid + '-'));
        console.log(JSON.stringify({ path: q.path, left }));
        await q.close();`;
      const env = tracedChildEnv();
      // -ff: one file per thread, so a call is never split into "<unfinished ...>" and "<... resumed>" lines by
      // another thread's call (it was, under load, and the rmdir line then did not end with "= 0").
      const r = await runChild('strace', ['-ff', '-qq', '-o', trace, '-e', 'trace=mkdir,chmod,mknod,mknodat,unlink,unlinkat,rmdir', process.execPath, ...nodeArgs(script)], env);
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { path: string; left: string[] };
      expect(out.left).toEqual([]);
      const dir = path.dirname(out.path);
      const traceFiles = fs.readdirSync(path.dirname(trace)).filter((f) => f.startsWith('trace.'));
      expect(traceFiles.length).toBeGreaterThan(0);
      const calls = traceFiles
        .flatMap((f) => fs.readFileSync(path.join(path.dirname(trace), f), 'utf8').split('\n'))
        .filter((l) => l.includes(dir))
        // strace pads short calls to its result column ("rmdir(...)      = 0"): one space, as in a long line.
        .map((l) => l.replace(/\s+= /, ' = '));
      const [major, minor] = devB.split(':');
      expect(calls.some((l) => l.includes(`mkdir("${dir}", 0700) = 0`))).toBe(true);
      expect(calls.some((l) => new RegExp(`mknod(at)?\\((AT_FDCWD, )?"${out.path}", S_IFCHR\\|0600, makedev\\(0x${Number(major).toString(16)}, 0x${Number(minor).toString(16)}\\)\\) = 0`).test(l))).toBe(true);
      expect(calls.some((l) => /unlink(at)?\(/.test(l) && l.includes(`"${out.path}"`) && l.endsWith('= 0'))).toBe(true);
      expect(calls.some((l) => l.includes(`rmdir("${dir}") = 0`))).toBe(true);
      expect(fs.existsSync(dir)).toBe(false);
    });

    for (const end of ['process.exit(0) with queues open', 'SIGKILL with queues open'] as const) {
      it(`nothing is left after ${end}`, async (ctx) => {
        if (!needDist(ctx)) return;
        const script = `
          const qs = await lib.openTap('mvt-sb', { queues: 2, netns: ${JSON.stringify(B.host.path)} });
          console.log(JSON.stringify({ pid: process.pid, path: qs[0].path }));
          ${end.startsWith('SIGKILL') ? "process.kill(process.pid, 'SIGKILL');" : 'process.exit(0);'}`;
        const r = await runChild(process.execPath, nodeArgs(script));
        expect(r.signal ?? r.code).toBe(end.startsWith('SIGKILL') ? 'SIGKILL' : 0);
        const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { pid: number; path: string };
        expect(out.path.startsWith(`${NODE_BASE}/macvtap-${out.pid}-`)).toBe(true);
        expect(nodeDirs(out.pid)).toEqual([]);
      });
    }

    it('SIGKILL inside the open leaves the directory (0700, node 0600); the next private open removes it', async (ctx) => {
      if (!needDist(ctx)) return;
      // strace kills the child on its first unlink: the node is made and opened but not yet removed.
      const script = `console.log(process.pid); await lib.openTap('mvt-sb', { netns: ${JSON.stringify(B.host.path)} });`;
      const r = await runChild('strace', ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=unlink,unlinkat', '-e', 'inject=unlink,unlinkat:signal=KILL:when=1',
        process.execPath, ...nodeArgs(script)]);
      const pid = Number(r.stdout.trim().split('\n')[0]);
      expect(pid).toBeGreaterThan(0);
      const left = nodeDirs(pid);
      cleanup(() => left.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
      expect(left).toHaveLength(1);
      const st = fs.statSync(left[0]!);
      expect(st.mode & 0o777).toBe(0o700);
      const nodes = fs.readdirSync(left[0]!);
      expect(nodes).toEqual([`tap${IFINDEX}`]);
      const nst = fs.statSync(path.join(left[0]!, nodes[0]!), { bigint: true });
      expect(nst.isCharacterDevice()).toBe(true);
      expect(Number(nst.mode & 0o777n)).toBe(0o600);
      expect(`${Number(nst.rdev >> 8n) & 0xfff}:${Number((nst.rdev & 0xffn) | ((nst.rdev >> 12n) & 0xfff00n))}`).toBe(devB);

      // The next open that needs a private node sweeps directories of processes that are gone.
      await queues(B, 'mvt-sb', 1);
      expect(fs.existsSync(left[0]!)).toBe(false);
    });
  });

  describe('(c) without CAP_NET_ADMIN', () => {
    // Every mutating public call, against links prepared with ip: a macvtap, a bridge with a port, a group.
    const calls = `
      const L = 'mvt-l0';
      const vifOf = (details) => ({ ...${JSON.stringify(novaVif({ devname: 'mvt-vif0' }))}, details });
      const attempts = {
        createMacvtap: () => lib.createMacvtap({ lower: L, name: 'mvt-new' }),
        createVlan: () => lib.createVlan({ lower: L, id: 7 }),
        createVeth: () => lib.createVeth({ name: 'mvt-v0', peer: { name: 'mvt-v1' } }),
        createBridge: () => lib.createBridge({ name: 'mvt-br1' }),
        createTap: () => lib.createTap({ name: 'mvt-tun1' }),
        setLinkMtu: () => lib.setLink(L, { mtu: 1400 }),
        setLinkUp: () => lib.setLink('mvt-down', { up: true }),
        setLinkRename: () => lib.setLink('mvt-down', { name: 'mvt-ren' }),
        setLinkMaster: () => lib.setLink('mvt-down', { master: 'mvt-br0' }),
        setBridgePort: () => lib.setBridgePort('mvt-port', { learning: false }),
        deleteLink: () => lib.deleteLink('mvt-mt'),
        deleteGroup: () => lib.deleteGroup(4321),
        addAddress: () => lib.addAddress(L, '10.201.0.1/24'),
        setOffloads: () => lib.setOffloads(L, { tx: false }),
        vifPlug: () => vif.plug(vifOf({ macvtap_source: 'mvt-down', macvtap_mode: 'bridge', physical_interface: 'mvt-down' })),
        vifPlugSelfManaged: () => vif.plugSelfManaged(vifOf({ macvtap_source: L, macvtap_mode: 'bridge', physical_interface: L })),
      };
      const shape = (e) => e && ({ name: e.name, code: e.code, errno: e.errno, syscall: e.syscall, message: e.message });
      const out = {};
      for (const [k, f] of Object.entries(attempts)) {
        try { await f(); out[k] = { ok: true }; }
        catch (e) { out[k] = { ...shape(e), cause: shape(e.cause) }; }
      }
      // openTap adds a queue to an existing device: not a netlink change, so the kernel may allow it without the
      // capability (the device node's permissions decide); reported, and closed again.
      try { const qs = await lib.openTap('mvt-mt'); out.openTap = { ok: true, n: qs.length }; await Promise.all(qs.map((q) => q.close())); }
      catch (e) { out.openTap = shape(e); }
      console.log(JSON.stringify(out));`;

    /** Everything in the namespace a stray mutation could change, as ip shows it. */
    function snapshot(ns: TestNetns): string {
      const links = ns.ipLinks().map((l) => [l.ifindex, l.ifname, l.flags, l.mtu, l.address, l.group, l.master, l.linkinfo?.info_kind]);
      // Addresses without their DAD state: a link-local address of an up veth is "tentative" for its first second or
      // so and the kernel clears that on its own, which is no change of ours (a slow run saw exactly that).
      const addrs = (JSON.parse(ns.ip('-j', 'addr', 'show')) as Array<{ addr_info?: Array<Record<string, unknown>> }>).map((l) => ({
        ...l,
        addr_info: l.addr_info?.map(({ tentative: _t, ...a }) => a),
      }));
      return JSON.stringify({ links, addrs, brport: ns.ip('-d', '-j', 'link', 'show', 'dev', 'mvt-port') });
    }

    for (const how of ['setpriv --inh-caps=-net_admin --bounding-set=-net_admin', 'unshare -U (no uid map)'] as const) {
      it(`${how}: every mutating call is our EPERM naming CAP_NET_ADMIN, and ip sees nothing changed`, async (ctx) => {
        if (!needDist(ctx)) return;
        const ns = TestNetns.create();
        cleanup(() => ns.destroy());
        ns.veth('mvt-l0', 'mvt-l1');
        ns.ip('link', 'add', 'link', 'mvt-l0', 'name', 'mvt-mt', 'group', '4321', 'type', 'macvtap');
        ns.ip('link', 'add', 'mvt-down', 'type', 'veth', 'peer', 'name', 'mvt-down1');
        ns.ip('link', 'add', 'mvt-br0', 'type', 'bridge');
        ns.ip('link', 'add', 'mvt-port', 'type', 'veth', 'peer', 'name', 'mvt-port1');
        ns.ip('link', 'set', 'mvt-port', 'master', 'mvt-br0');
        const before = snapshot(ns);
        const drop = how.startsWith('setpriv')
          ? ['setpriv', '--inh-caps=-net_admin', '--bounding-set=-net_admin']
          : ['unshare', '-U'];
        const r = await runChild('ip', ['netns', 'exec', ns.name, ...drop, process.execPath, ...nodeArgs(calls)]);
        expect(r.code, r.stderr).toBe(0);
        const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, Record<string, unknown> & { cause?: Record<string, unknown> }>;
        const { openTap: tap, ...mutating } = out;
        expect(Object.keys(mutating)).toHaveLength(16);
        for (const [call, res] of Object.entries(mutating)) {
          // The vif layer wraps the core's error (VifPlugError with the MacvtapError as `cause`).
          const e = call.startsWith('vif') ? res.cause : res;
          expect({ call, ...e }, JSON.stringify(res)).toMatchObject({ call, name: 'MacvtapError', code: 'EPERM', errno: -1 });
          expect(e!.message, call).toMatch(/CAP_NET_ADMIN/);
          if (call.startsWith('vif')) expect(res.message, call).toMatch(/EPERM|permitted|CAP_NET_ADMIN/);
        }
        if (!tap!.ok) expect(tap).toMatchObject({ name: 'MacvtapError', code: expect.stringMatching(/^(EPERM|EACCES)$/) });
        expect(snapshot(ns)).toBe(before);
      });
    }
  });
});
