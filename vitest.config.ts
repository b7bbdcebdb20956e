import { fileURLToPath } from 'node:url';
import { configDefaults, defineConfig } from 'vitest/config';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  resolve: {
    // The harness (bench/) imports the library by its package name; in tests both must be the same module instances
    // as the tests' own imports of lib/ (one MacvtapError class, one addon registration), so the name points at the
    // sources here instead of the built dist/ that node_modules/macvtap leads to.
    alias: [
      { find: /^macvtap$/, replacement: here('./lib/index.ts') },
      { find: /^macvtap\/vif$/, replacement: here('./lib/vif/index.ts') },
      { find: /^macvtap\/internal$/, replacement: here('./lib/internal.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    // The 10,000-cycle leak test takes minutes: its own script, `npm run test:leak` (test/hardening/leak.config.ts).
    exclude: [...configDefaults.exclude, 'test/hardening/leak.test.ts'],
    // Privileged suites create namespaces and links; files run one at a time so the kernel-side timings and the
    // /dev/tapN numbering of one file do not disturb another's.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
