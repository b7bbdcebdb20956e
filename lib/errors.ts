/**
 * Errors. Kernel and syscall refusals are {@link MacvtapError}, shaped like Node's `SystemError`; bad input is a
 * `TypeError`/`RangeError` with Node's `code`s, thrown before anything reaches the kernel.
 */
import type { NativeErrorFields } from '../binding.js';

/**
 * A refusal from the kernel or a syscall, shaped like Node's `SystemError`.
 *
 * @example
 * ```ts
 * try { await createMacvtap({ lower: 'eth9' }); }
 * catch (e) { if (e instanceof MacvtapError && e.code === 'ENODEV') … }
 * ```
 */
export class MacvtapError extends Error {
  /** errno name: `'EEXIST'`, `'ENODEV'`, `'EADDRINUSE'`, `'EBUSY'`, `'EPERM'`, `'EOPNOTSUPP'`, … */
  readonly code: string;
  /** Negative errno (Node's convention). */
  readonly errno: number;
  /** What was refused: `'RTM_NEWLINK'`, `'RTM_DELLINK'`, `'ioctl(TUNSETIFF)'`, `'open'`, `'setns'`, … */
  readonly syscall: string;
  /** The file involved (`/dev/tap12`, `/run/netns/x`), when there is one. */
  readonly path?: string;
  /** The link the operation was about, when there is one. */
  readonly device?: string;
  /** The kernel's extended-ack text, when it sent one (also part of `message`). */
  readonly extack?: string;

  /** @internal Built by the library from the addon's error fields. */
  constructor(fields: NativeErrorFields, message: string) {
    super(message);
    this.name = 'MacvtapError';
    this.code = fields.code;
    this.errno = fields.errno;
    this.syscall = fields.syscall;
    if (fields.path !== undefined) this.path = fields.path;
    if (fields.device !== undefined) this.device = fields.device;
    if (fields.extack !== undefined) this.extack = fields.extack;
  }
}

function isNativeError(e: unknown): e is Error & NativeErrorFields {
  return e instanceof Error && typeof (e as Partial<NativeErrorFields>).code === 'string' &&
    typeof (e as Partial<NativeErrorFields>).errno === 'number' && typeof (e as Partial<NativeErrorFields>).syscall === 'string';
}

/**
 * Turns an addon error into a {@link MacvtapError} (whose stack the caller sets: the addon's own ends at the event
 * loop). `EPERM`/`EACCES` get a message saying what is missing.
 */
export function fromNative(e: unknown): unknown {
  if (!isNativeError(e)) return e;
  let message = e.message;
  if ((e.code === 'EPERM' || e.code === 'EACCES') && !/CAP_NET_ADMIN/.test(message)) {
    message += ' (this needs CAP_NET_ADMIN in the network namespace: run as root or grant the capability)';
  }
  return new MacvtapError(e, message);
}

/** Gives a {@link MacvtapError} the stack of whoever called `below` (the frames of `below` and above left out). */
function withStackBelow(err: unknown, below: (...args: never[]) => unknown): unknown {
  if (err instanceof MacvtapError) Error.captureStackTrace(err, below);
  return err;
}

/**
 * Runs one async addon call; an addon error becomes a {@link MacvtapError} here, after the await, so its stack is
 * V8's async stack trace: the awaiting callers (`at async createMacvtap`, `at async <your function>`), as Node's own
 * `fs/promises` errors have. (Capturing the caller's stack before every call instead cost a stack walk per call, paid
 * by every call that succeeds.)
 * @internal
 */
export async function callNative<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw withStackBelow(fromNative(e), callNative);
  }
}

/** Same as {@link callNative} for synchronous addon calls: the error's stack is the caller's. @internal */
export function callNativeSync<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw withStackBelow(fromNative(e), callNativeSync);
  }
}

/**
 * An `AbortError` like Node's own (`name` 'AbortError', `code` 'ABORT_ERR'), the signal's reason as its `cause`.
 * @internal
 */
export function abortError(message: string, signal: AbortSignal): Error {
  const e = new Error(message, { cause: signal.reason }) as Error & { code: string };
  e.name = 'AbortError';
  e.code = 'ABORT_ERR';
  return e;
}

/** `TypeError` with Node's `ERR_INVALID_ARG_TYPE`. @internal */
export function invalidType(name: string, expected: string, actual: unknown): TypeError {
  const err = new TypeError(`The "${name}" option must be ${expected}. Received ${describe(actual)}`);
  (err as TypeError & { code: string }).code = 'ERR_INVALID_ARG_TYPE';
  return err;
}

/** `TypeError` with Node's `ERR_INVALID_ARG_VALUE`. @internal */
export function invalidValue(name: string, reason: string, actual: unknown): TypeError {
  const err = new TypeError(`The "${name}" option ${reason}. Received ${describe(actual)}`);
  (err as TypeError & { code: string }).code = 'ERR_INVALID_ARG_VALUE';
  return err;
}

/** `RangeError` with Node's `ERR_OUT_OF_RANGE`. @internal */
export function outOfRange(name: string, range: string, actual: unknown): RangeError {
  const err = new RangeError(`The "${name}" option must be ${range}. Received ${describe(actual)}`);
  (err as RangeError & { code: string }).code = 'ERR_OUT_OF_RANGE';
  return err;
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean' || v == null) return String(v);
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  return `type ${typeof v}`;
}
