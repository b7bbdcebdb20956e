import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Privileged suites create namespaces and links; files run one at a time so the kernel-side timings and the
    // /dev/tapN numbering of one file do not disturb another's.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
