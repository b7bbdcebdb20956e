/**
 * IPAM delegation as the reference plugins do it (libcni's `invoke.DelegateAdd`): the plugin named by `ipam.type` is
 * looked up in `CNI_PATH`, run with this invocation's environment (`CNI_COMMAND` as given) and the same network
 * configuration on stdin; its result or error comes back on its stdout.
 */
import { join } from 'node:path';
import { CNI_ERR, CniError } from './errors.js';

const { spawn } = process.getBuiltinModule('node:child_process');
const { accessSync, constants } = process.getBuiltinModule('node:fs');

/** How long an IPAM plugin may run before it is killed (host-local and static answer in milliseconds). */
const IPAM_TIMEOUT_MS = 30_000;

/** The executable `type` in the first `CNI_PATH` directory that has one, or error 101 naming the directories. */
export function findPlugin(type: string, path: string[]): string {
  if (path.length === 0) throw new CniError(CNI_ERR.INVALID_ENV, `CNI_PATH is not set, and the IPAM plugin "${type}" must be found in it`);
  for (const dir of path) {
    const file = join(dir, type);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // next directory
    }
  }
  throw new CniError(CNI_ERR.IPAM, `the IPAM plugin "${type}" is not in CNI_PATH (${path.join(':')})`);
}

/**
 * Runs the IPAM plugin for `command` with `stdin`; resolves its parsed stdout (`null` when it printed nothing, as DEL
 * does). Its CNI error comes back as a {@link CniError} with the IPAM plugin's own code and its message prefixed.
 */
export async function runIpam(
  type: string, path: string[], command: string, stdin: string, env: Record<string, string | undefined>,
): Promise<Record<string, unknown> | null> {
  const file = findPlugin(type, path);
  const child = spawn(file, [], { env: { ...process.env, ...env, CNI_COMMAND: command }, stdio: ['pipe', 'pipe', 'pipe'], timeout: IPAM_TIMEOUT_MS });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => err.push(b));
  child.stdin.on('error', () => undefined); // a plugin that exits without reading stdin: its exit status says why
  child.stdin.end(stdin);
  const status = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(signal ? null : code));
  }).catch((e: Error) => {
    throw new CniError(CNI_ERR.IPAM, `IPAM plugin ${type}: ${e.message}`);
  });
  const text = Buffer.concat(out).toString('utf8').trim();
  let parsed: Record<string, unknown> | null = null;
  if (text !== '') {
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new CniError(CNI_ERR.IPAM, `IPAM plugin ${type} (${command}) printed something that is not JSON: ${text.slice(0, 200)}`);
    }
  }
  if (status !== 0) {
    if (parsed && typeof parsed.code === 'number' && typeof parsed.msg === 'string') {
      throw new CniError(parsed.code, `IPAM plugin ${type} (${command}): ${parsed.msg}`, typeof parsed.details === 'string' ? parsed.details : undefined);
    }
    const why = status === null ? `was killed (timeout ${IPAM_TIMEOUT_MS} ms)` : `exited with status ${status}`;
    throw new CniError(CNI_ERR.IPAM, `IPAM plugin ${type} (${command}) ${why}`, Buffer.concat(err).toString('utf8').trim().slice(0, 500) || undefined);
  }
  return parsed;
}
