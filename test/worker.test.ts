/**
 * The library from `worker_threads` and at process exit (better-sqlite3's `44.worker-threads.js` and `41.at-exit.js`
 * habit): a worker does the whole lifecycle and exits cleanly; several workers at once keep their own state; a worker
 * terminated with queues open does not crash the process and its queues are released by the addon's cleanup hook; a
 * child process that exits with queues still open exits 0.
 *
 * Workers and children run JavaScript, so they load the compiled library `dist/lib/index.js` (built by
 * `npm run build:ts`, which `pretest` runs); without it these tests skip and say why.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it, type TestContext } from 'vitest';
import { createMacvtap, getLink, openTap } from '../lib/index.js';
import { describePrivileged } from './helpers/suite.js';
import { destroyAll, TestNetns } from '../bench/testbed/netns.js';

const DIST = fileURLToPath(new URL('../dist/lib/index.js', import.meta.url));

function needDist(ctx: TestContext): boolean {
  if (fs.existsSync(DIST)) return true;
  ctx.skip(`needs the compiled library ${DIST} (npm run build:ts; the pretest script builds it)`);
  return false;
}

/** Whether `fd` in this process is (still) the char device `rdev`: a released queue must not be. */
function isDevice(fd: number, rdev: number): boolean {
  try {
    return fs.fstatSync(fd).rdev === rdev;
  } catch {
    return false;
  }
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `node --input-type=module -e script`, at most 20 s (then killed by PID). */
function runNode(script: string, args: string[] = []): Promise<Exit> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    const t = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), 20_000);
    child.once('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describePrivileged('worker threads and exit', () => {
  let ns: TestNetns;
  let dir: string;
  const workers: Worker[] = [];

  /** Writes an ES module worker script that imports the compiled library as `lib`. */
  function workerFile(name: string, body: string): string {
    const file = path.join(dir, `${name}.mjs`);
    fs.writeFileSync(file, `import { parentPort, workerData } from 'node:worker_threads';\nimport * as lib from ${JSON.stringify(pathToFileURL(DIST).href)};\n${body}\n`);
    return file;
  }
  function startWorker(file: string, data: unknown): Worker {
    const w = new Worker(file, { workerData: data });
    workers.push(w);
    return w;
  }

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mvt-worker-'));
  });
  beforeEach(() => {
    ns = TestNetns.create();
    ns.veth('mvt-l0', 'mvt-p0');
  });
  afterEach(async () => {
    for (const w of workers.splice(0)) await w.terminate();
    ns.destroy();
  });
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    destroyAll();
  });

  it('a worker creates, gets, opens, closes and deletes, then exits cleanly', async (ctx) => {
    if (!needDist(ctx)) return;
    const file = workerFile('lifecycle', `
      const { ns, name } = workerData;
      const created = await lib.createMacvtap({ lower: 'mvt-l0', name, up: true, netns: ns });
      const got = await lib.getLink(name, { netns: ns });
      const qs = await lib.openTap(name, { queues: 2, vnetHdr: false, netns: ns });
      const fds = qs.map((q) => q.fd);
      await Promise.all(qs.map((q) => q.close()));
      await lib.deleteLink(name, { netns: ns });
      parentPort.postMessage({ created: { name: created.name, ifindex: created.ifindex }, got: { name: got.name, kind: got.kind },
        fds, closed: qs.map((q) => q.closed) });
    `);
    const w = startWorker(file, { ns: ns.path, name: 'mvt-w0' });
    const msg = new Promise<{ created: { name: string; ifindex: number }; got: { name: string; kind: string }; fds: number[]; closed: boolean[] }>(
      (resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      },
    );
    const code = new Promise<number>((resolve) => w.once('exit', resolve));
    const m = await msg;
    expect(await code).toBe(0);
    expect(m.created.name).toBe('mvt-w0');
    expect(m.got).toEqual({ name: 'mvt-w0', kind: 'macvtap' });
    expect(m.fds).toHaveLength(2);
    expect(m.closed).toEqual([true, true]);
    expect(ns.ipLinks().map((l) => l.ifname)).not.toContain('mvt-w0');
  });

  it('four workers at once each run their own lifecycle', async (ctx) => {
    if (!needDist(ctx)) return;
    const file = workerFile('parallel', `
      const { ns, name } = workerData;
      for (let i = 0; i < 5; i++) {
        await lib.createMacvtap({ lower: 'mvt-l0', name, netns: ns });
        const qs = await lib.openTap(name, { queues: 3, netns: ns });
        await Promise.all(qs.map((q) => q.close()));
        await lib.deleteLink(name, { netns: ns });
      }
      parentPort.postMessage('done');
    `);
    const results = await Promise.all(
      [0, 1, 2, 3].map((i) => {
        const w = startWorker(file, { ns: ns.path, name: `mvt-pw${i}` });
        return new Promise<[unknown, number]>((resolve, reject) => {
          let msg: unknown;
          w.on('message', (m) => (msg = m));
          w.once('error', reject);
          w.once('exit', (c) => resolve([msg, c]));
        });
      }),
    );
    expect(results).toEqual([['done', 0], ['done', 0], ['done', 0], ['done', 0]]);
    expect(ns.ipLinks().filter((l) => l.ifname.startsWith('mvt-pw'))).toEqual([]);
  });

  it('a worker terminated with queues open: no crash, the main thread goes on, the queues are released', async (ctx) => {
    if (!needDist(ctx)) return;
    const info = await createMacvtap({ lower: 'mvt-l0', name: 'mvt-wt', up: true, netns: ns.path });
    const file = workerFile('hold', `
      const qs = await lib.openTap('mvt-wt', { queues: 3, netns: workerData.ns });
      parentPort.postMessage(qs.map((q) => q.fd));
      setInterval(() => {}, 1000); // hold the queues until terminated
    `);
    const w = startWorker(file, { ns: ns.path });
    const fds = await new Promise<number[]>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    expect(fds).toHaveLength(3);
    // Worker fds live in the process's one fd table: they are the macvtap's device now.
    const rdev = fs.fstatSync(fds[0]!).rdev;
    expect(((rdev >> 8) & 0xfff)).toBe(info.tap!.major);
    for (const fd of fds) expect(isDevice(fd, rdev)).toBe(true);

    const exit = new Promise<number>((resolve) => w.once('exit', resolve));
    await w.terminate();
    expect(await exit).toBe(1); // terminate()'s exit code

    // The main thread still works, and the worker's queues are gone (cleanup hook).
    expect((await getLink('mvt-wt', { netns: ns.path })).name).toBe('mvt-wt');
    for (const fd of fds) expect(isDevice(fd, rdev)).toBe(false);
    const all = await openTap('mvt-wt', { queues: 256, netns: ns.path });
    expect(all).toHaveLength(256);
    await Promise.all(all.map((q) => q.close()));
  });

  for (const how of ['process.exit(0)', 'the end of the script'] as const) {
    it(`a child process that opens queues and leaves through ${how} without closing them exits 0`, async (ctx) => {
      if (!needDist(ctx)) return;
      await createMacvtap({ lower: 'mvt-l0', name: 'mvt-ce', up: true, netns: ns.path });
      const script = `
        import { openTap } from ${JSON.stringify(pathToFileURL(DIST).href)};
        const qs = await openTap('mvt-ce', { queues: 4, netns: process.argv[1] });
        const more = await openTap('mvt-ce', { vnetHdr: false, netns: process.argv[1] });
        console.log(JSON.stringify({ open: qs.length + more.length }));
        ${how === 'process.exit(0)' ? 'process.exit(0);' : ''}
      `;
      const r = await runNode(script, [ns.path]);
      expect(r.signal, r.stderr).toBeNull();
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout.trim())).toEqual({ open: 5 });
      expect(r.stderr).not.toMatch(/abort|segmentation|fatal|FATAL/i);
      // The device has every queue slot back.
      const all = await openTap('mvt-ce', { queues: 256, netns: ns.path });
      expect(all).toHaveLength(256);
      await Promise.all(all.map((q) => q.close()));
    });
  }
});
