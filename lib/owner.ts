/**
 * Owner tags: every link the package creates carries `IFLA_IFALIAS` = `macvtap:<owner>:<pid>:<starttime>` (unless the
 * caller opts out), so {@link gc} can tell a link whose creating process is gone from one still in use. The start
 * time (field 22 of `/proc/PID/stat`, in clock ticks since boot) makes a reused pid harmless: a new process with the
 * same pid has a different start time.
 */
import { invalidValue } from './errors.js';

// Not an ESM import of node:fs: see loader.ts (its facade would load all of streams with the package).
const { readFileSync } = process.getBuiltinModule('node:fs');

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
 * The fields of `/proc/PID/stat`, numbered as proc(5) numbers them: field N is at index N − 1 (`[0]` the pid, `[1]` the
 * command name without its parentheses, `[2]` the state, `[21]` the start time). `null` when there is no such process.
 * The command name may hold spaces and parentheses, so the fields after it are counted from its last `)`.
 * @internal
 */
export function procStat(pid: number | 'self'): string[] | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const open = stat.indexOf('(');
  const close = stat.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  return [stat.slice(0, open).trim(), stat.slice(open + 1, close), ...stat.slice(close + 2).trimEnd().split(' ')];
}

/** Field 22 (`starttime`) of `/proc/PID/stat`, or `null` when there is no such process. */
export function processStartTime(pid: number | 'self'): string | null {
  return procStat(pid)?.[21] ?? null;
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
 * Groups `0x6d400000`–`0x6d7fffff` are reserved: a link the package is creating carries `0x6d400000 | pid` in
 * `IFLA_GROUP` from the create request itself (the kernel honours the group at create but ignores `IFLA_IFALIAS`
 * there), until the change request that follows sets its owner tag and its real group together. A creator killed
 * between the two therefore leaves a link {@link gc} can still recognise as the package's own — by this marker and
 * no alias — instead of an untagged one it must never touch. Linux pids fit the low 22 bits (`PID_MAX_LIMIT`).
 */
export const CONSTRUCTION_GROUP_BASE = 0x6d40_0000;
const CONSTRUCTION_PID_MASK = 0x3f_ffff;

/** The construction marker group of a pid. */
export function constructionGroup(pid: number = process.pid): number {
  return (CONSTRUCTION_GROUP_BASE | (pid & CONSTRUCTION_PID_MASK)) >>> 0;
}

/** The pid of a construction marker group, or `null` for any other group. */
export function constructionPid(group: number): number | null {
  return ((group & ~CONSTRUCTION_PID_MASK) >>> 0) === CONSTRUCTION_GROUP_BASE ? group & CONSTRUCTION_PID_MASK : null;
}

/**
 * The ownership fields of a create request. The caller's own `alias` wins (the link is then untagged: gc never
 * touches it); `owner: false` leaves it untagged too; otherwise the create carries the construction marker as its
 * group and the owner tag plus the real group (`group`, or 0) are set right after. @internal
 */
export function createOwnership(
  opts: { alias?: unknown; owner?: unknown },
  alias: string | undefined,
  group: number | undefined,
): { alias?: string; group?: number; finalGroup?: number } {
  const owner = opts.owner === undefined ? DEFAULT_OWNER : ownerOption(opts.owner);
  if (alias !== undefined) return { alias, ...(group !== undefined && { group }) };
  if (owner === false) return group !== undefined ? { group } : {};
  return { alias: ownerTag(owner), group: constructionGroup(), finalGroup: group ?? 0 };
}
