/**
 * `macvtap secure`: port security and (stateless) Neutron security groups on a device from the shell — apply, show,
 * remove (the library's `applyPortSecurity`, `getPortSecurity`, `removePortSecurity`).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  applyPortSecurity,
  getLink,
  getPortSecurity,
  removePortSecurity,
  type AllowedAddressPair,
  type PortSecurityState,
  type SecurityGroupRule,
} from '../../lib/index.js';
import { linkArg, netnsArg, printTable, UsageError } from '../args.js';

/** `--pair IP[,MAC]`: an allowed address pair; IPv6 addresses hold `:` but never `,`. */
export function pairArg(v: string): AllowedAddressPair {
  const comma = v.indexOf(',');
  if (comma === 0 || comma === v.length - 1 || v.indexOf(',', comma + 1) >= 0) {
    throw new UsageError(`--pair takes IP[,MAC], not ${JSON.stringify(v)}`);
  }
  return comma < 0 ? { ip: v } : { ip: v.slice(0, comma), mac: v.slice(comma + 1) };
}

/**
 * The rules of a `--rules` document: a JSON array of Neutron security group rules, or a Neutron API response holding
 * them (`GET /v2.0/security-group-rules` → `{ security_group_rules: [...] }`, `GET /v2.0/security-groups/ID` →
 * `{ security_group: { security_group_rules: [...] } }`). Each rule is checked by the library, not here.
 */
export function rulesFromJson(json: unknown): SecurityGroupRule[] | string {
  const holder = (o: unknown): o is Record<string, unknown> => typeof o === 'object' && o !== null && !Array.isArray(o);
  if (Array.isArray(json)) return json as SecurityGroupRule[];
  if (holder(json)) {
    if (Array.isArray(json.security_group_rules)) return json.security_group_rules as SecurityGroupRule[];
    if (holder(json.security_group) && Array.isArray(json.security_group.security_group_rules)) {
      return json.security_group.security_group_rules as SecurityGroupRule[];
    }
  }
  return 'is neither a JSON array of Neutron security group rules nor a Neutron response with "security_group_rules"';
}

function showState(dev: string, s: PortSecurityState): string {
  const lines = [
    `table netdev ${s.table}: device ${s.device} ifindex ${s.ifindex} owner ${s.owner}`,
    `    security groups ${s.securityGroups ? 'on (stateless)' : 'off (anti-spoofing only)'}`,
  ];
  const empty: string[] = [];
  for (const [name, elements] of Object.entries(s.sets)) {
    if (elements.length === 0) empty.push(name);
    else lines.push(`    set ${name} (${elements.length}): ${elements.join(', ')}`);
  }
  if (empty.length) lines.push(`    empty sets: ${empty.join(', ')}`);
  if (s.device !== dev) lines.push(`    note: the chains are bound to ${s.device}`);
  return lines.join('\n') + '\n';
}

function readRules(file: string): SecurityGroupRule[] | number {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    process.stderr.write(`macvtap secure: cannot read ${file === '-' ? 'stdin' : file}: ${(e as Error).message}\n`);
    return 1;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    process.stderr.write(`macvtap secure: ${file === '-' ? 'stdin' : file} is not JSON: ${(e as Error).message}\n`);
    return 1;
  }
  const rules = rulesFromJson(json);
  if (typeof rules === 'string') {
    process.stderr.write(`macvtap secure: ${file === '-' ? 'stdin' : file} ${rules}\n`);
    return 1;
  }
  return rules;
}

const APPLY_ONLY = ['mac', 'ip', 'pair', 'rules', 'owner'] as const;

/**
 * `macvtap secure DEV --mac M [--ip A]… [--pair IP[,MAC]]… [--rules FILE|-] [--owner O] [--netns NS] [--json]`,
 * `macvtap secure --show DEV [--netns NS] [--json]`, `macvtap secure --remove DEV [--netns NS]`.
 * Exit 0 on success (also when `--show`/`--remove` find no port security: that is said, and `--json` prints `null`),
 * 1 when the library or the kernel refuses, 2 on a usage error.
 */
export async function secureCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      show: { type: 'boolean' }, remove: { type: 'boolean' },
      mac: { type: 'string' }, ip: { type: 'string', multiple: true }, pair: { type: 'string', multiple: true },
      rules: { type: 'string' }, owner: { type: 'string' }, netns: { type: 'string' }, json: { type: 'boolean' },
    },
  });
  if (positionals.length !== 1) throw new UsageError('secure takes one DEV (a device name; an ifindex when applying)');
  const dev = positionals[0] as string;
  const opts = { ...(values.netns !== undefined && { netns: netnsArg(values.netns) as string }) };

  if (values.show && values.remove) throw new UsageError('secure takes --show or --remove, not both');
  if (values.show || values.remove) {
    const mode = values.show ? '--show' : '--remove';
    const extra = APPLY_ONLY.filter((k) => values[k] !== undefined);
    if (extra.length) throw new UsageError(`secure ${mode} takes DEV${values.show ? ', --netns and --json' : ' and --netns'} only, not ${extra.map((k) => `--${k}`).join(', ')}`);
    if (values.remove && values.json) throw new UsageError('secure --remove takes DEV and --netns only, not --json');
  }

  if (values.show) {
    const state = await getPortSecurity(dev, opts);
    if (values.json) {
      process.stdout.write(JSON.stringify(state, null, 2) + '\n');
      return 0;
    }
    if (state === null) {
      process.stdout.write(`${dev}: no port security (no table netdev mvtps-${dev})\n`);
      return 0;
    }
    process.stdout.write(showState(dev, state));
    printTable(['DROPPED', 'PACKETS', 'BYTES'], Object.entries(state.dropped).map(([why, c]) => [why, String(c.packets), String(c.bytes)]));
    return 0;
  }

  if (values.remove) {
    // Only a table of ours: --show calls one without our comment "no port security", and apply leaves it alone.
    const removed = (await getPortSecurity(dev, opts)) !== null && (await removePortSecurity(dev, opts));
    process.stdout.write(removed
      ? `${dev}: port security removed (table netdev mvtps-${dev} deleted)\n`
      : `${dev}: had no port security, nothing removed\n`);
    return 0;
  }

  if (values.mac === undefined) throw new UsageError('secure DEV needs --mac MAC (the port\'s MAC), or --show / --remove');
  const pairs = (values.pair ?? []).map(pairArg);
  let rules: SecurityGroupRule[] | undefined;
  if (values.rules !== undefined) {
    const read = readRules(values.rules);
    if (typeof read === 'number') return read;
    rules = read;
  }
  const link = linkArg(dev);
  await applyPortSecurity(link, {
    mac: values.mac,
    ips: values.ip ?? [],
    ...(pairs.length > 0 && { allowedAddressPairs: pairs }),
    ...(rules !== undefined && { rules }),
  }, { ...opts, ...(values.owner !== undefined && { owner: values.owner }) });

  // Read back what the kernel holds, by the device's name (tables are named after it, not its ifindex).
  const name = typeof link === 'number' ? (await getLink(link, opts)).name : link;
  const state = await getPortSecurity(name, opts);
  if (values.json) {
    process.stdout.write(JSON.stringify(state, null, 2) + '\n');
    return 0;
  }
  if (state === null) throw new Error(`port security was applied to ${name} but its table is gone again (removed concurrently?)`);
  const count = (k: string): number => state.sets[k]?.length ?? 0;
  process.stdout.write(`${state.device}: port security applied (table netdev ${state.table}): ${count('macs')} MAC(s), ` +
    `${count('pairs4')} IPv4 and ${count('pairs6')} IPv6 source pair(s), security groups ${state.securityGroups ? `on, ${rules?.length ?? 0} rule(s)` : 'off'}\n`);
  return 0;
}
