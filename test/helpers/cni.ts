/**
 * Driving `macvtap-cni` (and the reference plugins of Debian's containernetworking-plugins) as libcni does: one
 * process per verb, `CNI_*` in the environment, the network configuration on stdin, run inside a test namespace that
 * stands for the runtime's ("host") namespace with `nsenter --net` (not `ip netns exec`, which remounts /sys).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The built plugin (npm run compile). */
export const PLUGIN = fileURLToPath(new URL('../../dist/cli/cni/macvtap-cni.js', import.meta.url));
/** Debian's containernetworking-plugins. */
export const CNI_BIN = '/usr/lib/cni';

/** Why the reference plugins cannot be used here, or `null`. */
export function referencePluginsMissing(): string | null {
  for (const p of ['macvlan', 'host-local', 'static', 'tuning']) {
    if (!existsSync(`${CNI_BIN}/${p}`)) return `${CNI_BIN}/${p} is missing (apt-get install containernetworking-plugins)`;
  }
  return null;
}

/** What one plugin invocation printed. */
export interface CniRun {
  status: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed, when it is JSON. */
  json: Record<string, unknown> | null;
}

/** The variables of one invocation; `undefined` leaves a variable out. */
export interface CniVars {
  CNI_COMMAND?: string;
  CNI_CONTAINERID?: string;
  CNI_NETNS?: string;
  CNI_IFNAME?: string;
  CNI_ARGS?: string;
  CNI_PATH?: string;
}

/**
 * Runs `plugin` (our built plugin by default, or an executable path) in namespace `hostNs` (a /run/netns path) with
 * `vars` and `stdin` (an object is JSON-encoded). Bounded: 30 s.
 */
export function runPlugin(hostNs: string, vars: CniVars, stdin: unknown, plugin: string = PLUGIN): CniRun {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  for (const [k, v] of Object.entries(vars)) if (v !== undefined) env[k] = v;
  const argv = plugin === PLUGIN ? [process.execPath, PLUGIN] : [plugin];
  const r = spawnSync('nsenter', [`--net=${hostNs}`, ...argv], {
    env, input: typeof stdin === 'string' ? stdin : JSON.stringify(stdin), encoding: 'utf8', timeout: 30_000,
  });
  let json: Record<string, unknown> | null = null;
  try {
    json = r.stdout.trim() === '' ? null : (JSON.parse(r.stdout) as Record<string, unknown>);
  } catch {
    json = null;
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, json };
}
