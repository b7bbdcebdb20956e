/**
 * The soak runner itself (test/soak, `npm run soak`): a short real run must agree with ip at every check and leave
 * nothing behind; bad options are refused with usage. CI runs it for 2 minutes on its own (.ci/run).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { namespacesOf, TEST_PREFIX } from '../bench/testbed/netns.js';
import { describePrivileged } from './helpers/suite.js';

const root = join(import.meta.dirname, '..');
const entry = join(root, 'test/soak/run.ts');
const register = join(root, 'test/soak/register.mjs');

function soak(args: string[]): ReturnType<typeof spawnSync> {
  return spawnSync(process.execPath, ['--expose-gc', '--import', register, entry, ...args], { encoding: 'utf8', timeout: 120_000 });
}

describePrivileged('soak', () => {
  it('refuses bad options with exit status 2 and the usage', () => {
    const r = soak(['--minutes', 'soon']);
    expect(r.status).toBe(2);
    expect(String(r.stderr)).toMatch(/--minutes must be a number[\s\S]*usage: npm run soak/);
  });

  it('a 12-second run from 2 callers and 2 worker threads: every check agrees with ip, nothing is left', () => {
    const json = join(tmpdir(), `mvt-soak-${process.pid}.json`);
    try {
      const r = soak(['--minutes', '0.2', '--callers', '2', '--workers', '2', '--check-every', '40', '--seed', '7', '--json', json]);
      expect(r.status, String(r.stderr)).toBe(0);
      const f = JSON.parse(readFileSync(json, 'utf8')) as {
        seed: number; operations: number; checks: number; byOp: Record<string, number>;
        leftLinks: string[]; leftDeviceFds: string[]; leftPrivateDirs: string[];
      };
      expect(f.seed).toBe(7);
      expect(f.checks).toBeGreaterThan(1);
      // Every kind of operation ran, from the main thread's callers and the workers together.
      for (const op of ['create', 'set', 'open', 'close', 'move', 'delete']) expect(f.byOp[op], op).toBeGreaterThan(0);
      expect([f.leftLinks, f.leftDeviceFds, f.leftPrivateDirs]).toEqual([[], [], []]);
      // Its namespaces are gone.
      expect(namespacesOf(r.pid, TEST_PREFIX)).toEqual([]);
    } finally {
      rmSync(json, { force: true });
    }
  });
});
