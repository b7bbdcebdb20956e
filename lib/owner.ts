/**
 * Owner tags: every link the package creates carries `IFLA_IFALIAS` = `macvtap:<owner>:<pid>:<starttime>` (unless the
 * caller opts out), so {@link gc} can tell a link whose creating process is gone from one still in use. The start
 * time (field 22 of `/proc/PID/stat`, in clock ticks since boot) makes a reused pid harmless: a new process with the
 * same pid has a different start time.
 */
import { readFileSync } from 'node:fs';
import { invalidValue } from './errors.js';

/** The prefix of every owner tag. */
export const TAG_PREFIX = 'macvtap';
/** The owner used when the caller names none. */
export const DEFAULT_OWNER = 'macvtap';

const OWNER_RE = /^[A-Za-z0-9_.-]{1,64}$/;

/** A parsed owner tag. */
export interface OwnerTag {
  owner: string;
  pid: number;
  /** Field 22 of `/proc/PID/stat` when the tagging process started (clock ticks since boot), as text. */
  starttime: string;
}

/**
 * Field 22 (`starttime`) of `/proc/PID/stat`, or `null` when there is no such process. The second field (`comm`) may
 * hold spaces and parentheses, so fields are counted after its last `)`.
 */
export function processStartTime(pid: number | 'self'): string | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): field 22 is rest[19].
  return rest[19] ?? null;
}

let selfTag: { pid: number; starttime: string } | null = null;

/** The tag this process writes for `owner`: `macvtap:<owner>:<pid>:<starttime>`. */
export function ownerTag(owner: string): string {
  // Re-read after a fork-like pid change (a cached value from a parent would name the parent).
  if (selfTag === null || selfTag.pid !== process.pid) {
    selfTag = { pid: process.pid, starttime: processStartTime('self') ?? '0' };
  }
  return `${TAG_PREFIX}:${owner}:${selfTag.pid}:${selfTag.starttime}`;
}

/** Parses an alias written by {@link ownerTag}; `null` for anything else (a link without our tag). */
export function parseOwnerTag(alias: string | null): OwnerTag | null {
  if (alias === null) return null;
  const m = /^macvtap:([A-Za-z0-9_.-]{1,64}):([1-9][0-9]{0,9}):([0-9]{1,20})$/.exec(alias);
  if (!m) return null;
  return { owner: m[1] as string, pid: Number(m[2]), starttime: m[3] as string };
}

/** Validates an `owner` option (`string` or `false`). @internal */
export function ownerOption(v: unknown): string | false {
  if (v === false) return false;
  if (typeof v !== 'string' || !OWNER_RE.test(v)) {
    throw invalidValue('owner', 'must be false or 1–64 characters of A–Z, a–z, 0–9, "_", ".", "-"', v);
  }
  return v;
}

/**
 * The alias a create request carries: the caller's own `alias` when given (it wins, and the link is then untagged:
 * gc never touches it), otherwise the owner tag unless `owner` is `false`. @internal
 */
export function createAlias(opts: { alias?: unknown; owner?: unknown }, alias: string | undefined): string | undefined {
  const owner = opts.owner === undefined ? DEFAULT_OWNER : ownerOption(opts.owner);
  if (alias !== undefined) return alias;
  return owner === false ? undefined : ownerTag(owner);
}
