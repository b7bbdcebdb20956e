/**
 * Owner tags and garbage collection against the real kernel: every create carries `macvtap:<owner>:<pid>:<starttime>`
 * by default (`owner: false` and an explicit `alias` turn it off), the tag is parsed back, and `gc` removes exactly the
 * links of dead owners — after a child that creates links and opens queues is SIGKILLed at random points, ≥ 20 times —
 * while a link tagged by a live process (this one) and an untagged link stay.
 * Everything happens in throwaway `mvt-` namespaces, removed after each test even when it fails.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeEach, expect, it } from 'vitest';
import { createBridge, createMacvtap, createVeth, gc, getLink, setLink } from '../lib/index.js';
import { binding } from '../lib/binding.js';
import { ownerTag, parseOwnerTag, processStartTime } from '../lib/owner.js';
import { describePrivileged } from './helpers/suite.js';
import { destroyAll, TestNetns } from '../bench/testbed/netns.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Field 22 of /proc/self/stat, read independently of lib/owner.ts (comm may contain spaces and parentheses). */
function selfStartTime(): string {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 1).trim().split(/\s+/)[19] as string;
}

it('owner tags name this process by pid and start time, and parse back; other aliases are not tags', () => {
  const tag = ownerTag('agent-1');
  expect(tag).toBe(`macvtap:agent-1:${process.pid}:${selfStartTime()}`);
  expect(parseOwnerTag(tag)).toEqual({ owner: 'agent-1', pid: process.pid, starttime: selfStartTime() });
  expect(processStartTime(process.pid)).toBe(selfStartTime());
  expect(processStartTime(0x3fffffff)).toBeNull();
  for (const other of [null, '', 'macvtap', 'macvtap:x:1', 'macvtap:x:0:5', 'macvtap:a:b:1:2', 'my vm nic', 'macvtap:x y:1:2']) {
    expect(parseOwnerTag(other)).toBeNull();
  }
});

describePrivileged('owner tags on created links', () => {
  let ns: TestNetns;
  beforeEach(() => {
    ns = TestNetns.create();
    ns.veth('mvt-l0', 'mvt-l1');
  });
  afterEach(() => ns.destroy());
  afterAll(destroyAll);

  it('macvtap, veth and bridge carry the default tag; owner names it; owner:false and alias turn it off', async () => {
    const o = { netns: ns.path };
    const mine = `:${process.pid}:${selfStartTime()}`;
    expect((await createMacvtap({ lower: 'mvt-l0', name: 'mvt-t0', ...o })).alias).toBe(`macvtap:macvtap${mine}`);
    expect(ns.ipLink('mvt-t0').ifalias).toBe(`macvtap:macvtap${mine}`);
    expect((await createMacvtap({ lower: 'mvt-l0', name: 'mvt-t1', owner: 'nova', ...o })).alias).toBe(`macvtap:nova${mine}`);
    expect((await createMacvtap({ lower: 'mvt-l0', name: 'mvt-t2', owner: false, ...o })).alias).toBeNull();
    expect(ns.ipLink('mvt-t2').ifalias).toBeUndefined();
    expect((await createMacvtap({ lower: 'mvt-l0', name: 'mvt-t3', owner: 'nova', alias: 'vm nic', ...o })).alias).toBe('vm nic');
    expect((await createVeth({ name: 'mvt-v0', peer: { name: 'mvt-v1' }, owner: 'k8s', ...o })).alias).toBe(`macvtap:k8s${mine}`);
    expect((await createBridge({ name: 'mvt-br0', ...o })).alias).toBe(`macvtap:macvtap${mine}`);
    expect((await getLink('mvt-br0', o)).alias).toBe(ns.ipLink('mvt-br0').ifalias);
    await expect(createMacvtap({ lower: 'mvt-l0', owner: 'a:b', ...o })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(/owner/) });
    await expect(createMacvtap({ lower: 'mvt-l0', owner: true as never, ...o })).rejects.toThrow(TypeError);
  });
});

describePrivileged('gc', () => {
  let ns: TestNetns;
  beforeEach(() => {
    ns = TestNetns.create();
    ns.veth('mvt-l0', 'mvt-l1');
  });
  afterEach(() => ns.destroy());
  afterAll(destroyAll);

  /** name → alias of every link, as ip sees it (the independent view). */
  function ipAliases(): Map<string, string | null> {
    return new Map(ns.ipLinks().map((l) => [l.ifname, l.ifalias ?? null]));
  }

  it('removes dead and pid-reused owners (one by one and as a group), keeps live and untagged links, dry run first', async () => {
    const o = { netns: ns.path };
    const reused = `macvtap:gct:${process.pid}:1`; // our pid with another start time: a reused pid
    const dead = 'macvtap:gct:4194304:12345'; // above the kernel's pid_max limit: never a live process
    await createMacvtap({ lower: 'mvt-l0', name: 'mvt-live', owner: 'gct', ...o });
    await createMacvtap({ lower: 'mvt-l0', name: 'mvt-other', owner: 'other', ...o });
    await createMacvtap({ lower: 'mvt-l0', name: 'mvt-untag', owner: false, ...o });
    ns.ip('link', 'add', 'link', 'mvt-l0', 'name', 'mvt-user', 'type', 'macvtap');
    ns.ip('link', 'set', 'mvt-user', 'alias', 'a user alias');
    await createMacvtap({ lower: 'mvt-l0', name: 'mvt-reuse', alias: reused, ...o });
    await createMacvtap({ lower: 'mvt-l0', name: 'mvt-dead0', alias: dead, ...o });

    const dry = await gc({ owner: 'gct', dryRun: true, ...o });
    expect(dry.removed.map((l) => l.name).sort()).toEqual(['mvt-dead0', 'mvt-reuse']);
    expect(dry.kept.map((l) => l.name)).toEqual(['mvt-live']);
    expect(ipAliases().has('mvt-dead0')).toBe(true);

    // Two garbage links: deleted one by one.
    expect((await gc({ owner: 'gct', ...o })).removed.map((l) => l.name).sort()).toEqual(['mvt-dead0', 'mvt-reuse']);
    let left = ipAliases();
    expect([...left.keys()].sort()).toEqual(['lo', 'mvt-l0', 'mvt-l1', 'mvt-live', 'mvt-other', 'mvt-untag', 'mvt-user']);

    // Ten: moved to one fresh group and deleted in one RTM_DELLINK; the others keep their group.
    for (let i = 0; i < 10; i++) await createMacvtap({ lower: 'mvt-l0', name: `mvt-d${i}`, alias: dead, group: 7, ...o });
    const r = await gc(o); // every owner: 'other' is alive too
    expect(r.removed.map((l) => l.name).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `mvt-d${i}`).sort());
    expect(r.kept.map((l) => l.name).sort()).toEqual(['mvt-live', 'mvt-other']);
    left = ipAliases();
    expect([...left.keys()].sort()).toEqual(['lo', 'mvt-l0', 'mvt-l1', 'mvt-live', 'mvt-other', 'mvt-untag', 'mvt-user']);
    expect(left.get('mvt-user')).toBe('a user alias');
    expect(ns.ipLink('mvt-live').group).toBe('default');

    await expect(gc({ owner: false as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(gc({ dryRun: 'yes' as never })).rejects.toThrow(TypeError);
  });

  it('a half-made link (construction marker group, no alias) is garbage when its creator pid is gone, kept while alive', async () => {
    const o = { netns: ns.path };
    // Made with ip, as a creator killed between its create and its tag leaves it: marker group 0x6d400000 | pid.
    const deadPid = 0x3f_fffe; // above any pid this machine has handed out (pid_max is at most 0x400000)
    expect(fs.existsSync(`/proc/${deadPid}`)).toBe(false);
    ns.ip('link', 'add', 'link', 'mvt-l0', 'name', 'mvt-half0', 'type', 'macvtap');
    ns.ip('link', 'set', 'mvt-half0', 'group', String((0x6d40_0000 | deadPid) >>> 0));
    ns.ip('link', 'add', 'link', 'mvt-l0', 'name', 'mvt-half1', 'type', 'macvtap');
    ns.ip('link', 'set', 'mvt-half1', 'group', String((0x6d40_0000 | process.pid) >>> 0));
    // An untagged link in an ordinary group is never touched.
    ns.ip('link', 'add', 'link', 'mvt-l0', 'name', 'mvt-other', 'type', 'macvtap');
    ns.ip('link', 'set', 'mvt-other', 'group', '77');
    const dry = await gc({ dryRun: true, ...o });
    expect(dry.removed.map((l) => l.name)).toEqual(['mvt-half0']);
    expect(dry.kept.map((l) => l.name)).toEqual(['mvt-half1']);
    const r = await gc({ owner: 'anyone', ...o });
    expect(r.removed.map((l) => l.name)).toEqual(['mvt-half0']);
    expect(ipAliases().has('mvt-half0')).toBe(false);
    expect(ipAliases().has('mvt-half1') && ipAliases().has('mvt-other')).toBe(true);
  });

  it('a tagged create never leaves the marker behind, and the caller cannot pick a reserved group', async () => {
    const o = { netns: ns.path };
    await createMacvtap({ lower: 'mvt-l0', name: 'mvt-g0', group: 5, ...o });
    await createMacvtap({ lower: 'mvt-l0', name: 'mvt-g1', ...o });
    expect(ns.ipLink('mvt-g0').group).toBe('5');
    expect(ns.ipLink('mvt-g1').group).toBe('default');
    for (const group of [0x6d40_0000, 0x6d7f_ffff, 0x6d40_0000 | process.pid]) {
      await expect(createMacvtap({ lower: 'mvt-l0', group, ...o })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', message: expect.stringMatching(/reserved/) });
    }
    await expect(setLink('mvt-g0', { group: 0x6d50_0000 }, o)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    expect(ns.ipLink('mvt-g0').group).toBe('5');
  });

  it('a create whose tag the kernel refuses is undone at once: no untagged, marker-carrying link is left to wait for gc', async () => {
    // The library validates aliases (≤ 255 bytes), so the addon is called directly with one the kernel refuses
    // (IFALIASZ): the create succeeds, the tag request fails, and the link must go with the error.
    const before = [...ipAliases().keys()].sort();
    const lower = ns.ipLink('mvt-l0').ifindex;
    const req = { kind: 'macvtap' as const, name: 'mvt-badtag', link: lower, macvlanMode: 4, alias: 'x'.repeat(300), group: 0x6d40_0000 | process.pid, finalGroup: 0 };
    await expect(binding.linkCreate(req, ns.path)).rejects.toMatchObject({ syscall: 'RTM_NEWLINK', device: 'mvt-badtag' });
    expect([...ipAliases().keys()].sort()).toEqual(before);
  });

  it('after a child creating links and opening queues is SIGKILLed at random points (24 runs), nothing of it is left', async () => {
    const entry = path.join(root, 'dist/lib/index.js');
    expect(fs.existsSync(entry), 'run `npm run build:ts` first').toBe(true);
    const o = { netns: ns.path };
    await createMacvtap({ lower: 'mvt-l0', name: 'mvt-mine', owner: 'kill', ...o });
    await createMacvtap({ lower: 'mvt-l0', name: 'mvt-plain', owner: false, ...o });
    const code = `
      import { createMacvtap, createVeth, createBridge, openTap } from ${JSON.stringify(entry)};
      const o = { netns: ${JSON.stringify(ns.path)}, owner: 'kill' };
      const run = process.argv[1];
      const queues = [];
      process.stdout.write('ready\\n');
      for (let i = 0; i < 30; i++) {
        const t = await createMacvtap({ lower: 'mvt-l0', name: 'mvt-c' + run + '-%d', up: true, ...o });
        queues.push(...await openTap(t.ifindex, { queues: 2, netns: o.netns }));
        if (i % 5 === 0) await createVeth({ name: 'mvt-e' + run + 'x' + i, peer: { name: 'mvt-p' + run + 'x' + i }, ...o });
        if (i % 7 === 0) await createBridge({ name: 'mvt-b' + run + 'x' + i, ...o });
      }
      process.stdout.write('done\\n');
      setInterval(() => {}, 1000); // stays alive until killed`;
    let removedTotal = 0;
    let halfMade = 0;
    for (let run = 0; run < 24; run++) {
      const child = spawn(process.execPath, ['--input-type=module', '-e', code, String(run)], { stdio: ['ignore', 'pipe', 'pipe'] });
      const exited = new Promise<void>((res) => child.on('exit', () => res()));
      let err = '';
      child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
      await new Promise<void>((res, rej) => {
        const t = setTimeout(() => rej(new Error(`child did not start: ${err}`)), 10_000);
        child.stdout.once('data', () => { clearTimeout(t); res(); });
      });
      // A random point: before the first link, in the middle, or after all of them.
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 400)));
      child.kill('SIGKILL');
      await exited;
      const pid = String(child.pid);
      // The child's links as ip sees them: tagged with its pid, or — killed between create and tag — no alias and
      // the construction marker group 0x6d400000 | pid (ip prints groups in decimal).
      const marker = String((0x6d40_0000 | (child.pid! & 0x3f_ffff)) >>> 0);
      const half = ns.ipLinks().filter((l) => l.ifalias === undefined && l.group === marker).map((l) => l.ifname);
      halfMade += half.length;
      const before = [...[...ipAliases()].filter(([, a]) => a?.split(':')[2] === pid).map(([n]) => n), ...half];
      const r = await gc({ owner: 'kill', ...o });
      removedTotal += r.removed.length;
      expect(r.removed.map((l) => l.name).sort()).toEqual(before.sort());
      const after = ipAliases();
      expect([...after].filter(([, a]) => a?.split(':')[2] === pid), `run ${run}`).toEqual([]);
      expect(ns.ipLinks().filter((l) => l.group === marker), `run ${run}`).toEqual([]);
      expect(after.get('mvt-mine')).toBe(ownerTag('kill'));
      expect(after.has('mvt-plain') && after.get('mvt-plain')).toBeNull();
      expect(r.kept.map((l) => l.name)).toEqual(['mvt-mine']);
    }
    expect(removedTotal).toBeGreaterThan(0);
    // How often a kill landed between a create and its tag (those links are what the construction marker is for).
    process.stdout.write(`gc kill test: ${removedTotal} links removed, ${halfMade} of them half-made\n`);
    // The only links left are ours and the fixture's (veth peers of removed veths went with them).
    expect([...ipAliases().keys()].sort()).toEqual(['lo', 'mvt-l0', 'mvt-l1', 'mvt-mine', 'mvt-plain']);
  });

  it('macvtap gc prints a table, or { removed, kept } with --json', async () => {
    const cli = path.join(root, 'dist/cli/macvtap.js');
    expect(fs.existsSync(cli), 'run `npm run build:ts` first').toBe(true);
    const o = { netns: ns.path };
    await createMacvtap({ lower: 'mvt-l0', name: 'mvt-cli0', alias: 'macvtap:cli:4194304:1', ...o });
    await createMacvtap({ lower: 'mvt-l0', name: 'mvt-cli1', owner: 'cli', ...o });
    const dry = execFileSync(process.execPath, [cli, 'gc', '--owner', 'cli', '--netns', ns.name, '--dry-run'], { encoding: 'utf8' });
    expect(dry).toMatch(/^STATUS\s+IFINDEX\s+NAME\s+KIND\s+OWNER\s+PID$/m);
    expect(dry).toMatch(/^would remove\s+\d+\s+mvt-cli0\s+macvtap\s+cli\s+4194304$/m);
    expect(dry).toMatch(new RegExp(`^kept\\s+\\d+\\s+mvt-cli1\\s+macvtap\\s+cli\\s+${process.pid}$`, 'm'));
    const json = JSON.parse(execFileSync(process.execPath, [cli, 'gc', '--owner', 'cli', '--netns', ns.name, '--json'], { encoding: 'utf8' })) as { removed: { name: string }[]; kept: { name: string }[] };
    expect([json.removed.map((l) => l.name), json.kept.map((l) => l.name)]).toEqual([['mvt-cli0'], ['mvt-cli1']]);
    expect(ipAliases().has('mvt-cli0')).toBe(false);
  });
});
