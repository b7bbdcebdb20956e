#!/usr/bin/env node
// What a driver pays for depending on `macvtap`: the packed library installed into an empty project (npm, scripts
// ignored, as npm 11 does by default), counted in packages and bytes on disk, and the cost of `import('macvtap')` (and
// of `import('macvtap/vif')`) over a bare `node -e 0`, as whole processes, interleaved, median of --runs.
//
// Two floors are measured beside it, in the same rounds: `import()` of an empty ESM package (what any ESM package
// costs: Node's ESM loader), and the same macvtap.node loaded through node-gyp-build from an ESM one-liner (what any
// addon loaded that way costs). "Over bare" is the median of the rounds' differences: each round runs every variant
// back to back, and process start on this VM moves by ±20 ms between regimes that last seconds — a regime reaches
// the whole round alike, so it cancels in the difference.
//
//   node bench/tools/footprint.mjs [--runs N] [--json FILE] [REV …]
//
// Without REV, or for the word `worktree`, it measures the working tree (after `npm run prebuild`); each other REV (e.g. a commit before a change) is
// checked out into a temporary worktree, built (npm ci, compile, prebuild) and packed there, then removed. Needs npm's
// registry for the dependencies. Nothing is left behind: temporary directories and worktrees are removed on exit and
// on SIGINT/SIGTERM.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const root = resolve(import.meta.dirname, '..', '..');
const { values, positionals } = parseArgs({
  options: { runs: { type: 'string', default: '20' }, json: { type: 'string' } },
  allowPositionals: true,
});
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 10 || runs > 1000) {
  console.error('footprint: --runs takes an integer 10–1000');
  process.exit(2);
}

const work = mkdtempSync(join(tmpdir(), 'mvt-footprint-'));
const worktrees = [];
function cleanup() {
  for (const w of worktrees) spawnSync('git', ['worktree', 'remove', '--force', w], { cwd: root, stdio: 'ignore' });
  rmSync(work, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { cleanup(); process.kill(process.pid, sig); });

const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
const log = (s) => process.stderr.write(`footprint: ${s}\n`);

/** Builds and packs the library at `rev` (or the working tree); resolves to the tarball's path. */
function packAt(rev) {
  let dir = root;
  if (rev === 'worktree') rev = undefined;
  if (rev !== undefined) {
    dir = join(work, `tree-${worktrees.length}`);
    log(`${rev}: worktree, npm ci, compile, prebuild`);
    run('git', ['worktree', 'add', '--detach', dir, rev], root);
    worktrees.push(dir);
    run('npm', ['ci', '--no-audit', '--no-fund'], dir);
    run('npm', ['run', 'compile'], dir);
  }
  run('npm', ['run', 'prebuild'], dir);
  const dest = join(work, `pack-${rev ?? 'worktree'}`);
  mkdirSync(dest);
  const [entry] = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', dest], dir));
  return { tarball: join(dest, entry.filename), commit: run('git', ['rev-parse', '--short', rev ?? 'HEAD'], root).trim() };
}

/** Package directories below node_modules, nested ones too. */
function packages(nm) {
  const out = [];
  const visit = (d) => {
    if (!existsSync(d)) return;
    for (const n of readdirSync(d)) {
      if (n.startsWith('.')) continue;
      const p = join(d, n);
      if (n.startsWith('@')) visit(p);
      else if (existsSync(join(p, 'package.json'))) { out.push(p.slice(nm.length + 1)); visit(join(p, 'node_modules')); }
    }
  };
  visit(nm);
  return out;
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
function timeOnce(app, code) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: app, stdio: 'ignore' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`node -e ${code} exited ${r.status}`);
  return ms;
}

function measure(label, tarball, commit) {
  const app = join(work, `app-${label}`);
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', type: 'module', private: true }));
  log(`${label}: npm install --ignore-scripts ${tarball}`);
  run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', tarball], app);
  const nm = join(app, 'node_modules');
  const pkgs = packages(nm);
  const bytes = Number(run('du', ['-sB1', nm], app).split('\t')[0]);
  // The floors' fixtures, written after the install was counted.
  mkdirSync(join(nm, 'mvt-floor-esm'));
  writeFileSync(join(nm, 'mvt-floor-esm', 'package.json'), JSON.stringify({ name: 'mvt-floor-esm', type: 'module', exports: { '.': './index.js' } }));
  writeFileSync(join(nm, 'mvt-floor-esm', 'index.js'), 'export const x = 1;\n');
  const codes = {
    bare: '0',
    floorEsm: "await import('mvt-floor-esm')",
    floorAddon: `import { createRequire } from 'node:module'; createRequire(import.meta.url)('node-gyp-build')(${JSON.stringify(join(nm, 'macvtap'))})`,
    macvtap: "await import('macvtap')",
    vif: "await import('macvtap/vif')",
  };
  const times = Object.fromEntries(Object.keys(codes).map((k) => [k, []]));
  for (const k of Object.keys(codes)) timeOnce(app, codes[k]); // warm the page cache
  for (let i = 0; i < runs; i++) for (const k of Object.keys(codes)) times[k].push(timeOnce(app, codes[k]));
  const stat = (xs) => ({ medianMs: median(xs), minMs: Math.min(...xs), maxMs: Math.max(...xs) });
  const over = (k) => median(times[k].map((x, i) => x - times.bare[i]));
  return {
    label, commit, packages: pkgs.length, packageNames: pkgs, bytes,
    bare: stat(times.bare), importMacvtap: stat(times.macvtap), importVif: stat(times.vif),
    importMacvtapOverBareMs: over('macvtap'), importVifOverBareMs: over('vif'),
    floorEsmOverBareMs: over('floorEsm'), floorAddonOverBareMs: over('floorAddon'),
  };
}

const targets = positionals.length ? positionals : [undefined];
const results = targets.map((rev) => {
  const { tarball, commit } = packAt(rev);
  return measure(rev ?? 'worktree', tarball, commit);
});
const f = (x) => x.toFixed(1);
console.log(`node ${process.version}, ${runs} interleaved rounds; whole processes; "over bare": median of the rounds' differences`);
console.log('| | packages | on disk | node -e 0 | import(\'macvtap\') | over bare | import(\'macvtap/vif\') over bare | floor: empty ESM package | floor: addon via node-gyp-build |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of results) {
  console.log(`| ${r.label} (${r.commit}) | ${r.packages} | ${f(r.bytes / 2 ** 20)} MiB | ${f(r.bare.medianMs)} ms | ` +
    `${f(r.importMacvtap.medianMs)} ms [${f(r.importMacvtap.minMs)}–${f(r.importMacvtap.maxMs)}] | ${f(r.importMacvtapOverBareMs)} ms | ` +
    `${f(r.importVifOverBareMs)} ms | ${f(r.floorEsmOverBareMs)} ms | ${f(r.floorAddonOverBareMs)} ms |`);
}
if (values.json) writeFileSync(values.json, JSON.stringify({ node: process.version, runs, results }, null, 2) + '\n');
