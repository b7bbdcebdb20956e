#!/usr/bin/env node
/**
 * `macvtap-cni`: a CNI plugin (spec 1.0.0 ADD/DEL/CHECK/VERSION, 1.1.0 GC/STATUS; configs 0.3.0–1.1.0) that attaches
 * a container to a lower device with a macvtap, as the reference `macvlan` plugin does with a macvlan.
 *
 * Run by a container runtime (libcni): the verb in `CNI_COMMAND`, the attachment in `CNI_CONTAINERID`, `CNI_NETNS`,
 * `CNI_IFNAME`, `CNI_ARGS`, `CNI_PATH`, the network configuration on stdin. The result (or the spec's error object)
 * goes to stdout. Start-up is the plugin's cost, paid twice per container: the addon and the link code are loaded only
 * for the verbs that need them, after every input has been checked.
 */
import { CNI_ERR, CniError } from './errors.js';
import { decode, LATEST_VERSION, readCommand, readConf, readEnv, readVersion, SUPPORTED_VERSIONS, type Verb, versionAtLeast } from './config.js';

// Not an ESM import of node:fs (its facade loads all of streams): see lib/loader.ts.
const { readFileSync } = process.getBuiltinModule('node:fs');

/** The first version each verb exists in. */
const SINCE: Record<Exclude<Verb, 'VERSION'>, string> = { ADD: '0.3.0', DEL: '0.3.0', CHECK: '0.4.0', GC: '1.1.0', STATUS: '1.1.0' };

/** One invocation: what to print and the exit status. Never throws. */
export async function runCni(env: NodeJS.ProcessEnv, stdin: string): Promise<{ stdout: string; status: number }> {
  let version = LATEST_VERSION;
  try {
    const command = readCommand(env);
    if (command === 'VERSION') {
      // stdin is optional here; a config's cniVersion, when it names one we know, is the version of the answer.
      let asked: unknown;
      try {
        asked = stdin.trim() === '' ? undefined : (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
      } catch {
        asked = undefined;
      }
      const v = typeof asked === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(asked) ? asked : LATEST_VERSION;
      return { stdout: JSON.stringify({ cniVersion: v, supportedVersions: SUPPORTED_VERSIONS }), status: 0 };
    }
    const raw = decode(stdin);
    if (typeof raw.cniVersion === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(raw.cniVersion)) version = raw.cniVersion;
    version = readVersion(raw);
    if (!versionAtLeast(version, SINCE[command])) {
      throw new CniError(CNI_ERR.INCOMPATIBLE_VERSION, `${command} needs cniVersion ${SINCE[command]} or later; the config has ${version}`);
    }
    const cniEnv = readEnv(command, env);
    const conf = readConf(raw, version);
    const verbs = await import('./commands.js');
    const inv = { conf, env: cniEnv, stdin };
    switch (command) {
      case 'ADD': return { stdout: JSON.stringify(await verbs.add(inv)), status: 0 };
      case 'DEL': await verbs.del(inv); return { stdout: '', status: 0 };
      case 'CHECK': await verbs.check(inv); return { stdout: '', status: 0 };
      case 'GC': await verbs.gc(inv); return { stdout: '', status: 0 };
      case 'STATUS': await verbs.status(inv); return { stdout: '', status: 0 };
    }
  } catch (e) {
    const err = e instanceof CniError ? e : new CniError(CNI_ERR.KERNEL, e instanceof Error ? e.message : String(e));
    return { stdout: JSON.stringify(err.toJSON(version)), status: 1 };
  }
}

async function main(): Promise<void> {
  // stdin: the network configuration (absent for VERSION from some callers: a closed or terminal stdin reads as '').
  let stdin = '';
  try {
    stdin = process.stdin.isTTY ? '' : readFileSync(0, 'utf8');
  } catch {
    stdin = '';
  }
  const { stdout, status } = await runCni(process.env, stdin);
  if (stdout !== '') process.stdout.write(stdout + '\n');
  process.exitCode = status;
}

await main();
