#!/usr/bin/env node
/** `macvtap-bench …`: the harness's own command, the same as `macvtap bench …` of the library's CLI. */
import { benchMain } from './index.js';

benchMain(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`macvtap-bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  },
);
