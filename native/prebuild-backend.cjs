#!/usr/bin/env node
// prebuildify's compile step, done by cmake-js: prebuildify runs its `--node-gyp` command as
// `<cmd> rebuild --target=… --devdir=… --arch=… --release|--debug` in the package it packs, then moves and strips that
// package's build/Release/*.node into its prebuilds/<platform>-<arch>/. Both packages use it: from the root
// (`npm run prebuild`: macvtap.node) and from bench/ (`npm run prebuild -w macvtap-bench`: macvtap_bench.node, which
// the top-level CMakeLists.txt writes to bench/build/Release/). Either way the whole tree is configured and built once
// from the top level. The addon is N-API (version pinned in CMakeLists.txt), so the Node target version does
// not change the binary; only the build type and arch are passed on.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const args = process.argv.slice(2);
if (args[0] !== 'rebuild') {
  console.error(`prebuild-backend: expected "rebuild" from prebuildify, got ${JSON.stringify(args)}`);
  process.exit(2);
}
const arch = args.find((a) => a.startsWith('--arch='))?.slice('--arch='.length);
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const cmd = [cmakeJs, 'rebuild', '--out', 'build', ...(args.includes('--debug') ? ['--debug'] : [])];
if (arch) cmd.push('--arch', arch);
const r = spawnSync(process.execPath, cmd, { stdio: 'inherit', cwd: path.resolve(__dirname, '..') });
process.exit(r.status ?? 1);
