#!/usr/bin/env node
// npm run fuzz [-- --seconds N] [--only TARGET]
// Builds the libFuzzer targets (clang-14, build-fuzz/), records seed corpora from real kernel replies and real frames
// (as root, in a throwaway namespace mvt-fuzz-<pid>, removed on exit and on SIGINT/SIGTERM), then runs each target
// for N seconds (default 60) on fuzz/corpus-<target>/. Fails on any crash, timeout or sanitizer report; prints each
// target's executions, coverage and corpus size.
// npm run test:native (--faults): builds the fault-injection program (mvt-faults) and runs it on crafted replies and,
// as root, on replies recorded for it into a temporary directory.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const buildDir = join(root, 'build-fuzz');
const binDir = join(buildDir, 'native/fuzz');
const fuzzDir = join(root, 'fuzz');
const TARGETS = ['fuzz_netlink', 'fuzz_attrs', 'fuzz_link', 'fuzz_events', 'fuzz_frame', 'fuzz_nftmsg', 'fuzz_tcmsg'];
const CXX = process.env.MACVTAP_FUZZ_CXX ?? 'clang++-14';

function parseArgs(argv) {
  const opts = { seconds: 60, only: null, faults: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--seconds') {
      opts.seconds = Number(argv[++i]);
      if (!Number.isInteger(opts.seconds) || opts.seconds < 1 || opts.seconds > 86400) {
        throw new RangeError('--seconds must be an integer from 1 to 86400');
      }
    } else if (a === '--only') {
      opts.only = argv[++i];
      if (!TARGETS.includes(opts.only)) throw new RangeError(`--only must be one of ${TARGETS.join(', ')}`);
    } else if (a === '--faults') {
      opts.faults = true;
    } else {
      throw new RangeError(`unknown argument ${a}`);
    }
  }
  return opts;
}

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', timeout: 15 * 60 * 1000, ...options });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}`);
  return r;
}

/** Configures and builds `targets` (default: everything in native/fuzz) with clang into build-fuzz/. */
function build(targets = ['mvt-fuzz']) {
  if (spawnSync(CXX, ['--version']).status !== 0) {
    throw new Error(`${CXX} not found: apt-get install clang-14 libclang-rt-14-dev (or set MACVTAP_FUZZ_CXX)`);
  }
  run('cmake', ['-S', root, '-B', buildDir, '-DMACVTAP_FUZZ=ON', `-DCMAKE_CXX_COMPILER=${CXX}`,
    '-DCMAKE_BUILD_TYPE=RelWithDebInfo'], { stdio: ['ignore', 'ignore', 'inherit'] });
  run('cmake', ['--build', buildDir, '--target', ...targets, '-j2']);
}

// ---- seeds ----

const ns = `mvt-fuzz-${process.pid}`;
let nsMade = false;
/** The fuzzer running now, killed by its pid if we are interrupted. */
let current = null;

function ip(...args) {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

function removeNamespace() {
  if (!nsMade) return;
  nsMade = false;
  spawnSync('ip', ['netns', 'del', ns], { timeout: 30_000 });
}

/** Records real replies and frames into `outDir`/corpus-<target>/ (root only). False when it was skipped. */
function recordSeeds(outDir) {
  if (process.getuid?.() !== 0) {
    console.log('fuzz: NOT recording seeds (needs root for a namespace); running on the existing corpora only');
    return false;
  }
  try {
    ip('netns', 'add', ns);
    nsMade = true;
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'link', 'add', 'mvt-va', 'type', 'veth', 'peer', 'name', 'mvt-vb');
    ip('-n', ns, 'link', 'set', 'mvt-va', 'up');
    ip('-n', ns, 'addr', 'add', '10.77.0.1/24', 'dev', 'mvt-vb');
    ip('-n', ns, 'link', 'set', 'mvt-vb', 'up');
    ip('-n', ns, 'link', 'add', 'link', 'mvt-va', 'name', 'mvt-tap0', 'type', 'macvtap', 'mode', 'bridge');
    ip('-n', ns, 'link', 'set', 'mvt-tap0', 'up');
    const mac = JSON.parse(ip('-n', ns, '-j', 'link', 'show', 'mvt-tap0'))[0].address;
    // Tables for fuzz_nftmsg's seeds: one as applyPortSecurity makes it (our comment), one that is not ours.
    run('ip', ['netns', 'exec', ns, 'nft', 'add table netdev mvtps-mvt-tap0 { comment "macvtap-ps ifindex=1 owner=macvtap:fuzz:1:1"; }; add table netdev mvtps-foreign']);
    run('ip', ['netns', 'exec', ns, join(binDir, 'mvt-record'), outDir, mac], { timeout: 120_000 });
  } finally {
    removeNamespace();
  }
  return true;
}

// ---- fuzzing ----

function fuzzOne(target, seconds) {
  const corpus = join(fuzzDir, `corpus-${target}`);
  const artifacts = join(fuzzDir, 'artifacts');
  mkdirSync(corpus, { recursive: true });
  mkdirSync(artifacts, { recursive: true });
  const seeds = readdirSync(corpus).length;
  return new Promise((resolvePromise) => {
    const args = [`-max_total_time=${seconds}`, '-timeout=10', '-rss_limit_mb=2048', '-print_final_stats=1',
      `-artifact_prefix=${artifacts}/${target}-`, corpus];
    const child = spawn(join(binDir, target), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    current = child;
    let log = '';
    const keep = (d) => { log = (log + d.toString()).slice(-200_000); };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    // libFuzzer stops itself after max_total_time; this is the bound should it not.
    const killer = setTimeout(() => child.kill('SIGKILL'), (seconds + 120) * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      current = null;
      const num = (re) => { const m = log.match(re); return m ? Number(m[1]) : null; };
      const cov = [...log.matchAll(/cov: (\d+) ft: (\d+) corp: (\d+)/g)].pop();
      const bad = /ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|check failed:/.test(log);
      resolvePromise({
        target, seeds, code, signal, ok: code === 0 && !bad,
        execs: num(/stat::number_of_executed_units: (\d+)/),
        cov: cov ? Number(cov[1]) : null, features: cov ? Number(cov[2]) : null, corpus: cov ? Number(cov[3]) : null,
        log,
      });
    });
  });
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      if (current) current.kill('SIGKILL');
      removeNamespace();
      process.exit(130);
    });
  }
  if (opts.faults) {
    build(['mvt-faults', 'mvt-record']);
    const recorded = mkdtempSync('/tmp/mvt-fuzz-rec-');
    try {
      const args = recordSeeds(recorded) ? ['--recorded', recorded] : [];
      run(join(binDir, 'mvt-faults'), args, { timeout: 10 * 60 * 1000 });
    } finally {
      rmSync(recorded, { recursive: true, force: true });
    }
    return;
  }
  build();
  recordSeeds(fuzzDir);
  const targets = opts.only ? [opts.only] : TARGETS;
  const results = [];
  for (const t of targets) {
    console.log(`fuzz: ${t} for ${opts.seconds} s`);
    const r = await fuzzOne(t, opts.seconds);
    results.push(r);
    if (!r.ok) console.error(r.log.split('\n').slice(-60).join('\n'));
  }
  // start: corpus files before the run (recorded seeds + what earlier runs kept); corpus: libFuzzer's count at the end.
  console.log('\ntarget         start  executions   exec/s  coverage  features  corpus  result');
  for (const r of results) {
    const rate = r.execs == null ? '-' : String(Math.round(r.execs / opts.seconds));
    console.log(`${r.target.padEnd(13)} ${String(r.seeds).padStart(6)} ${String(r.execs ?? '-').padStart(11)} ` +
      `${rate.padStart(8)} ${String(r.cov ?? '-').padStart(9)} ${String(r.features ?? '-').padStart(9)} ` +
      `${String(r.corpus ?? '-').padStart(7)}  ${r.ok ? 'ok' : `FAILED (exit ${r.code ?? r.signal})`}`);
  }
  if (results.some((r) => !r.ok)) {
    console.error(`fuzz: failures; reproducers are in ${join(fuzzDir, 'artifacts')}`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    removeNamespace();
    console.error(`fuzz: ${e.message}`);
    process.exitCode = 1;
  });
}
