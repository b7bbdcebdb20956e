/**
 * Link events against the real kernel: the snapshot and the stream after it (no gap, no duplicate, while links are
 * being created concurrently), what `changed` reports, the `kinds` filter, the resync after `ENOBUFS` when ~2000 link
 * changes flood a watcher that cannot read, the EventEmitter adapter, and that closing (break, return(), AbortSignal)
 * leaves nothing that keeps a process alive (a child process must exit by itself), and that a watcher is an addon handle
 * like a tap queue's fd (owned, listed, closed with it, never handed away).
 * Everything happens in throwaway `mvt-` namespaces, removed after each test even when it fails.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, afterEach, beforeEach, expect, it } from 'vitest';
import {
  createMacvtap, deleteLink, linkEvents, listLinks, setLink, watchLinks, type LinkEvent, type LinkWatcher,
} from '../lib/index.js';
import { binding } from '../lib/binding.js';
import { describePrivileged } from './helpers/suite.js';
import { destroyAll, TestNetns } from '../bench/testbed/netns.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Reads events until `stop` says so; fails after `ms` (bounded). */
async function collect(w: LinkWatcher, stop: (ev: LinkEvent, all: LinkEvent[]) => boolean, ms = 10_000): Promise<LinkEvent[]> {
  const all: LinkEvent[] = [];
  const deadline = Date.now() + ms;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out; events so far: ${JSON.stringify(all.map((e) => [e.type, 'link' in e ? e.link.name : '']))}`);
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      w.next(),
      new Promise<'timeout'>((res) => { timer = setTimeout(() => res('timeout'), left); }),
    ]);
    clearTimeout(timer);
    if (r === 'timeout') continue;
    if (r.done) return all;
    all.push(r.value);
    if (stop(r.value, all)) return all;
  }
}

/** Applies events to a name set, as a consumer would, checking there is no duplicate add and no unknown removal. */
function applyEvents(events: LinkEvent[], known = new Map<number, string>()): Map<number, string> {
  for (const ev of events) {
    if (ev.type === 'added') {
      expect(known.has(ev.link.ifindex), `duplicate added ${ev.link.name}`).toBe(false);
      known.set(ev.link.ifindex, ev.link.name);
    } else if (ev.type === 'removed') {
      expect(known.has(ev.link.ifindex), `removed unknown ${ev.link.name}`).toBe(true);
      known.delete(ev.link.ifindex);
    } else if (ev.type === 'changed') {
      expect(known.has(ev.link.ifindex), `changed unknown ${ev.link.name}`).toBe(true);
      known.set(ev.link.ifindex, ev.link.name);
    }
  }
  return known;
}

function ipNames(ns: TestNetns): Map<number, string> {
  return new Map(ns.ipLinks().map((l) => [l.ifindex, l.ifname]));
}

describePrivileged('watchLinks', () => {
  let ns: TestNetns;
  const watchers: LinkWatcher[] = [];
  beforeEach(() => {
    ns = TestNetns.create();
    ns.veth('mvt-lo0', 'mvt-lo1');
  });
  afterEach(() => {
    for (const w of watchers.splice(0)) w.close();
    ns.destroy();
  });
  afterAll(destroyAll);

  function watch(opts: Parameters<typeof watchLinks>[0] = {}): LinkWatcher {
    const w = watchLinks({ netns: ns.path, ...opts });
    watchers.push(w);
    return w;
  }

  it('yields the snapshot, then added / changed (with what changed) / removed, matching ip', async () => {
    const w = watch({ snapshot: true });
    const snap = await collect(w, (ev) => ev.type === 'ready');
    expect(snap.at(-1)).toEqual({ type: 'ready' });
    const added = snap.filter((e) => e.type === 'added');
    expect(added.every((e) => e.type === 'added' && e.snapshot)).toBe(true);
    expect(applyEvents(snap)).toEqual(ipNames(ns));

    const o = { netns: ns.path };
    const mt = await createMacvtap({ lower: 'mvt-lo0', name: 'mvt-ev0', ...o });
    let evs = await collect(w, (ev) => ev.type === 'added');
    const add = evs.at(-1);
    expect(add).toMatchObject({ type: 'added', snapshot: false, link: { name: 'mvt-ev0', ifindex: mt.ifindex, kind: 'macvtap' } });
    // The lower's name is resolved from the watcher's own view of the namespace.
    expect(add?.type === 'added' && add.link.lower).toEqual({ ifindex: ns.ipLink('mvt-lo0').ifindex, name: 'mvt-lo0', netnsid: null });

    await setLink('mvt-ev0', { mtu: 1400 }, o);
    evs = await collect(w, (ev) => ev.type === 'changed' && ev.changes.includes('mtu'));
    const mtu = evs.at(-1);
    expect(mtu?.type === 'changed' && [mtu.previous.mtu, mtu.link.mtu]).toEqual([1500, 1400]);

    await setLink('mvt-ev0', { name: 'mvt-ev1', mac: '02:00:00:00:ee:01' }, o);
    // The kernel may announce the rename and the new MAC in one notification or in two.
    evs = await collect(w, (ev) => ev.type === 'changed' && ev.link.name === 'mvt-ev1' && ev.link.mac === '02:00:00:00:ee:01');
    const changed = evs.filter((e) => e.type === 'changed');
    expect(changed.flatMap((e) => e.changes)).toEqual(expect.arrayContaining(['name', 'mac']));
    const ren = changed.find((e) => e.changes.includes('name'));
    expect(ren && [ren.previous.name, ren.link.name]).toEqual(['mvt-ev0', 'mvt-ev1']);

    await setLink('mvt-ev1', { up: true }, o);
    evs = await collect(w, (ev) => ev.type === 'changed' && ev.changes.includes('up'));
    expect(evs.at(-1)).toMatchObject({ type: 'changed', link: { up: true }, previous: { up: false } });

    ns.ip('link', 'set', 'mvt-lo1', 'down'); // the macvtap's lower loses its carrier
    evs = await collect(w, (ev) => ev.type === 'changed' && ev.link.name === 'mvt-lo0' && ev.changes.includes('carrier'));
    expect(evs.at(-1)).toMatchObject({ link: { name: 'mvt-lo0', carrier: false }, previous: { carrier: true } });

    await deleteLink('mvt-ev1', o);
    evs = await collect(w, (ev) => ev.type === 'removed');
    expect(evs.at(-1)).toMatchObject({ type: 'removed', link: { name: 'mvt-ev1', ifindex: mt.ifindex } });
    // Unchanged notifications are not reported as changes.
    expect(evs.every((e) => e.type !== 'changed' || e.changes.length > 0)).toBe(true);
  });

  it('has no gap and no duplicate between snapshot and stream while links are being created', async () => {
    const script = path.join(os.tmpdir(), `mvt-ev-${process.pid}.batch`);
    const lines: string[] = [];
    for (let i = 0; i < 150; i++) lines.push(`link add mvt-g${i} type veth peer name mvt-h${i}`);
    for (let i = 0; i < 150; i += 3) lines.push(`link del mvt-g${i}`);
    fs.writeFileSync(script, lines.join('\n') + '\n');
    try {
      // The flood runs in another process and starts before the watcher subscribes.
      const child = spawn('ip', ['-n', ns.name, '-batch', script], { stdio: 'ignore' });
      const exited = new Promise<number | null>((res) => child.on('exit', res));
      await new Promise((r) => setTimeout(r, 5));
      const w = watch({ snapshot: true, receiveBuffer: 4 * 1024 * 1024 });
      expect(await exited).toBe(0);
      ns.ip('link', 'set', 'mvt-lo0', 'mtu', '1400'); // a marker after the flood
      const evs = await collect(w, (ev) => ev.type === 'changed' && ev.link.name === 'mvt-lo0' && ev.link.mtu === 1400);
      expect(evs.some((e) => e.type === 'resync')).toBe(false); // with this buffer, nothing was dropped
      expect(applyEvents(evs)).toEqual(ipNames(ns));
    } finally {
      fs.rmSync(script, { force: true });
    }
  });

  it('reports only the kinds asked for', async () => {
    const w = watch({ snapshot: true, kinds: ['macvtap'] });
    const snap = await collect(w, (ev) => ev.type === 'ready');
    expect(snap).toEqual([{ type: 'ready' }]);
    ns.ip('link', 'add', 'mvt-v2', 'type', 'veth', 'peer', 'name', 'mvt-v3');
    await createMacvtap({ lower: 'mvt-lo0', name: 'mvt-k0', netns: ns.path });
    const evs = await collect(w, (ev) => ev.type === 'added');
    expect(evs.map((e) => e.type === 'added' && [e.link.name, e.link.kind])).toEqual([['mvt-k0', 'macvtap']]);
  });

  it('resynchronises after ENOBUFS: ~2000 link changes flood a watcher that cannot read', async () => {
    const w = watch({ snapshot: true, receiveBuffer: 16 * 1024 });
    const known = applyEvents(await collect(w, (ev) => ev.type === 'ready'));
    const script = path.join(os.tmpdir(), `mvt-flood-${process.pid}.batch`);
    const lines: string[] = [];
    // 500 veth pairs (1000 links), then 250 of them deleted, mtu changes on the rest: ≈2000 notifications.
    for (let i = 0; i < 500; i++) lines.push(`link add mvt-f${i} type veth peer name mvt-q${i}`);
    for (let i = 0; i < 500; i += 2) lines.push(`link del mvt-f${i}`);
    for (let i = 1; i < 500; i += 2) lines.push(`link set mvt-f${i} mtu 1300`);
    fs.writeFileSync(script, lines.join('\n') + '\n');
    try {
      // execFileSync blocks the event loop: the watcher cannot read while the kernel queues the notifications.
      execFileSync('ip', ['-n', ns.name, '-batch', script], { stdio: 'ignore' });
    } finally {
      fs.rmSync(script, { force: true });
    }
    ns.ip('link', 'set', 'mvt-lo0', 'mtu', '1400'); // a marker after the flood
    const evs = await collect(w, (ev) => ev.type === 'changed' && ev.link.name === 'mvt-lo0' && ev.link.mtu === 1400, 30_000);
    // The first marker may come out of the resync's differences (in ifindex order): a second one follows all of them.
    ns.ip('link', 'set', 'mvt-lo0', 'mtu', '1450');
    evs.push(...await collect(w, (ev) => ev.type === 'changed' && ev.link.name === 'mvt-lo0' && ev.link.mtu === 1450, 30_000));
    expect(evs.filter((e) => e.type === 'resync').length).toBeGreaterThanOrEqual(1);
    // After the resync and its differences, the consumer's view is exactly the kernel's.
    expect(applyEvents(evs, known)).toEqual(ipNames(ns));
    const f1 = evs.filter((e) => e.type === 'added' && e.link.name === 'mvt-f1');
    expect(f1.length === 0 || (f1[0]?.type === 'added' && f1[0].link.mtu === 1300)).toBe(true);
  });

  it('the EventEmitter adapter emits each type and "close" once closed', async () => {
    const em = linkEvents({ netns: ns.path });
    const seen: string[] = [];
    em.on('event', (ev: LinkEvent) => seen.push(ev.type));
    await new Promise((r) => em.once('ready', r));
    const added = new Promise<LinkEvent>((r) => em.once('added', r));
    await createMacvtap({ lower: 'mvt-lo0', name: 'mvt-e0', netns: ns.path });
    expect(await added).toMatchObject({ type: 'added', link: { name: 'mvt-e0' } });
    const closed = new Promise((r) => em.once('close', r));
    em.close();
    await closed;
    expect(seen).toEqual(['ready', 'added']);
  });

  it('ends with break, return() and AbortSignal; a closed watcher stops reporting', async () => {
    const w1 = watch();
    for await (const ev of w1) if (ev.type === 'ready') break;
    expect(w1.closed).toBe(true);
    expect(await w1.next()).toEqual({ value: undefined, done: true });

    const ac = new AbortController();
    const w2 = watch({ signal: ac.signal });
    await collect(w2, (ev) => ev.type === 'ready');
    const pending = w2.next();
    ac.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
    expect(w2.closed).toBe(true);

    const w3 = watch({ signal: AbortSignal.abort() });
    await expect(w3.next()).rejects.toMatchObject({ name: 'AbortError' });
    await expect(w3.next()).resolves.toEqual({ value: undefined, done: true });
  });

  it('a watcher is an addon handle: its socket is owned while it runs, cannot be released, and goes with close()', async () => {
    const before = binding.ownedFds();
    const w = watch();
    await collect(w, (ev) => ev.type === 'ready');
    const added = binding.ownedFds().filter((fd) => !before.includes(fd));
    expect(added).toHaveLength(1);
    const handle = added[0]!;
    const socket = fs.readlinkSync(`/proc/self/fd/${handle}`);
    expect(socket).toMatch(/^socket:\[\d+\]$/);
    expect(() => binding.fdRelease(handle)).toThrow(expect.objectContaining({ code: 'EBADF', message: expect.stringMatching(/link watcher/) }));
    expect(binding.ownedFds()).toContain(handle);
    w.close();
    expect(binding.ownedFds()).toEqual(before);
    // Closed with it (the number may already name something else, but not this socket).
    let now: string | null = null;
    try {
      now = fs.readlinkSync(`/proc/self/fd/${handle}`);
    } catch {
      // gone
    }
    expect(now).not.toBe(socket);
    expect(() => binding.fdClose(handle)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('rejects bad options before touching the kernel, and a missing namespace with ENOENT', async () => {
    expect(() => watchLinks({ kinds: 'macvtap' as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(/kinds/) }));
    expect(() => watchLinks({ snapshot: 1 as never })).toThrow(TypeError);
    expect(() => watchLinks({ receiveBuffer: 10 })).toThrow(RangeError);
    expect(() => watchLinks({ bogus: 1 } as never)).toThrow(/bogus/);
    const w = watchLinks({ netns: '/run/netns/mvt-does-not-exist' });
    await expect(w.next()).rejects.toMatchObject({ name: 'MacvtapError', code: 'ENOENT', syscall: 'open' });
  });

  it('a worker_thread terminated with a live watcher tears it down (environment cleanup), the process goes on', async () => {
    const entry = path.join(root, 'dist/lib/index.js');
    expect(fs.existsSync(entry), 'run `npm run build:ts` first').toBe(true);
    for (let i = 0; i < 3; i++) {
      const worker = new Worker(`
        import { parentPort } from 'node:worker_threads';
        const { watchLinks } = await import(${JSON.stringify(entry)});
        const w = watchLinks({ netns: ${JSON.stringify(ns.path)} });
        for await (const ev of w) if (ev.type === 'ready') parentPort.postMessage('ready');`, { eval: true });
      await new Promise<void>((res, rej) => { worker.once('message', () => res()); worker.once('error', rej); });
      await worker.terminate();
    }
    // Terminated while events pour in: the termination (requested from this thread) lands in the middle of the
    // watcher's callbacks, whose N-API calls then fail. That aborted the whole process once; it must not.
    let flooding = true;
    const flood = (async () => {
      // Bounded in time: until the workers are done, at most 45 s.
      const end = performance.now() + 45_000;
      for (let i = 0; flooding && performance.now() < end; i++) await setLink('mvt-lo0', { mtu: 1300 + (i % 50) }, { netns: ns.path });
    })();
    try {
      for (let i = 0; i < 10; i++) {
        const worker = new Worker(`
          import { parentPort } from 'node:worker_threads';
          const { watchLinks } = await import(${JSON.stringify(entry)});
          let n = 0;
          for await (const ev of watchLinks({ netns: ${JSON.stringify(ns.path)} })) if (ev.type === 'changed' && ++n === 5) parentPort.postMessage('busy');`, { eval: true });
        await new Promise<void>((res, rej) => { worker.once('message', () => res()); worker.once('error', rej); });
        await new Promise((r) => setTimeout(r, i * 3));
        await worker.terminate();
      }
    } finally {
      flooding = false;
      await flood;
    }
    // This environment's own watcher still works after the workers' cleanup.
    const w = watch();
    await collect(w, (ev) => ev.type === 'ready');
    ns.ip('link', 'set', 'mvt-lo0', 'mtu', '1280');
    const evs = await collect(w, (ev) => ev.type === 'changed');
    expect(evs.at(-1)).toMatchObject({ link: { name: 'mvt-lo0', mtu: 1280 }, changes: ['mtu'] });
  });

  it('no handle keeps a process alive after break, return() or abort (the child exits by itself)', async () => {
    const entry = path.join(root, 'dist/lib/index.js');
    expect(fs.existsSync(entry), 'run `npm run build:ts` first').toBe(true);
    for (const how of ['break', 'return', 'abort']) {
      const code = `
        import { watchLinks } from ${JSON.stringify(entry)};
        const ac = new AbortController();
        const w = watchLinks({ netns: ${JSON.stringify(ns.path)}, signal: ac.signal });
        try {
          for await (const ev of w) {
            if (ev.type !== 'ready') continue;
            if (${JSON.stringify(how)} === 'break') break;
            if (${JSON.stringify(how)} === 'return') await w.return();
            if (${JSON.stringify(how)} === 'abort') ac.abort();
          }
        } catch (e) { if (e.name !== 'AbortError') throw e; }
        console.log('closed', w.closed);`;
      const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const [codeOut, signal] = await new Promise<[number | null, string | null]>((res) => child.on('exit', (c, s) => res([c, s])));
      clearTimeout(timer);
      expect({ how, codeOut, signal, out: out.trim() }).toEqual({ how, codeOut: 0, signal: null, out: 'closed true' });
    }
  });
});
