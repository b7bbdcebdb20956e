/**
 * The packed tarball installs into an empty project and works with no install script and no compiler: npm 11 does not
 * run a dependency's install scripts unless approved, so the prebuilt addon must be in the tarball.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'mvt-pack-'));

function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(cmd, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 });
}

describe('npm pack → install into an empty directory', () => {
  let tarball = '';
  let app = '';

  beforeAll(() => {
    sh('npm', ['run', 'prebuild'], root);
    expect(readdirSync(join(root, 'prebuilds', 'linux-x64')).some((f) => f.endsWith('.node'))).toBe(true);
    const packed = JSON.parse(sh('npm', ['pack', '--json', '--pack-destination', work], root)) as { filename: string; files: { path: string }[] }[];
    const entry = packed[0];
    if (!entry) throw new Error('npm pack printed nothing');
    tarball = join(work, entry.filename);
    const files = entry.files.map((f) => f.path);
    expect(files).toContain('binding.d.ts');
    expect(files.some((f) => /^prebuilds\/linux-x64\/.+\.node$/.test(f))).toBe(true);
    expect(files).toContain('dist/lib/index.js');
    expect(files.some((f) => f.startsWith('test/') || f.startsWith('build/'))).toBe(false);
    app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', type: 'module', private: true }));
  }, 300_000);

  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('installs with scripts ignored and without a compiler on PATH, then loads and answers', () => {
    // A PATH holding only node and npm: no cmake, no g++, no make, no python.
    const bin = join(work, 'bin');
    mkdirSync(bin);
    for (const tool of ['node', 'npm']) symlinkSync(sh('sh', ['-c', `command -v ${tool}`], root).trim(), join(bin, tool));
    const env = { ...process.env, PATH: bin };
    sh(process.execPath, [join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js'), 'install', '--ignore-scripts', '--no-audit', '--no-fund', tarball], app, env);
    expect(existsSync(join(app, 'node_modules', 'macvtap', 'build'))).toBe(false);
    const out = sh(process.execPath, ['--input-type=module', '-e', `
      import { getLink, MacvtapError } from 'macvtap';
      const lo = await getLink('lo');
      let err;
      try { await getLink('mvt-nonexist0'); } catch (e) { err = e; }
      console.log(JSON.stringify({ name: lo.name, ifindex: lo.ifindex, code: err?.code, isMacvtapError: err instanceof MacvtapError }));
    `], app, env);
    expect(JSON.parse(out)).toEqual({ name: 'lo', ifindex: 1, code: 'ENODEV', isMacvtapError: true });
    const help = sh(process.execPath, [join(app, 'node_modules', 'macvtap', 'dist', 'cli', 'macvtap.js'), 'help'], app, env);
    expect(help).toMatch(/Usage: macvtap/);
  }, 300_000);
});
