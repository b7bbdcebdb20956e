import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
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
