/**
 * vitest config of `npm run test:leak`: only the 10,000-cycle leak test, which takes minutes and so is not part of
 * `npm test` (the main config excludes it).
 */
import { defineConfig } from 'vitest/config';
import base from '../../vitest.config.js';

export default defineConfig({
  resolve: base.resolve,
  test: {
    include: ['test/hardening/leak.test.ts'],
    testTimeout: 60 * 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
