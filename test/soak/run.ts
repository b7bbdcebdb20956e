/**
 * `npm run soak -- [--minutes N] [--callers K] [--workers W] [--check-every OPS] [--seed S] [--json FILE]`: random
 * create / set (mtu, up, alias) / open 1–4 queues / close / move to the other namespace / delete, from K async callers
 * on the main thread and W worker threads at once, over two throwaway namespaces (`mvt-<pid>-*`, each with a
 * veth lower). Every OPS main-thread operations all actors pause and their models are compared with
 * `ip -d -j link show` of both namespaces. At the end everything is closed and deleted, and the run fails unless
 * no device, tap fd, private device node or extra fd is left and RSS stayed within its bound. Exit 0 ok, 1 failed,
 * 2 usage.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { createVeth } from '../../lib/index.js';
import { parseIntegerArg } from '../../lib/internal.js';
import { TestNetns } from '../../bench/testbed/netns.js';
import { Actor, OWNER_ALIAS, type ActorCounts, type ModelLink } from './actor.js';

const USAGE = `usage: npm run soak -- [--minutes N] [--callers K] [--workers W] [--check-every OPS] [--seed S] [--json FILE]
  --minutes N        how long (default 3)
  --callers K        async callers on the main thread (default 4)
  --workers W        worker threads, one actor each (default 2)
  --check-every OPS  compare every actor's model with ip after this many main-thread operations (default 300)
  --seed S           PRNG seed (default: time-based; printed, so a failure can be replayed)
  --json FILE        write the figures`;

/** RSS may grow at most this much between the first check after the warm-up and the end (MiB). */
const RSS_BOUND_MIB = 8;
const LOWER = 'sl0';

interface Options {
  minutes: number;
  callers: number;
  workers: number;
  checkEvery: number;
  seed: number;
  json: string | undefined;
}

function parse(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      'minutes': { type: 'string' }, 'callers': { type: 'string' }, 'workers': { type: 'string' },
      'check-every': { type: 'string' }, 'seed': { type: 'string' }, 'json': { type: 'string' }, 'help': { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) throw new Error('help');
  const minutes = values.minutes === undefined ? 3 : Number(values.minutes);
  if (!/^\d+(\.\d+)?$/.test(values.minutes ?? '3') || minutes < 0.05 || minutes > 24 * 60) {
    throw new Error(`--minutes must be a number in [0.05, ${24 * 60}], got ${values.minutes}`);
  }
  const int = (name: string, v: string | undefined, dflt: number, min: number, max: number): number => {
    if (v === undefined) return dflt;
    const n = parseIntegerArg(v, min, max);
    if (n === null) throw new Error(`--${name} must be an integer in [${min}, ${max}], got ${v}`);
    return n;
  };
  return {
    minutes,
    callers: int('callers', values.callers, 4, 1, 64),
    workers: int('workers', values.workers, 2, 0, 16),
    checkEvery: int('check-every', values['check-every'], 300, 10, 1e6),
    seed: int('seed', values.seed, Date.now() % 1e9, 0, 2 ** 31),
    json: values.json,
  };
}

/** One link as ip shows it, reduced to what the actors model. */
interface IpView {
  name: string;
  kind: string | undefined;
  mode: string | undefined;
  mtu: number;
  up: boolean;
  alias: string | null;
}

function ipLinks(ns: string): IpView[] {
  const r = spawnSync('ip', ['-n', ns, '-d', '-j', 'link', 'show'], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`ip -n ${ns} -d -j link show: ${r.stderr.trim()}`);
  const all = JSON.parse(r.stdout) as Array<{ ifname: string; mtu: number; flags: string[]; ifalias?: string; linkinfo?: { info_kind?: string; info_data?: { mode?: string } } }>;
  return all.filter((l) => /^s\d+x\d+$/.test(l.ifname)).map((l) => ({
    name: l.ifname, kind: l.linkinfo?.info_kind, mode: l.linkinfo?.info_data?.mode, mtu: l.mtu, up: l.flags.includes('UP'), alias: l.ifalias ?? null,
  }));
}

/** Differences between the actors' models and ip, as readable lines (empty: they agree). */
function compare(models: ModelLink[], nsNames: string[]): string[] {
  const out: string[] = [];
  for (const [i, ns] of nsNames.entries()) {
    const seen = new Map(ipLinks(ns).map((l) => [l.name, l]));
    for (const m of models.filter((x) => x.ns === i)) {
      const l = seen.get(m.name);
      seen.delete(m.name);
      if (!l) {
        out.push(`${ns}: ${m.name} missing`);
        continue;
      }
      const alias = m.alias === OWNER_ALIAS ? (l.alias?.startsWith(OWNER_ALIAS) ? OWNER_ALIAS : l.alias) : l.alias;
      const want = { kind: 'macvtap', mode: m.mode, mtu: m.mtu, up: m.up, alias: m.alias };
      const got = { kind: l.kind, mode: l.mode, mtu: l.mtu, up: l.up, alias };
      if (JSON.stringify(want) !== JSON.stringify(got)) out.push(`${ns}: ${m.name} model ${JSON.stringify(want)} ip ${JSON.stringify(got)}`);
    }
    for (const name of seen.keys()) out.push(`${ns}: ${name} present but no actor has it`);
  }
  return out;
}

/** Our fds that must be gone at the end: tap queues, tun, private nodes. */
function deviceFds(): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const t = readlinkSync(`/proc/self/fd/${fd}`);
      if (/^\/dev\/(tap\d+|net\/tun)|macvtap-/.test(t)) out.push(`${fd} → ${t}`);
    } catch {
      // Closed meanwhile (readdir's own fd).
    }
  }
  return out;
}

const fdCount = (): number => readdirSync('/proc/self/fd').length;
const rssMiB = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
const privateDirs = (): string[] => readdirSync('/run').filter((d) => d.startsWith(`macvtap-${process.pid}-`));

/** A worker actor seen from here. */
class WorkerActor {
  readonly worker: Worker;
  #pending: ((m: { type: string; model?: ModelLink[]; counts?: ActorCounts }) => void) | null = null;
  failure: Error | null = null;
  counts: ActorCounts = { ops: 0, byOp: {} };

  constructor(id: number, netns: string[], seed: number) {
    const here = dirname(fileURLToPath(import.meta.url));
    this.worker = new Worker(join(here, 'worker.ts'), { workerData: { id, netns, lower: LOWER, seed } });
    this.worker.on('message', (m: { type: string; message?: string; model?: ModelLink[]; counts?: ActorCounts }) => {
      if (m.counts) this.counts = m.counts;
      if (m.type === 'failed') this.failure = new Error(`worker ${id}: ${m.message}`);
      const p = this.#pending;
      this.#pending = null;
      p?.(m);
    });
    this.worker.on('error', (e) => {
      this.failure = e;
      this.#pending?.({ type: 'failed' });
    });
  }

  /** Sends `type` and waits (bounded) for the reply. */
  ask(type: 'pause' | 'stop'): Promise<{ type: string; model?: ModelLink[] }> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`worker did not answer ${type} within 60 s`)), 60_000);
      this.#pending = (m) => {
        clearTimeout(t);
        if (m.type === 'failed') reject(this.failure ?? new Error('worker failed'));
        else resolve(m);
      };
      this.worker.postMessage({ type });
    });
  }

  resume(): void {
    this.worker.postMessage({ type: 'resume' });
  }
}

/** Runs the soak; resolves with the figures, throws on the first finding. */
export async function soak(o: Options, log: (s: string) => void): Promise<Record<string, unknown>> {
  const nss = [TestNetns.create(), TestNetns.create()];
  const workers: WorkerActor[] = [];
  try {
    for (const ns of nss) await createVeth({ name: LOWER, peer: { name: 'sp0' }, up: true, owner: false, netns: ns.path });
    const paths = nss.map((n) => n.path);
    const names = nss.map((n) => n.name);
    const fd0 = fdCount();
    const callers = Array.from({ length: o.callers }, (_, i) => new Actor(i, paths, LOWER, o.seed + i));
    for (let w = 0; w < o.workers; w++) workers.push(new WorkerActor(o.callers + w, paths, o.seed + o.callers + w));

    const t0 = performance.now();
    const end = t0 + o.minutes * 60_000;
    let mainOps = 0;
    let gate: Promise<void> | null = null;
    const rss: Array<{ s: number; mib: number }> = [];
    let checks = 0;
    let failure: unknown = null;

    const check = async (): Promise<void> => {
      const models = [...callers.flatMap((a) => a.model())];
      for (const w of workers) models.push(...((await w.ask('pause')).model ?? []));
      const diff = compare(models, names);
      for (const w of workers) w.resume();
      if (diff.length) throw new Error(`state differs from ip after ${mainOps} main-thread operations:\n  ${diff.slice(0, 20).join('\n  ')}`);
      checks++;
      const s = (performance.now() - t0) / 1000;
      (globalThis as { gc?: () => void }).gc?.();
      rss.push({ s, mib: rssMiB() });
      log(`check ${checks}: ${models.length} links agree with ip · ${s.toFixed(0)} s · RSS ${rss.at(-1)!.mib.toFixed(1)} MiB`);
    };

    let inFlight = 0;
    const runCaller = async (a: Actor): Promise<void> => {
      while (performance.now() < end && failure === null) {
        if (gate) await gate;
        inFlight++;
        try {
          await a.step();
        } finally {
          inFlight--;
        }
        if (++mainOps % o.checkEvery === 0 && !gate) {
          let open!: () => void;
          gate = new Promise((r) => (open = r));
          try {
            // The other callers finish the operation they have in flight (each awaits the gate before its next one).
            const waitEnd = performance.now() + 60_000;
            while (inFlight > 0) {
              if (performance.now() > waitEnd) throw new Error(`${inFlight} operations still in flight after 60 s`);
              await new Promise((r) => setTimeout(r, 2));
            }
            await check();
          } finally {
            gate = null;
            open();
          }
        }
      }
    };
    await Promise.all(callers.map((a) => runCaller(a).catch((e: unknown) => {
      failure ??= e;
    })));
    if (failure) throw failure;
    for (const w of workers) if (w.failure) throw w.failure;
    await check();

    // The end: everything closed and deleted; nothing of ours may remain.
    for (const a of callers) await a.finish();
    for (const w of workers) await w.ask('stop');
    for (const w of workers) await w.worker.terminate();
    const left = compare([], names);
    const fds = deviceFds();
    const dirs = privateDirs();
    (globalThis as { gc?: () => void }).gc?.();
    const fd1 = fdCount();
    // RSS is compared between checks (every actor paused, every heap collected, the workers alive): from the first
    // check after the warm-up to the last one. After the teardown it is only reported (the workers' heaps are gone).
    const warm = rss.find((r) => r.s >= Math.min(30, o.minutes * 60 * 0.25)) ?? rss[0]!;
    const lastCheck = rss.at(-1)!;
    const last = rssMiB();
    // Under AddressSanitizer (test:asan runs this too) freed memory sits in its quarantine on purpose: RSS says
    // nothing there, and is reported only.
    const asan = readFileSync('/proc/self/maps', 'utf8').includes('libasan');
    const counts = [...callers.map((a) => a.counts), ...workers.map((w) => w.counts)];
    const figures = {
      seed: o.seed, minutes: o.minutes, callers: o.callers, workers: o.workers,
      operations: counts.reduce((n, c) => n + c.ops, 0),
      byOp: counts.reduce<Record<string, number>>((acc, c) => {
        for (const [k, v] of Object.entries(c.byOp)) acc[k] = (acc[k] ?? 0) + v;
        return acc;
      }, {}),
      checks,
      fds: { start: fd0, end: fd1 },
      rssMiB: {
        afterWarmup: warm.mib, lastCheck: lastCheck.mib, growth: lastCheck.mib - warm.mib, afterTeardown: last,
        max: Math.max(...rss.map((r) => r.mib)), bound: RSS_BOUND_MIB, judged: !asan,
      },
      leftLinks: left, leftDeviceFds: fds, leftPrivateDirs: dirs,
    };
    const problems = [
      ...left.map((l) => `link left: ${l}`), ...fds.map((f) => `fd left: ${f}`), ...dirs.map((d) => `private node directory left: ${d}`),
      // The library's caches stay bounded (per-namespace netlink sockets, sysfs mounts): the end may hold a few more
      // fds than the start, never one per operation.
      ...(fd1 > fd0 + 16 ? [`fds grew from ${fd0} to ${fd1}`] : []),
      ...(!asan && lastCheck.mib - warm.mib > RSS_BOUND_MIB
        ? [`RSS grew ${(lastCheck.mib - warm.mib).toFixed(1)} MiB from ${warm.s.toFixed(0)} s to ${lastCheck.s.toFixed(0)} s (bound ${RSS_BOUND_MIB})`]
        : []),
    ];
    if (problems.length) throw Object.assign(new Error(`soak found:\n  ${problems.join('\n  ')}`), { figures });
    return figures;
  } finally {
    await Promise.all(workers.map((w) => w.worker.terminate()));
    for (const ns of nss) ns.destroy();
  }
}

async function main(): Promise<number> {
  let o: Options;
  try {
    o = parse(process.argv.slice(2));
  } catch (e) {
    const help = (e as Error).message === 'help';
    process[help ? 'stdout' : 'stderr'].write(`${help ? '' : `soak: ${(e as Error).message}\n`}${USAGE}\n`);
    return help ? 0 : 2;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('soak: needs root (it makes namespaces and links)\n');
    return 1;
  }
  const log = (s: string): void => void process.stderr.write(`soak: ${s}\n`);
  log(`seed ${o.seed}, ${o.minutes} min, ${o.callers} callers + ${o.workers} worker threads`);
  try {
    const figures = await soak(o, log);
    const text = JSON.stringify(figures, null, 2);
    if (o.json) writeFileSync(o.json, text + '\n');
    process.stdout.write(text + '\n');
    return 0;
  } catch (e) {
    const err = e as Error & { figures?: unknown };
    if (o.json && err.figures) writeFileSync(o.json, JSON.stringify({ ...(err.figures as object), error: err.message }, null, 2) + '\n');
    process.stderr.write(`soak: FAILED (seed ${o.seed}): ${err.stack ?? err.message}\n`);
    return 1;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = await main();
