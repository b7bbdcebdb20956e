// `node --import ./test/soak/register.mjs test/soak/run.ts`: the soak runs from its TypeScript sources (it is a test
// tool, not compiled into either package), through the same transpiling hook the VM runner uses. Worker threads
// inherit `--import`, so the soak's workers load their .ts files the same way.
import { register } from 'node:module';

register('../vm/ts-loader.mjs', import.meta.url);
