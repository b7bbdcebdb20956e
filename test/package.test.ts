/**
 * The two packed tarballs, installed as their users would: into an empty project, with no install script run (npm 11
 * runs a dependency's install scripts only when approved) and no compiler on PATH, so each prebuilt addon must be in
 * its tarball.
 *
 * - `macvtap` alone — what a driver depends on: its install stays small (counted packages and bytes on disk), its
 *   addon carries nothing of the benchmark, and it loads and answers.
 * - `macvtap-bench` beside it — the harness installs on its own, with its own prebuilt addon, and `macvtap-bench
 *   --quick` runs from that install.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describePrivileged } from './helpers/suite.js';

const root = resolve(import.meta.dirname, '..');
const bench = join(root, 'bench');
const work = mkdtempSync(join(tmpdir(), 'mvt-pack-'));

/** A driver's budget for what installing the library brings (the targets; the README reports the figures). */
const MAX_PACKAGES = 8;
const MAX_BYTES = 15 * 1024 * 1024;
/** Names only the benchmark's natives use; none may appear in the library's addon, not even as a string. */
const BENCH_NATIVE = /endpoint|histogram|packetOpen|frameCapture|PacketOpen|FrameCapture|rawGetLinkLoop|RawGetLinkLoop|sniff|pingpong/i;

function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env, timeout = 240_000): string {
  return execFileSync(cmd, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout });
}

interface Packed { filename: string; files: { path: string }[] }

function pack(dir: string): { tarball: string; files: string[] } {
  const packed = JSON.parse(sh('npm', ['pack', '--json', '--pack-destination', work], dir)) as Packed[];
  const entry = packed[0];
  if (!entry) throw new Error(`npm pack in ${dir} printed nothing`);
  return { tarball: join(work, entry.filename), files: entry.files.map((f) => f.path) };
}

/** Every installed package directory (a directory with a package.json) under `node_modules`, nested ones too. */
function installedPackages(nodeModules: string): string[] {
  const out: string[] = [];
  const visit = (dir: string): void => {
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir)) {
      if (name.startsWith('.')) continue;
      const p = join(dir, name);
      if (name.startsWith('@')) { visit(p); continue; }
      if (existsSync(join(p, 'package.json'))) {
        out.push(p);
        visit(join(p, 'node_modules'));
      }
    }
  };
  visit(nodeModules);
  return out;
}

/** Bytes on disk below `dir` (allocated blocks, as `du` counts them). */
function diskBytes(dir: string): number {
  return Number(sh('du', ['-sB1', dir], work).split('\t')[0]);
}

/** A PATH holding only node and npm: no cmake, no g++, no make, no python. */
function bareEnv(): NodeJS.ProcessEnv {
  const bin = join(work, 'bin');
  if (!existsSync(bin)) {
    mkdirSync(bin);
    for (const tool of ['node', 'npm']) symlinkSync(sh('sh', ['-c', `command -v ${tool}`], root).trim(), join(bin, tool));
  }
  return { ...process.env, PATH: bin };
}

function npmInstall(app: string, tarballs: string[]): void {
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', type: 'module', private: true }));
  const npmCli = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
  sh(process.execPath, [npmCli, 'install', '--ignore-scripts', '--no-audit', '--no-fund', ...tarballs], app, bareEnv(), 400_000);
}

describe('npm pack → install into an empty directory', () => {
  let lib = { tarball: '', files: [] as string[] };
  let harness = { tarball: '', files: [] as string[] };

  beforeAll(() => {
    sh('npm', ['run', 'prebuild'], root, process.env, 400_000);
    sh('npm', ['run', 'prebuild'], bench, process.env, 400_000);
    lib = pack(root);
    harness = pack(bench);
  }, 900_000);

  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('the library tarball holds the library and its prebuild, nothing of the harness', () => {
    expect(lib.files).toContain('binding.d.ts');
    expect(lib.files).toContain('dist/lib/index.js');
    expect(lib.files).toContain('prebuilds/linux-x64/macvtap.node');
    const strays = lib.files.filter((f) => /^(test|bench|build|native\/bench|native\/fuzz)\//.test(f) || /macvtap_bench|macvtap-bench/.test(f));
    expect(strays).toEqual([]);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(Object.keys(pkg.dependencies).sort()).toEqual(['fast-xml-parser', 'node-gyp-build']);
  });

  it("the library's addon exports nothing only the benchmark uses (nm -D, its strings, its exports object)", () => {
    const addon = join(root, 'prebuilds', 'linux-x64', 'macvtap.node');
    const dynamic = sh('nm', ['-D', '--defined-only', addon], root);
    expect(dynamic.split('\n').filter((l) => BENCH_NATIVE.test(l))).toEqual([]);
    expect(dynamic).toMatch(/napi_register_module_v1/);
    // Stripped and hidden, the file still holds its string literals and type names: none of the benchmark's.
    const strings = sh('strings', ['-n', '6', addon], root).split('\n').filter((l) => BENCH_NATIVE.test(l));
    expect(strings).toEqual([]);
    const out = sh(process.execPath, ['-e', `console.log(JSON.stringify(Object.keys(require(${JSON.stringify(addon)}))))`], root);
    const keys = JSON.parse(out) as string[];
    expect(keys).toContain('linkCreate');
    expect(keys.filter((k) => BENCH_NATIVE.test(k))).toEqual([]);
    // The harness's addon has them (the test above would pass vacuously on a pattern that matches nothing).
    const benchAddon = join(bench, 'prebuilds', 'linux-x64', 'macvtap-bench.node');
    expect(sh('strings', ['-n', '6', benchAddon], root)).toMatch(BENCH_NATIVE);
  });

  it(`installs alone with scripts ignored and no compiler: ≤ ${MAX_PACKAGES} packages, ≤ 15 MB, then loads and answers`, () => {
    const app = join(work, 'app');
    npmInstall(app, [lib.tarball]);
    expect(existsSync(join(app, 'node_modules', 'macvtap', 'build'))).toBe(false);
    const packages = installedPackages(join(app, 'node_modules')).map((p) => p.slice(join(app, 'node_modules').length + 1));
    const bytes = diskBytes(join(app, 'node_modules'));
    process.stderr.write(`package test: npm install macvtap → ${packages.length} packages (${packages.join(', ')}), ${(bytes / 2 ** 20).toFixed(1)} MiB\n`);
    expect(packages.length).toBeLessThanOrEqual(MAX_PACKAGES);
    expect(bytes).toBeLessThanOrEqual(MAX_BYTES);
    expect(packages.some((p) => /vega|zod|cli-progress|xmlbuilder2|macvtap-bench/.test(p))).toBe(false);
    const env = bareEnv();
    const out = sh(process.execPath, ['--input-type=module', '-e', `
      import { getLink, MacvtapError } from 'macvtap';
      import { parseVif, toInterfaceXml } from 'macvtap/vif';
      const lo = await getLink('lo');
      let err;
      try { await getLink('mvt-nonexist0'); } catch (e) { err = e; }
      const vif = parseVif({ id: '5e7a0c5e-1e3a-4c3e-9d1e-0b2a7e4c9f10', address: 'fa:16:3e:12:34:56', type: 'macvtap',
        network: { bridge: null, meta: { mtu: 1500 } },
        details: { macvtap_source: 'eth1', macvtap_mode: 'bridge', physical_interface: 'eth1' } });
      console.log(JSON.stringify({ name: lo.name, ifindex: lo.ifindex, code: err?.code, isMacvtapError: err instanceof MacvtapError,
        xml: /<source dev="eth1" mode="bridge"\\/>/.test(toInterfaceXml(vif)) }));
    `], app, env);
    expect(JSON.parse(out)).toEqual({ name: 'lo', ifindex: 1, code: 'ENODEV', isMacvtapError: true, xml: true });
    const cli = join(app, 'node_modules', 'macvtap', 'dist', 'cli', 'macvtap.js');
    expect(sh(process.execPath, [cli, 'help'], app, env)).toMatch(/Usage: macvtap/);
    // Without the harness, `macvtap bench` says in one line how to get it.
    const r = spawnSync(process.execPath, [cli, 'bench', '--quick'], { cwd: app, env, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual(['macvtap bench: the benchmark harness is not installed: npm install macvtap-bench (then run macvtap-bench or macvtap bench)']);
  }, 600_000);

  it('the harness tarball holds its own prebuilt addon and compiled code, not the library', () => {
    expect(harness.files).toContain('prebuilds/linux-x64/macvtap-bench.node');
    expect(harness.files).toContain('dist/cli.js');
    expect(harness.files.filter((f) => /^(lib|native|test|build)\//.test(f) || f.endsWith('macvtap.node'))).toEqual([]);
  });

  describePrivileged('the harness installed beside the library', () => {
    it('installs with scripts ignored and no compiler, and `macvtap-bench --quick` runs from that install', () => {
      const app = join(work, 'app-bench');
      npmInstall(app, [lib.tarball, harness.tarball]);
      const installed = join(app, 'node_modules', 'macvtap-bench');
      expect(existsSync(join(installed, 'build'))).toBe(false);
      // It uses the library installed beside it, not a copy of its own.
      expect(existsSync(join(installed, 'node_modules', 'macvtap'))).toBe(false);
      const json = join(work, 'quick.json');
      const env = { ...bareEnv(), PATH: `${join(app, 'node_modules', '.bin')}:${bareEnv().PATH}:/usr/sbin:/usr/bin:/sbin:/bin` };
      const r = spawnSync(join(app, 'node_modules', '.bin', 'macvtap-bench'), ['--quick', '--no-guest', '--quiet', '--json', json],
        { cwd: app, env, encoding: 'utf8', timeout: 300_000 });
      expect(r.status, `${r.stderr}`).toBe(0);
      const report = JSON.parse(readFileSync(json, 'utf8')) as { rows: { label: string }[] };
      expect(report.rows.length).toBeGreaterThan(0);
      expect(new Set(report.rows.map((x) => x.label))).toContain('macvtap-bridge');
      expect(statSync(json).size).toBeGreaterThan(0);
    }, 900_000);
  });
});
