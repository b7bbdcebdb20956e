/**
 * The CNI error result (spec 1.0.0 "Error"; 1.1.0 adds the STATUS codes): `{ cniVersion, code, msg, details }` on
 * stdout and a non-zero exit. Codes below 100 are the spec's well-known ones; 100 and up are this plugin's.
 */

/** The spec's well-known error codes that this plugin uses, and its own (100+). */
export const CNI_ERR = {
  /** Incompatible CNI version (the config's `cniVersion`, or a verb that version does not have). */
  INCOMPATIBLE_VERSION: 1,
  /** Unsupported field in the network configuration (the message names the key and value). */
  UNSUPPORTED_FIELD: 2,
  /** Container unknown or does not exist (`CNI_NETNS` is not a network namespace). */
  UNKNOWN_CONTAINER: 3,
  /** Invalid or missing environment variable. */
  INVALID_ENV: 4,
  /** Failure to decode stdin (not JSON, not an object). */
  DECODING_FAILURE: 6,
  /** Invalid network configuration (a known key with a bad value, or a required key missing). */
  INVALID_CONFIG: 7,
  /** Try again later (the kernel said `EBUSY`/`EAGAIN`). */
  TRY_AGAIN_LATER: 11,
  /** STATUS: the plugin cannot serve ADD now (the master is missing or down). */
  NOT_AVAILABLE: 50,
  /** The kernel refused an operation (details: errno name, syscall, device). */
  KERNEL: 100,
  /** The IPAM plugin could not be found, failed without a CNI error, or printed something that is not a result. */
  IPAM: 101,
  /** CHECK found the attachment different from its config or `prevResult` (the message names each difference). */
  CHECK_MISMATCH: 102,
} as const;

/** One CNI error: what the plugin prints and exits non-zero with. */
export class CniError extends Error {
  override name = 'CniError';
  readonly code: number;
  readonly details: string | undefined;

  constructor(code: number, msg: string, details?: string) {
    super(msg);
    this.code = code;
    this.details = details;
  }

  /** The spec's error object for `cniVersion`. */
  toJSON(cniVersion: string): { cniVersion: string; code: number; msg: string; details?: string } {
    return { cniVersion, code: this.code, msg: this.message, ...(this.details !== undefined && { details: this.details }) };
  }
}

/**
 * A library error as a CNI error: a kernel refusal ({@link MacvtapError}-shaped: `code`, `syscall`) is 100, or 11 for
 * `EBUSY`/`EAGAIN` (the runtime may retry); a CNI error stays what it is; anything else (a bug) is 100 with its
 * message.
 */
export function toCniError(e: unknown, what: string): CniError {
  if (e instanceof CniError) return e;
  const err = e as { code?: unknown; syscall?: unknown; message?: unknown; device?: unknown; path?: unknown };
  const message = typeof err?.message === 'string' ? err.message : String(e);
  if (typeof err?.code === 'string' && typeof err.syscall === 'string') {
    const details = [`errno ${err.code}`, `syscall ${err.syscall}`];
    if (typeof err.device === 'string') details.push(`device ${err.device}`);
    if (typeof err.path === 'string') details.push(`path ${err.path}`);
    const code = err.code === 'EBUSY' || err.code === 'EAGAIN' ? CNI_ERR.TRY_AGAIN_LATER : CNI_ERR.KERNEL;
    return new CniError(code, `${what}: ${message}`, details.join(', '));
  }
  return new CniError(CNI_ERR.KERNEL, `${what}: ${message}`);
}
