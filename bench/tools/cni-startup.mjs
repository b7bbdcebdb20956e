#!/usr/bin/env node
// What a CNI plugin costs per container: ADD + DEL as whole processes (start, read config, do the work, exit), for
// `macvtap-cni` beside the reference Go `macvlan` plugin (Debian's containernetworking-plugins), same master, same
// mode, no IPAM, in one run with the variants interleaved round by round (process start on this VM drifts by tens of
// milliseconds between regimes that last seconds; a regime then reaches every variant of a round alike). Node running
// an empty ES module is measured twice per round beside them: the floor any Node plugin pays for its two processes
// (the plugin is an ES module too; `node -e 0` takes another, slower path through the loader).
//
//   node bench/tools/cni-startup.mjs [--runs N] [--json FILE]
//
// Needs root; everything happens in throwaway namespaces (`mvt-bench-<pid>-host`, `-sbx`): the plugins run in the
// first as their runtime namespace (this script re-executes itself there with nsenter), the attachment goes into the
// second. Both are deleted on exit, on error and on SIGINT/SIGTERM. Build first: npm run compile.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const root = resolve(import.meta.dirname, '..', '..');
const PLUGIN = resolve(root, 'dist/cli/cni/macvtap-cni.js');
const MACVLAN = '/usr/lib/cni/macvlan';
const { values } = parseArgs({ options: { runs: { type: 'string', default: '30' }, json: { type: 'string' }, worker: { type: 'string' } } });

/** One ADD+DEL of `argv` (a plugin) with `conf`; wall milliseconds of each process. */
function addDel(argv, conf, sandbox, id) {
  const env = { PATH: process.env.PATH, CNI_CONTAINERID: id, CNI_NETNS: sandbox, CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' };
  const ms = {};
  for (const cmd of ['ADD', 'DEL']) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(argv[0], argv.slice(1), { env: { ...env, CNI_COMMAND: cmd }, input: JSON.stringify(conf), encoding: 'utf8', timeout: 30_000 });
    ms[cmd] = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`${argv.join(' ')} ${cmd} failed (${r.status}): ${r.stdout}${r.stderr}`);
  }
  return ms;
}

function bare(empty) {
  const t0 = process.hrtime.bigint();
  // The plugins' environment (PATH and CNI_*): an inherited NODE_EXTRA_CA_CERTS alone adds ≈100 ms to a Node start.
  for (let i = 0; i < 2; i++) spawnSync(process.execPath, [empty], { env: { PATH: process.env.PATH } });
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

if (values.worker) {
  // Inside the runtime namespace: the rounds themselves.
  const { sandbox, runs, empty } = JSON.parse(values.worker);
  const base = { cniVersion: '1.0.0', name: 'bench', master: 'l0', mode: 'bridge' };
  const variants = {
    'macvtap-cni': () => addDel([process.execPath, PLUGIN], { ...base, type: 'macvtap-cni' }, sandbox, 'bench-mvt'),
    macvlan: () => addDel([MACVLAN], { ...base, type: 'macvlan' }, sandbox, 'bench-mvl'),
    'empty .mjs (x2)': () => ({ ADD: bare(empty), DEL: 0 }),
  };
  const names = Object.keys(variants);
  for (const n of names) variants[n](); // warm the page cache once, not counted
  const rows = Object.fromEntries(names.map((n) => [n, []]));
  for (let round = 0; round < runs; round++) {
    // Rotate the order: no variant always runs first after a pause.
    for (let k = 0; k < names.length; k++) {
      const n = names[(round + k) % names.length];
      rows[n].push(variants[n]());
    }
  }
  process.stdout.write(JSON.stringify(rows));
  process.exit(0);
}

const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 5 || runs > 1000) {
  console.error('cni-startup: --runs takes an integer 5–1000');
  process.exit(2);
}
if (process.getuid?.() !== 0) {
  console.error('cni-startup: needs root (it makes network namespaces)');
  process.exit(2);
}
for (const f of [PLUGIN, MACVLAN]) {
  if (!existsSync(f)) {
    console.error(`cni-startup: ${f} is missing (${f === PLUGIN ? 'npm run compile' : 'apt-get install containernetworking-plugins'})`);
    process.exit(2);
  }
}

const host = `mvt-bench-${process.pid}-host`;
const sbx = `mvt-bench-${process.pid}-sbx`;
const work = mkdtempSync(join(tmpdir(), 'mvt-cni-startup-'));
const empty = join(work, 'empty.mjs');
writeFileSync(empty, '');
function cleanup() {
  for (const n of [host, sbx]) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
  rmSync(work, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { cleanup(); process.exit(130); });
const ip = (...args) => {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
};

let rows;
try {
  ip('netns', 'add', host);
  ip('netns', 'add', sbx);
  ip('-n', host, 'link', 'add', 'l0', 'type', 'veth', 'peer', 'name', 'l1');
  ip('-n', host, 'link', 'set', 'l0', 'up');
  const r = spawnSync('nsenter', [`--net=/run/netns/${host}`, process.execPath, import.meta.filename, '--worker', JSON.stringify({ sandbox: `/run/netns/${sbx}`, runs, empty })], {
    encoding: 'utf8', timeout: 600_000, maxBuffer: 16 << 20,
  });
  if (r.status !== 0) throw new Error(`the rounds failed: ${r.stderr || r.stdout}`);
  rows = JSON.parse(r.stdout);
} finally {
  cleanup();
}

const q = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  const i = (s.length - 1) * p;
  const lo = Math.floor(i);
  return s[lo] + (s[Math.ceil(i)] - s[lo]) * (i - lo);
};
const fmt = (x) => x.toFixed(1).padStart(7);
const summary = {};
console.log(`ADD+DEL wall time per attachment, ms, ${runs} interleaved rounds (node ${process.version}, kernel ${spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim()})`);
console.log(`${'variant'.padEnd(16)} ${'median'.padStart(7)} ${'p10'.padStart(7)} ${'p90'.padStart(7)}   ${'ADD med'.padStart(7)} ${'DEL med'.padStart(7)}   ${'over the floor (median of rounds)'}`);
const floor = rows['empty .mjs (x2)'].map((m) => m.ADD + m.DEL);
for (const [name, list] of Object.entries(rows)) {
  const total = list.map((m) => m.ADD + m.DEL);
  // Each round's difference to the floor measured in the same round: the drift between regimes cancels in it.
  const over = total.map((t, i) => t - floor[i]);
  summary[name] = {
    median: q(total, 0.5), p10: q(total, 0.1), p90: q(total, 0.9), addMedian: q(list.map((m) => m.ADD), 0.5), delMedian: q(list.map((m) => m.DEL), 0.5),
    overFloorMedian: q(over, 0.5), overFloorP10: q(over, 0.1), overFloorP90: q(over, 0.9),
  };
  const s = summary[name];
  const parts = name.startsWith('empty') ? '      -       -' : `${fmt(s.addMedian)} ${fmt(s.delMedian)}   ${fmt(s.overFloorMedian)} (p10 ${s.overFloorP10.toFixed(1)}, p90 ${s.overFloorP90.toFixed(1)})`;
  console.log(`${name.padEnd(16)} ${fmt(s.median)} ${fmt(s.p10)} ${fmt(s.p90)}   ${parts}`);
}
const load = spawnSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).stdout.split(' ').slice(0, 3).join(' ');
console.log(`load average after the run: ${load} (other work on the machine shows as spread)`);
if (values.json) writeFileSync(values.json, JSON.stringify({ runs, node: process.version, load, rows, summary }, null, 2));
