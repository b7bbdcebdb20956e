/**
 * Nova's and Neutron's own code as the oracle: `test/nova/oracle.py` run by Debian's `/usr/bin/python3` with the real
 * `python3-nova` (26, Zed) and `python3-neutron` (21) packages, one process per batch (JSON in, JSON out).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe } from 'vitest';
import { describeNeeding } from './suite.js';

/** Debian's interpreter: a `python3` earlier on PATH may not see Debian's dist-packages. */
export const DEBIAN_PYTHON = '/usr/bin/python3';
const ORACLE = fileURLToPath(new URL('../nova/oracle.py', import.meta.url));

/**
 * Why Nova's code cannot run here, or `null` when it can: the interpreter and the packages' files. (Importing Nova to
 * probe would cost as much as the test itself, and under TCG in the VM more than a minute; a broken install still
 * fails the test, loudly, when the oracle runs.)
 */
export const novaUnavailable: string | null = (() => {
  if (!existsSync(DEBIAN_PYTHON)) return `${DEBIAN_PYTHON} is missing (apt-get install python3)`;
  for (const [pkg, file] of [
    ['python3-nova', '/usr/lib/python3/dist-packages/nova/virt/libvirt/vif.py'],
    ['python3-neutron', '/usr/lib/python3/dist-packages/neutron/plugins/ml2/drivers/macvtap/mech_driver/mech_macvtap.py'],
  ]) {
    if (!existsSync(file!)) return `${pkg} is not installed (apt-get install --no-install-recommends python3-nova python3-neutron)`;
  }
  return null;
})();

/** `describe` for suites that need Nova's code: skipped loudly without it, and an error under `CI=true`. */
export function describeNova(name: string, fn: () => void): void {
  if (novaUnavailable) {
    if (process.env.CI === 'true') throw new Error(`${name}: ${novaUnavailable}, and CI must run it`);
    process.stderr.write(`\n*** SKIPPING ${name}: ${novaUnavailable} ***\n`);
    describe.skip(`${name} [SKIPPED: ${novaUnavailable}]`, fn);
    return;
  }
  describe(name, fn);
}

/** {@link describeNova} for suites that also need root (they plug in throwaway namespaces). */
export function describeNovaPrivileged(name: string, fn: () => void): void {
  describeNeeding(name, novaUnavailable, fn);
}

/** One `get_config` case. */
export interface NovaConfigCase {
  vif: Record<string, unknown>;
  vcpus: number;
  extra_specs: Record<string, unknown>;
  image_properties: Record<string, unknown>;
  conf: Record<string, unknown>;
  virt_type: string;
}

/** A Nova exception: its class name, the keyword arguments it was raised with, its message. */
export interface NovaError {
  error: string;
  kwargs: Record<string, unknown>;
  message: string;
}

/** One command Nova's plug would have run. */
export interface NovaCommand {
  argv: string[];
  check_exit_code: number[];
}

/** One Neutron bind_port case: the agent's interface mappings, the segment, the port's MAC. */
export interface NeutronBindCase {
  mappings: Record<string, string>;
  segment: { id: string; network_type: string; physical_network: string; segmentation_id: number | null };
  address: string;
  vnic_type?: string;
}

export interface OracleResponse {
  versions: { nova: string; neutron: string | null };
  kernel: string;
  config: Array<{ xml: string } | NovaError>;
  plug: Array<{ commands: NovaCommand[] } | NovaError>;
  caps: Array<number | null>;
  bind: Array<{ bound: false } | { bound: true; vif_type: string; vif_details: Record<string, unknown>; xml: string; commands: NovaCommand[] }>;
}

/** Runs the oracle once over a whole batch. */
export function runOracle(request: { config?: NovaConfigCase[]; plug?: Array<{ vif: Record<string, unknown>; existing: string[] }>; bind?: NeutronBindCase[]; caps?: string[] }): OracleResponse {
  const r = spawnSync(DEBIAN_PYTHON, [ORACLE], { input: JSON.stringify(request), encoding: 'utf8', timeout: 300_000, maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`oracle failed (${r.status ?? r.signal}): ${r.stderr}`);
  return JSON.parse(r.stdout) as OracleResponse;
}
