/**
 * Tap nodes for an unprivileged consumer: a character node of one macvtap's own device, owned by the VMM's uid/gid,
 * so a QEMU (or cloud-hypervisor, firecracker, …) that runs without `CAP_NET_ADMIN` can open its queues itself.
 *
 * Robustness, in the order things happen:
 * - The device numbers are the link's own, read from `/sys/class/net/NAME/macvtap/tapIFINDEX/dev` in the link's
 *   namespace (a private sysfs view), never guessed from `/dev/tap<ifindex>`: ifindexes are per namespace while
 *   `/dev` is global, so that name can belong to another namespace's macvtap.
 * - A record `/run/macvtap/nodes/ID.json` (directory ours, not writable by others) is written atomically
 *   **before** the node exists: it names the node's path, its `major:minor`, the link's ifindex and its namespace
 *   (inode, and path when given), and the creator's owner tag. A crash at any point therefore leaves either nothing,
 *   a record without a node, or a record with its node — never an unrecorded node.
 * - The node is made `0600` root-owned (`mknod` never replaces an existing path), then given the owner, then the
 *   mode: it is never open to anyone before it is what was asked for. The link is read again after the `mknod`; had it
 *   changed meanwhile, the node is removed and the call fails.
 * - The node goes away through {@link TapNode.remove}, or in {@link gc} when its link is gone or its `major:minor` is
 *   another device's now (macvtap minors are reused: a stale node would open the next macvtap that gets them), or when
 *   its recorded namespace path no longer names that namespace. A new node for a `major:minor` also removes any
 *   record of the same numbers made for another link (stale by definition). A file is only ever unlinked when it still is a character device
 *   of the recorded numbers, so a path reused for something else is left alone.
 */
import { binding } from './binding.js';
import { callNative, invalidType, invalidValue, outOfRange } from './errors.js';
import { ownerOption, ownerTag, parseOwnerTag, DEFAULT_OWNER } from './owner.js';
import type { CreateTapNodeOptions, LinkInfo, LinkRef, Netns, TapNode } from './types.js';
import * as v from './validate.js';

// Not an ESM import of node:fs/node:path: see loader.ts (its facade would load all of streams with the package).
const fs = process.getBuiltinModule('node:fs');
const nodePath = process.getBuiltinModule('node:path');

/** Where records live: tmpfs, gone at reboot like the links. */
export const TAP_NODE_DIR = '/run/macvtap/nodes';
/**
 * Where nodes go by default: `/dev` is devtmpfs, which always allows device nodes (systemd mounts `/run` `nodev`, where
 * a node could be made but never opened).
 */
export const TAP_NODE_DEV_DIR = '/dev/macvtap';

/** What `ID.json` holds. @internal */
export interface TapNodeRecord {
  version: 1;
  path: string;
  major: number;
  minor: number;
  ifindex: number;
  name: string;
  /** `st_dev`/`st_ino` of the link's network namespace. */
  netnsId: { dev: number; ino: number };
  /** The namespace's path as the caller gave it (lets gc tell a deleted namespace), or `null`. */
  netnsPath: string | null;
  owner: string;
  uid: number;
  gid: number;
  mode: number;
}

const NODE_KEYS = ['path', 'uid', 'gid', 'mode', 'netns', 'owner'] as const;
/** `(uid_t)-1` means "unchanged" to chown(2): not an owner. */
const ID_MAX = 0xffff_fffe;

function idOption(name: string, x: unknown): number {
  if (typeof x !== 'number') throw invalidType(name, 'an integer 0–4294967294', x);
  if (!Number.isInteger(x) || x < 0 || x > ID_MAX) throw outOfRange(name, '0–4294967294 (an integer; -1 is not an id)', x);
  return x;
}

/** The identity of a namespace as the addon would enter it (`null`: this thread's, i.e. the process's). @internal */
export function netnsIdentity(ns: Netns | null): { dev: number; ino: number } {
  const st = ns === null ? fs.statSync('/proc/self/ns/net') : typeof ns === 'number' ? fs.fstatSync(ns) : fs.statSync(ns);
  return { dev: st.dev, ino: st.ino };
}

/** `st_rdev` → major/minor (glibc's encoding). */
function devOf(rdev: number): { major: number; minor: number } {
  const r = BigInt(rdev);
  return { major: Number(((r >> 8n) & 0xfffn) | ((r >> 32n) & ~0xfffn)), minor: Number((r & 0xffn) | ((r >> 12n) & ~0xffn)) };
}

/** Makes one of our directories (ours, 0755) and refuses one anyone else could write to. */
function ensureDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  for (const d of [nodePath.dirname(dir), dir]) {
    const st = fs.lstatSync(d);
    if (!st.isDirectory() || st.uid !== process.geteuid?.() || (st.mode & 0o022) !== 0) {
      throw invalidValue('path', `needs ${d} to be a directory owned by this user and writable by nobody else`, d);
    }
  }
}

function readRecords(): Array<{ file: string; rec: TapNodeRecord }> {
  let names: string[];
  try {
    names = fs.readdirSync(TAP_NODE_DIR);
  } catch {
    return [];
  }
  const out: Array<{ file: string; rec: TapNodeRecord }> = [];
  for (const n of names) {
    if (!/^[0-9a-f]{16}\.json$/.test(n)) continue;
    const file = `${TAP_NODE_DIR}/${n}`;
    try {
      const rec = JSON.parse(fs.readFileSync(file, 'utf8')) as TapNodeRecord;
      if (rec.version === 1 && typeof rec.path === 'string') out.push({ file, rec });
    } catch {
      // Half-written by a creator that crashed before its rename: the temp name does not match; skip anything else.
    }
  }
  return out;
}

/** Unlinks the node only while it still is the recorded device; then the record. */
function removeRecorded(file: string, rec: TapNodeRecord): void {
  try {
    const st = fs.lstatSync(rec.path);
    const d = devOf(st.rdev);
    if (st.isCharacterDevice() && d.major === rec.major && d.minor === rec.minor) fs.unlinkSync(rec.path);
  } catch (e) {
    if ((e as { code?: string }).code !== 'ENOENT') throw e;
  }
  try {
    fs.unlinkSync(file);
  } catch (e) {
    if ((e as { code?: string }).code !== 'ENOENT') throw e;
  }
}

/**
 * Makes a character node for one macvtap's own device with the given owner and mode, for a VMM that opens its queues
 * without privileges. See the module comment for how it is recorded and never left behind.
 *
 * Equivalent to: `mknod PATH c MAJOR MINOR && chown UID:GID PATH && chmod MODE PATH`, `MAJOR:MINOR` read from
 * `/sys/class/net/LINK/macvtap/tapIFINDEX/dev` inside the link's namespace (what libvirt does for a `<interface
 * type='direct'>` of an unprivileged domain).
 *
 * @example
 * ```ts
 * const node = await createTapNode('mvt-guest1', { uid: 64055, gid: 64055, mode: 0o600 });
 * // hand node.path to the VMM (it opens it O_RDWR once per queue); when the VM is gone:
 * await node.remove();
 * ```
 * @throws TypeError/RangeError for bad options (uid/gid 0–4294967294, mode 0–0o777, an absolute `path` whose parent
 *   directory exists and which does not exist yet), before anything is created; TypeError when the link is not a
 *   macvtap.
 * @throws {@link MacvtapError} `ENODEV` (no such link), `ENOENT` (syscall `'sysfs'`: its device numbers could not be
 *   read), `EPERM` from `mknod` (no `CAP_MKNOD`), `EEXIST` when the path appeared meanwhile.
 */
export async function createTapNode(link: LinkRef, options: CreateTapNodeOptions): Promise<TapNode> {
  const key = v.linkRef('link', link);
  const opts = v.options('options', options);
  v.knownKeys('options', opts, NODE_KEYS);
  const uid = idOption('uid', opts.uid);
  const gid = idOption('gid', opts.gid);
  if (typeof opts.mode !== 'number') throw invalidType('mode', 'an integer 0–0o777', opts.mode);
  if (!Number.isInteger(opts.mode) || opts.mode < 0 || opts.mode > 0o777) {
    throw outOfRange('mode', '0–0o777 (permission bits only: no setuid, setgid or sticky bit)', opts.mode);
  }
  const mode = opts.mode;
  const owner = opts.owner === undefined ? DEFAULT_OWNER : ownerOption(opts.owner);
  if (owner === false) throw invalidValue('owner', 'must be an owner name (a tap node is always recorded for gc)', false);
  let path: string | undefined;
  if (opts.path !== undefined) {
    if (typeof opts.path !== 'string') throw invalidType('path', 'an absolute path', opts.path);
    if (!opts.path.startsWith('/') || opts.path.includes('\0') || opts.path.endsWith('/') || nodePath.normalize(opts.path) !== opts.path) {
      throw invalidValue('path', 'must be a normalized absolute file path', opts.path);
    }
    let parent: ReturnType<typeof fs.statSync> | undefined;
    try {
      parent = fs.statSync(nodePath.dirname(opts.path));
    } catch {
      parent = undefined;
    }
    if (!parent?.isDirectory()) throw invalidValue('path', 'must be in an existing directory', opts.path);
    if (fs.existsSync(opts.path)) throw invalidValue('path', 'already exists (a tap node never replaces a file)', opts.path);
    path = opts.path;
  }
  const ns = v.nsOf(opts);

  const info = await callNative(() => binding.linkGet(key, ns));
  const tap = tapOf(info);
  const netnsId = netnsIdentity(ns);
  ensureDir(TAP_NODE_DIR);
  if (path === undefined) ensureDir(TAP_NODE_DEV_DIR);
  // A record of these numbers for another link (another ifindex or namespace) is stale: the minor is this link's now,
  // so its node would open this device. Nodes of this same link are left alone (a link may have several).
  for (const { file, rec } of readRecords()) {
    const sameLink = rec.ifindex === info.ifindex && rec.netnsId.dev === netnsId.dev && rec.netnsId.ino === netnsId.ino;
    if (rec.major === tap.major && rec.minor === tap.minor && !sameLink) removeRecorded(file, rec);
  }
  const id = randomId();
  const file = `${TAP_NODE_DIR}/${id}.json`;
  const nodeAt = path ?? `${TAP_NODE_DEV_DIR}/${id}`;
  const rec: TapNodeRecord = {
    version: 1, path: nodeAt, major: tap.major, minor: tap.minor, ifindex: info.ifindex, name: info.name, netnsId,
    netnsPath: typeof ns === 'string' ? ns : null, owner: ownerTag(owner), uid, gid, mode,
  };
  const tmp = `${TAP_NODE_DIR}/.${id}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(rec), { mode: 0o600, flag: 'wx' });
  fs.renameSync(tmp, file);
  try {
    binding.mknodChar(nodeAt, tap.major, tap.minor);
  } catch (e) {
    fs.unlinkSync(file);
    throw e;
  }
  try {
    fs.chownSync(nodeAt, uid, gid);
    fs.chmodSync(nodeAt, mode);
    // The link may have been deleted (and its minor given to another) between the read and the mknod.
    const again = await callNative(() => binding.linkGet({ index: info.ifindex }, ns));
    const t2 = again.tap;
    if (!t2 || t2.major !== tap.major || t2.minor !== tap.minor) {
      throw invalidValue('link', 'changed while its node was made (deleted and replaced?)', v.refText(link));
    }
  } catch (e) {
    removeRecorded(file, rec);
    throw e;
  }
  return new TapNodeHandle(nodeAt, tap.major, tap.minor, info.name, info.ifindex, file, rec);
}

function tapOf(info: LinkInfo): { major: number; minor: number } {
  if (info.kind !== 'macvtap') throw invalidValue('link', `must be a macvtap ("${info.name}" is ${info.kind ?? 'no kind'})`, info.name);
  if (!info.tap) {
    throw invalidValue('link', `has no readable tap device in sysfs ("${info.name}"; sysfs of its namespace could not be read)`, info.name);
  }
  return { major: info.tap.major, minor: info.tap.minor };
}

function randomId(): string {
  // Uniqueness only (the name is checked with 'wx'); see gc.ts for why not node:crypto.
  let s = '';
  for (let i = 0; i < 16; i++) s += Math.floor(Math.random() * 16).toString(16);
  return s;
}

class TapNodeHandle implements TapNode {
  #file: string;
  #rec: TapNodeRecord;
  #removed = false;
  constructor(
    readonly path: string,
    readonly major: number,
    readonly minor: number,
    readonly device: string,
    readonly ifindex: number,
    file: string,
    rec: TapNodeRecord,
  ) {
    this.#file = file;
    this.#rec = rec;
  }
  get removed(): boolean {
    return this.#removed;
  }
  async remove(): Promise<void> {
    if (this.#removed) return;
    this.#removed = true;
    removeRecorded(this.#file, this.#rec);
  }
  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove();
  }
}

/**
 * Removes a tap node made by {@link createTapNode} (by any process, e.g. the `macvtap node` command) by its path: the
 * node, only while it still is the recorded device, and its record. For a process that no longer has the handle.
 *
 * Equivalent to: `rm PATH` plus its record.
 *
 * @example
 * ```ts
 * await removeTapNode('/dev/macvtap/3f0c9a1e2b7d4c55');
 * ```
 * @returns `true` when there was a record for that path, `false` when there was none (nothing is touched then).
 * @throws TypeError for a path that is not absolute.
 */
export async function removeTapNode(path: string): Promise<boolean> {
  if (typeof path !== 'string') throw invalidType('path', 'an absolute path', path);
  if (!path.startsWith('/') || path.includes('\0')) throw invalidValue('path', 'must be an absolute path', path);
  const hits = readRecords().filter((r) => r.rec.path === path);
  for (const { file, rec } of hits) removeRecorded(file, rec);
  return hits.length > 0;
}

/**
 * The recorded tap nodes of namespace `ns` that are garbage: their link (by ifindex) is not among `live`, is no
 * longer a macvtap, or has other device numbers; or their recorded namespace path no longer names their namespace.
 * With `owner`, only nodes recorded by that owner.
 * @internal
 */
export function tapNodeGarbage(live: LinkInfo[], ns: Netns | null, owner?: string): Array<{ file: string; rec: TapNodeRecord }> {
  const here = netnsIdentity(ns);
  const out: Array<{ file: string; rec: TapNodeRecord }> = [];
  for (const r of readRecords()) {
    const { rec } = r;
    if (owner !== undefined && parseOwnerTag(rec.owner)?.owner !== owner) continue;
    if (rec.netnsId.dev !== here.dev || rec.netnsId.ino !== here.ino) {
      // Another namespace: garbage only when its recorded path shows it is gone.
      if (rec.netnsPath === null) continue;
      let st: { dev: number; ino: number } | null = null;
      try {
        st = fs.statSync(rec.netnsPath);
      } catch {
        st = null;
      }
      if (st === null || st.dev !== rec.netnsId.dev || st.ino !== rec.netnsId.ino) out.push(r);
      continue;
    }
    const link = live.find((l) => l.ifindex === rec.ifindex);
    if (!link || link.kind !== 'macvtap') {
      out.push(r);
      continue;
    }
    if (link.tap === null) continue; // sysfs unreadable: cannot judge, keep
    if (link.tap.major !== rec.major || link.tap.minor !== rec.minor) out.push(r);
  }
  return out;
}

/** Removes what {@link tapNodeGarbage} found. @internal */
export function removeTapNodes(garbage: Array<{ file: string; rec: TapNodeRecord }>): void {
  for (const { file, rec } of garbage) removeRecorded(file, rec);
}
