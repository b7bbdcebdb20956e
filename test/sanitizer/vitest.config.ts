/**
 * vitest config of `npm run test:asan` (test/sanitizer/run.sh): the main config plus a setup file that lets fork
 * workers end through exit() when vitest stops them, so LeakSanitizer's exit-time check runs in them too.
 */
import { defineConfig, mergeConfig } from 'vitest/config';
import base from '../../vitest.config.js';

export default mergeConfig(base, defineConfig({ test: { setupFiles: ['test/sanitizer/setup.ts'] } }));
