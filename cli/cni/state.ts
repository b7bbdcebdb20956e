/**
 * The plugin's record of its attachments (one JSON file each), kept so that GC can release an IPAM allocation whose
 * link is already gone: a runtime that deletes a network namespace without DEL takes the link (and its tag) with it,
 * and an IPAM plugin without a GC verb (Debian's host-local 1.1.1) keeps the address forever. The records live where
 * the reference plugins keep theirs: `<stateDir>/<network>/<container id>:<ifname>.json`, `stateDir` defaulting to
 * `/var/lib/cni/macvtap-cni` (":" is in neither a container id nor an interface name, so the name is unambiguous).
 */
import { join } from 'node:path';
import { toCniError } from './errors.js';

// Not an ESM import of node:fs (its facade loads all of streams): see lib/loader.ts.
const { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } = process.getBuiltinModule('node:fs');

/** Where the records live when the config has no `stateDir`. */
export const DEFAULT_STATE_DIR = '/var/lib/cni/macvtap-cni';

/** One attachment as ADD made it: what an IPAM DEL for it needs (its config as given, and ADD's result). */
export interface AttachmentRecord {
  network: string;
  containerID: string;
  ifname: string;
  /** The network configuration of the ADD, as the runtime gave it on stdin. */
  config: Record<string, unknown>;
  /** ADD's result: the `prevResult` of the IPAM DEL. */
  result: Record<string, unknown>;
}

/** The record file of one attachment. */
export function recordFile(stateDir: string, network: string, containerId: string, ifname: string): string {
  return join(stateDir, network, `${containerId}:${ifname}.json`);
}

/**
 * Writes `rec` atomically: a temporary file in the same directory, flushed to disk, then renamed over the record (a
 * reader sees the old record or the new one, never half of one). Errors are CNI errors (100, with errno and path).
 */
export function writeRecord(stateDir: string, rec: AttachmentRecord): void {
  const file = recordFile(stateDir, rec.network, rec.containerID, rec.ifname);
  const tmp = join(stateDir, rec.network, `.${rec.containerID}:${rec.ifname}.${process.pid}.tmp`);
  try {
    mkdirSync(join(stateDir, rec.network), { recursive: true, mode: 0o700 });
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(rec) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw toCniError(e, `writing the attachment record ${file}`);
  }
}

/** Removes one attachment's record; none is fine. */
export function removeRecord(file: string): void {
  try {
    rmSync(file, { force: true });
  } catch (e) {
    throw toCniError(e, `removing the attachment record ${file}`);
  }
}

/** A record file of a network: its contents, or why they are not a record of that network. */
export type RecordEntry = { file: string; record: AttachmentRecord } | { file: string; error: string };

/** Every record file of `network` (none when the directory does not exist); temporary files are skipped. */
export function listRecords(stateDir: string, network: string): RecordEntry[] {
  const dir = join(stateDir, network);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    if ((e as { code?: unknown }).code === 'ENOENT') return [];
    throw toCniError(e, `listing the attachment records in ${dir}`);
  }
  return names.filter((n) => n.endsWith('.json') && !n.startsWith('.')).sort().map((n): RecordEntry => {
    const file = join(dir, n);
    try {
      const r = JSON.parse(readFileSync(file, 'utf8')) as Partial<AttachmentRecord> | null;
      const ok = r !== null && typeof r === 'object' && r.network === network && typeof r.containerID === 'string' && typeof r.ifname === 'string'
        && typeof r.config === 'object' && r.config !== null && typeof r.result === 'object' && r.result !== null;
      return ok ? { file, record: r as AttachmentRecord } : { file, error: `${file} is not an attachment record of network ${network}` };
    } catch (e) {
      return { file, error: `reading ${file}: ${(e as Error).message}` };
    }
  });
}
