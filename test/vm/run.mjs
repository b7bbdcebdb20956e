#!/usr/bin/env node
// Entry of the second-kernel runner (see runner.ts): plain node on Node 20, which cannot load TypeScript by itself,
// so the project's .ts helpers are loaded through ts-loader.mjs.
import { register } from 'node:module';

register('./ts-loader.mjs', import.meta.url);
const { main } = await import('./runner.ts');
process.exitCode = await main(process.argv.slice(2));
