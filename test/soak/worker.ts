/**
 * A soak actor on a worker thread. Messages in: `{ type: 'pause' }` (finish the current operation, reply `paused`
 * with the model), `{ type: 'resume' }`, `{ type: 'stop' }` (close and delete everything, reply `stopped`). Out:
 * `paused`, `stopped`, or `failed` with the error.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Actor } from './actor.js';

interface Data {
  id: number;
  netns: string[];
  lower: string;
  seed: number;
}

const port = parentPort!;
const data = workerData as Data;
const actor = new Actor(data.id, data.netns, data.lower, data.seed);
let paused = false;
let stopping = false;
let wake: (() => void) | null = null;

port.on('message', (m: { type: string }) => {
  if (m.type === 'pause') paused = true;
  else if (m.type === 'stop') stopping = true;
  else if (m.type === 'resume') paused = false;
  wake?.();
});

try {
  for (;;) {
    if (stopping) break;
    if (paused) {
      // Each worker has its own V8 heap: collect it too, so RSS samples show what is really held (--expose-gc is
      // inherited from the main thread's execArgv).
      (globalThis as { gc?: () => void }).gc?.();
      port.postMessage({ type: 'paused', model: actor.model(), counts: actor.counts });
      await new Promise<void>((r) => (wake = r));
      wake = null;
      continue;
    }
    await actor.step();
  }
  await actor.finish();
  port.postMessage({ type: 'stopped', counts: actor.counts });
} catch (e) {
  port.postMessage({ type: 'failed', message: (e as Error).message, code: (e as { code?: string }).code });
}
