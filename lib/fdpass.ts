/**
 * Handing fds to another process over a Unix socket with `SCM_RIGHTS` — for a driver that opens queues in a privileged
 * agent and passes them to an unprivileged QEMU launcher. (To a child you spawn, pass `queue.fd` in `stdio` instead.)
 */
import { binding } from './binding.js';
import { callNative, invalidType } from './errors.js';
import * as v from './validate.js';

function endpoint(option: string, x: unknown): string | number {
  if (typeof x === 'number') return v.integer(option, x, 0, 2 ** 31 - 1);
  if (typeof x === 'string' && x.length > 0 && Buffer.byteLength(x) < 108 && !x.includes('\0')) return x;
  throw invalidType(option, 'a Unix socket path (under 108 bytes) or a socket fd', x);
}

/**
 * Sends fds (and an optional payload, e.g. JSON describing them) in one `SCM_RIGHTS` message. `target` is a socket
 * path (connected, sent, closed) or the fd of a connected Unix stream socket. The sender keeps its own fds: close or
 * detach them afterwards as you wish.
 */
export async function sendFds(target: string | number, fds: number[], payload?: Uint8Array): Promise<void> {
  const t = endpoint('target', target);
  if (!Array.isArray(fds) || fds.length === 0 || fds.length > 253) throw invalidType('fds', 'an array of 1 to 253 fds', fds);
  const list = fds.map((fd, i) => v.integer(`fds[${i}]`, fd, 0, 2 ** 31 - 1));
  const data = payload === undefined ? Buffer.alloc(0) : Buffer.from(payload);
  await callNative(() => binding.sendFds(t, list, data));
}

/**
 * Receives one `SCM_RIGHTS` message. `source` is a socket path to listen on (must not exist; one connection is
 * accepted, then the path is removed) or the fd of a connected Unix stream socket. The received fds are close-on-exec
 * and owned by the caller: close them with `fs.closeSync`, or pass them on.
 */
export async function recvFds(source: string | number, options?: { timeout?: number }): Promise<{ fds: number[]; payload: Buffer }> {
  const s = endpoint('source', source);
  const opts = v.options('options', options);
  v.knownKeys('options', opts, ['timeout']);
  const timeout = opts.timeout === undefined ? 10_000 : v.integer('timeout', opts.timeout, 0, 2 ** 31 - 1);
  const res = await callNative(() => binding.recvFds(s, timeout));
  // The addon tracks received fds as its own; the caller owns these ones, so stop tracking them.
  for (const fd of res.fds) binding.fdRelease(fd);
  return res;
}
