/**
 * The CNI verbs that touch the kernel: ADD, DEL, CHECK, GC, STATUS. Loaded by the entry point only for these verbs
 * (VERSION and every refused input never load the addon). Links are made and changed with the library's own calls.
 */
import { addAddress } from '../../lib/address.js';
import { addRoute } from '../../lib/route.js';
import { createMacvtap, deleteLink, getLink, listLinks, setLink } from '../../lib/link.js';
import { setLinkIpv6 } from '../../lib/sysctl.js';
import type { LinkInfo } from '../../lib/types.js';
import type { PortSecurityPolicy } from '../../lib/portsec/types.js';
import { type CniEnv, effectiveMac, LATEST_VERSION, type NetConf, SUPPORTED_VERSIONS, versionAtLeast } from './config.js';
import { CNI_ERR, CniError, toCniError } from './errors.js';
import { type AttachmentRecord, DEFAULT_STATE_DIR, listRecords, recordFile, removeRecord, writeRecord } from './state.js';

// Not ESM imports: node:fs's facade loads all of streams (see lib/loader.ts), and the IPAM code (node:child_process:
// net, streams, dns) is loaded only by a config that names an IPAM plugin.
const { readdirSync } = process.getBuiltinModule('node:fs');

/** {@link import('./ipam.js').runIpam}, loaded on first use. */
async function runIpam(...args: Parameters<typeof import('./ipam.js').runIpam>): ReturnType<typeof import('./ipam.js').runIpam> {
  return (await import('./ipam.js')).runIpam(...args);
}

/** The prefix of this plugin's tag in `IFLA_IFALIAS`: `macvtap-cni:<network>:<container id>:<ifname>`. */
export const CNI_TAG_PREFIX = 'macvtap-cni';
/** The name template of a link between its create and its move into the sandbox (host side, a few milliseconds). */
const TEMP_NAME = 'mvcni%d';

/** The tag an attachment's link carries; {@link gc} of the library never touches it (it is not an owner tag). */
export function attachmentTag(network: string, containerId: string, ifname: string): string {
  const tag = `${CNI_TAG_PREFIX}:${network}:${containerId}:${ifname}`;
  if (Buffer.byteLength(tag) > 255) {
    throw new CniError(CNI_ERR.INVALID_CONFIG, `the network name and CNI_CONTAINERID are too long for the link's tag (${Buffer.byteLength(tag)} of 255 bytes)`);
  }
  return tag;
}

/** The port-security policy of an attachment, from the config, the interface's MAC and (by default) its addresses. */
function portPolicy(conf: NetConf, mac: string, ips: string[]): PortSecurityPolicy {
  const ps = conf.portSecurity as NonNullable<NetConf['portSecurity']>;
  return {
    mac, ips: ps.ips ?? ips,
    ...(ps.allowedAddressPairs !== undefined && { allowedAddressPairs: ps.allowedAddressPairs as PortSecurityPolicy['allowedAddressPairs'] }),
    ...(ps.rules !== undefined && { rules: ps.rules as PortSecurityPolicy['rules'] }),
  };
}

/**
 * Checks `portSecurity` in full before anything is made (error 7 naming the bad field), with the library's own
 * validator: the MAC and addresses that are not known yet (a kernel-chosen MAC, the IPAM's) stand in as valid ones.
 */
async function checkPortSecurity(conf: NetConf, mac: string | undefined): Promise<void> {
  if (!conf.portSecurity) return;
  const { compilePolicy } = await import('../../lib/portsec/policy.js');
  try {
    compilePolicy(portPolicy(conf, mac ?? '02:00:00:00:00:01', []));
  } catch (e) {
    throw new CniError(CNI_ERR.INVALID_CONFIG, `"portSecurity": ${(e as Error).message}`);
  }
}

/** Port security's module (libnftables and the ruleset code), loaded only for a config that has it. */
const portsec = (): Promise<typeof import('../../lib/portsec/index.js')> => import('../../lib/portsec/index.js');

/** A tag written by {@link attachmentTag}, or `null`. Network names and container ids hold no ":". */
export function parseAttachmentTag(alias: string | null): { network: string; containerId: string; ifname: string } | null {
  if (alias === null) return null;
  const m = /^macvtap-cni:([^:]+):([^:]+):([^:]+)$/.exec(alias);
  return m ? { network: m[1] as string, containerId: m[2] as string, ifname: m[3] as string } : null;
}

/** Everything one invocation knows: the validated config and env, and stdin as given (handed on to IPAM). */
export interface Invocation {
  conf: NetConf;
  env: CniEnv;
  stdin: string;
}

/** The `CNI_*` variables handed to an IPAM plugin (the runtime's own, as libcni's delegation passes them on). */
function ipamEnv(env: CniEnv, over: { containerId?: string; ifname?: string; netns?: string } = {}): Record<string, string | undefined> {
  return {
    CNI_CONTAINERID: over.containerId ?? env.containerId,
    CNI_IFNAME: over.ifname ?? env.ifname,
    CNI_NETNS: over.netns ?? env.netns,
    CNI_PATH: env.path.join(':'),
  };
}

/** True for the errors that mean "this namespace path is not (any longer) a network namespace". */
function isNetnsGone(e: unknown): boolean {
  const err = e as { code?: unknown; syscall?: unknown };
  return (err.syscall === 'open' && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) || (err.syscall === 'setns' && err.code === 'EINVAL');
}

const isNoDevice = (e: unknown): boolean => (e as { code?: unknown }).code === 'ENODEV';

/** The link named `ifname` in `netns`, `null` when there is none; error 3 when `netns` is not a namespace. */
async function linkInSandbox(ifname: string, netns: string): Promise<LinkInfo | null> {
  try {
    return await getLink(ifname, { netns });
  } catch (e) {
    if (isNoDevice(e)) return null;
    if (isNetnsGone(e)) throw new CniError(CNI_ERR.UNKNOWN_CONTAINER, `CNI_NETNS ${netns} is not a network namespace`, (e as Error).message);
    throw toCniError(e, `looking up ${ifname} in ${netns}`);
  }
}

/**
 * ADD: the macvtap is created on `master` in the runtime's namespace under a temporary name, then moved into
 * `CNI_NETNS` and renamed to `CNI_IFNAME` in the same request (`ip link set TMP netns NS name IFNAME`: the final name
 * never exists in the host, so nothing there can clash or react to it), then configured and brought up. Any failure
 * removes what was made (the link, the IPAM allocation) before the error is printed.
 */
export async function add(inv: Invocation): Promise<Record<string, unknown>> {
  const { conf, env } = inv;
  const ifname = env.ifname as string;
  const netns = env.netns as string;
  const tag = attachmentTag(conf.name, env.containerId as string, ifname);
  if (await linkInSandbox(ifname, netns)) {
    throw new CniError(CNI_ERR.KERNEL, `the sandbox ${netns} already has an interface ${ifname}`, 'errno EEXIST');
  }
  const mac = effectiveMac(conf, env);
  await checkPortSecurity(conf, mac);
  let created: { name: string; netns?: string } | null = null;
  let ipamAdded = false;
  try {
    const tmp = await createMacvtap({
      lower: conf.master, name: TEMP_NAME, mode: conf.mode, alias: tag,
      ...(mac !== undefined && { mac }), ...(conf.mtu !== undefined && { mtu: conf.mtu }),
      ...(conf.queues !== undefined && { numQueues: conf.queues }),
    }).catch((e: unknown) => {
      throw toCniError(e, `creating a macvtap on master ${conf.master}`);
    });
    created = { name: tmp.name };
    await setLink(tmp.ifindex, { moveToNetns: netns, name: ifname }).catch((e: unknown) => {
      throw toCniError(e, `moving ${tmp.name} into ${netns} as ${ifname}`);
    });
    created = { name: ifname, netns };
    // Everything before it goes up: IPv6 off before its first solicitation, addresses and port security before its
    // first frame.
    if (conf.ipv6 === false) await setLinkIpv6(ifname, false, { netns }).catch((e: unknown) => { throw toCniError(e, `disabling IPv6 on ${ifname}`); });
    const result: Record<string, unknown> = { cniVersion: conf.cniVersion };
    const addresses: string[] = [];
    let routes: Array<{ dst: string; gw?: string }> = [];
    if (conf.ipam) {
      ipamAdded = true;
      const ipam = await runIpam(conf.ipam.type, env.path, 'ADD', inv.stdin, ipamEnv(env));
      if (!ipam || !Array.isArray(ipam.ips)) throw new CniError(CNI_ERR.IPAM, `IPAM plugin ${conf.ipam.type} returned no "ips"`);
      if (ipam.routes !== undefined) {
        if (!Array.isArray(ipam.routes) || !ipam.routes.every((r) => typeof (r as { dst?: unknown }).dst === 'string')) {
          throw new CniError(CNI_ERR.IPAM, `IPAM plugin ${conf.ipam.type} returned "routes" that are not [{ "dst", "gw"? }]`);
        }
        routes = ipam.routes as Array<{ dst: string; gw?: string }>;
      }
      const ips: Array<Record<string, unknown>> = (ipam.ips as Array<Record<string, unknown>>).map((ip) => ({ ...ip, interface: 0 }));
      for (const ip of ips) {
        if (typeof ip.address !== 'string') throw new CniError(CNI_ERR.IPAM, `IPAM plugin ${conf.ipam.type} returned an address that is not a string`);
        await addAddress(ifname, ip.address, { netns }).catch((e: unknown) => { throw toCniError(e, `adding ${String(ip.address)} to ${ifname}`); });
        addresses.push(ip.address.slice(0, ip.address.lastIndexOf('/')));
      }
      result.ips = ips;
    }
    const before = await getLink(ifname, { netns });
    if (conf.portSecurity) {
      await (await portsec()).applyPortSecurity(ifname, portPolicy(conf, before.mac as string, addresses), { netns, owner: 'macvtap-cni' })
        .catch((e: unknown) => { throw toCniError(e, `applying port security to ${ifname}`); });
    }
    await setLink(ifname, {
      up: true, ...(conf.promisc !== undefined && { promisc: conf.promisc }), ...(conf.allmulti !== undefined && { allmulti: conf.allmulti }),
    }, { netns }).catch((e: unknown) => {
      throw toCniError(e, `bringing ${ifname} up in ${netns}`);
    });
    // Routes after it is up: a gateway must be reachable through the link, which its subnet's route makes so. A route
    // without "gw" goes via the gateway IPAM gave the address of that family, as the reference plugins do
    // (ipam.ConfigureIface), or directly on the link when there is none.
    for (const r of routes) {
      const v6 = r.dst.includes(':');
      const gw = r.gw ?? ((result.ips ?? []) as Array<{ address: string; gateway?: string }>).find((ip) => ip.gateway !== undefined && ip.address.includes(':') === v6)?.gateway;
      await addRoute(ifname, { dst: r.dst, ...(gw !== undefined && { gateway: gw }) }, { netns }).catch((e: unknown) => {
        throw toCniError(e, `adding the route to ${r.dst}${gw ? ` via ${gw}` : ''} on ${ifname}`);
      });
    }
    const link = await getLink(ifname, { netns });
    // The spec's key order: interfaces, ips, routes, dns.
    const ips = result.ips;
    delete result.ips;
    result.interfaces = [{ name: ifname, mac: link.mac, mtu: link.mtu, sandbox: netns }];
    if (ips !== undefined) result.ips = ips;
    if (routes.length > 0) result.routes = routes;
    result.dns = conf.dns ?? {};
    // Plugin-specific data: what a VMM inside the sandbox needs to make the tap's device node (mknod c MAJOR MINOR).
    result.macvtap = {
      ifindex: link.ifindex, master: conf.master, mode: conf.mode,
      ...(link.tap && { tap: { major: link.tap.major, minor: link.tap.minor } }),
    };
    // The last step, so that a failed ADD leaves no record (and never removes one it did not write): what GC needs to
    // release the allocation after the link has gone with its namespace.
    if (conf.ipam) {
      writeRecord(conf.stateDir ?? DEFAULT_STATE_DIR, {
        network: conf.name, containerID: env.containerId as string, ifname, config: JSON.parse(inv.stdin) as Record<string, unknown>, result,
      });
    }
    return result;
  } catch (e) {
    if (created) await deleteLink(created.name, created.netns ? { netns: created.netns } : undefined).catch(() => undefined);
    if (created?.netns && conf.portSecurity) await (await portsec()).removePortSecurity(ifname, { netns: created.netns }).catch(() => undefined);
    if (ipamAdded && conf.ipam) await runIpam(conf.ipam.type, env.path, 'DEL', inv.stdin, ipamEnv(env)).catch(() => undefined);
    throw toCniError(e, 'ADD');
  }
}


/**
 * DEL: idempotent. Deletes the link named `CNI_IFNAME` in `CNI_NETNS` only when it carries this attachment's tag
 * (another plugin's `eth0` is not ours), any link of this attachment left in the runtime's namespace by an ADD that was
 * cut off, releases the IPAM allocation, then removes the attachment's record (kept when the IPAM DEL fails, for GC).
 * A missing namespace, a missing link, a second DEL all succeed.
 */
export async function del(inv: Invocation): Promise<void> {
  const { conf, env } = inv;
  const ifname = env.ifname as string;
  const tag = attachmentTag(conf.name, env.containerId as string, ifname);
  if (env.netns) {
    let link: LinkInfo | null = null;
    try {
      link = await getLink(ifname, { netns: env.netns });
    } catch (e) {
      if (!isNoDevice(e) && !isNetnsGone(e)) throw toCniError(e, `looking up ${ifname} in ${env.netns}`);
    }
    if (link && link.alias === tag) await removeLink(link.ifindex, env.netns);
    // The table outlives its device (newer kernels bind its chain to the next device of that name): removed too, when
    // the sandbox is still there. Only a table this package made is removed.
    if (conf.portSecurity && (link === null || link.alias === tag)) await removeTable(ifname, env.netns);
  }
  for (const link of await listLinks({ kind: 'macvtap' })) {
    if (link.alias === tag) await removeLink(link.ifindex, undefined);
  }
  if (conf.ipam) await runIpam(conf.ipam.type, env.path, 'DEL', inv.stdin, ipamEnv(env));
  removeRecord(recordFile(conf.stateDir ?? DEFAULT_STATE_DIR, conf.name, env.containerId as string, ifname));
}

async function removeTable(ifname: string, netns: string): Promise<void> {
  try {
    await (await portsec()).removePortSecurity(ifname, { netns });
  } catch (e) {
    if (!isNetnsGone(e)) throw toCniError(e, `removing the port security of ${ifname}`);
  }
}

async function removeLink(ifindex: number, netns: string | undefined): Promise<void> {
  try {
    await deleteLink(ifindex, netns === undefined ? undefined : { netns });
  } catch (e) {
    if (!isNoDevice(e) && !isNetnsGone(e)) throw toCniError(e, `deleting link ${ifindex}`);
  }
}

/**
 * CHECK: the attachment is as its config and `prevResult` say: the link exists in the sandbox, is a macvtap in the
 * configured mode on `master`, carries this attachment's tag, is up, and has the configured and reported MAC and MTU.
 * Every difference is named in one error (102). With IPAM, the IPAM plugin's CHECK runs too.
 */
export async function check(inv: Invocation): Promise<void> {
  const { conf, env } = inv;
  const ifname = env.ifname as string;
  const netns = env.netns as string;
  const prev = conf.prevResult;
  if (!prev) throw new CniError(CNI_ERR.INVALID_CONFIG, 'CHECK needs "prevResult" (the result of ADD)');
  const interfaces = Array.isArray(prev.interfaces) ? (prev.interfaces as Array<Record<string, unknown>>) : [];
  const reported = interfaces.find((i) => i.name === ifname && i.sandbox === netns);
  const diffs: string[] = [];
  if (!reported) diffs.push(`prevResult has no interface ${ifname} with sandbox ${netns}`);
  const link = await linkInSandbox(ifname, netns);
  if (!link) throw new CniError(CNI_ERR.CHECK_MISMATCH, `${ifname} does not exist in ${netns}`);
  const master = await getLink(conf.master).catch((e: unknown) => {
    throw isNoDevice(e) ? new CniError(CNI_ERR.CHECK_MISMATCH, `master ${conf.master} does not exist`) : toCniError(e, `looking up master ${conf.master}`);
  });
  if (link.kind !== 'macvtap') diffs.push(`kind is ${String(link.kind)}, not macvtap`);
  if (link.macvlan && link.macvlan.mode !== conf.mode) diffs.push(`mode is ${link.macvlan.mode}, not ${conf.mode}`);
  if (!link.lower || link.lower.netnsid === null || link.lower.ifindex !== master.ifindex) {
    diffs.push(`lower device is ${link.lower ? `ifindex ${link.lower.ifindex}${link.lower.netnsid === null ? ' in the sandbox' : ''}` : 'none'}, not master ${conf.master} (ifindex ${master.ifindex})`);
  }
  const tag = attachmentTag(conf.name, env.containerId as string, ifname);
  if (link.alias !== tag) diffs.push(`tag is ${JSON.stringify(link.alias)}, not ${JSON.stringify(tag)}`);
  if (!link.up) diffs.push('it is down');
  const mac = effectiveMac(conf, env);
  if (mac !== undefined && link.mac !== mac) diffs.push(`MAC is ${String(link.mac)}, the config says ${mac}`);
  if (reported && typeof reported.mac === 'string' && reported.mac.toLowerCase() !== link.mac) diffs.push(`MAC is ${String(link.mac)}, prevResult says ${reported.mac}`);
  if (conf.mtu !== undefined && link.mtu !== conf.mtu) diffs.push(`MTU is ${link.mtu}, the config says ${conf.mtu}`);
  if (reported && typeof reported.mtu === 'number' && reported.mtu !== link.mtu) diffs.push(`MTU is ${link.mtu}, prevResult says ${reported.mtu}`);
  if (conf.promisc !== undefined && link.promisc !== conf.promisc) diffs.push(`promisc is ${link.promisc ? 'on' : 'off'}, the config says ${conf.promisc ? 'on' : 'off'}`);
  if (conf.portSecurity) {
    const state = await (await portsec()).getPortSecurity(ifname, { netns }).catch((e: unknown) => { throw toCniError(e, `reading the port security of ${ifname}`); });
    if (state === null) diffs.push('it has no port security');
    else if (state.device !== ifname) diffs.push(`its port security is bound to ${String(state.device)}`);
  }
  if (diffs.length > 0) throw new CniError(CNI_ERR.CHECK_MISMATCH, `${ifname} in ${netns}: ${diffs.join('; ')}`);
  if (conf.ipam) await runIpam(conf.ipam.type, env.path, 'CHECK', inv.stdin, ipamEnv(env));
}

/** `e` as a CNI error whose message says what was being done (a CNI error keeps its code and gets the prefix). */
function inContext(e: unknown, what: string): CniError {
  return e instanceof CniError ? new CniError(e.code, `${what}: ${e.message}`, e.details) : toCniError(e, what);
}

/** The network namespaces GC looks in: the runtime's own, and each one bind-mounted under `/run/netns`. */
function namespacesToScan(): Array<string | undefined> {
  let named: string[] = [];
  try {
    named = readdirSync('/run/netns').map((n) => `/run/netns/${n}`);
  } catch {
    // no named namespaces
  }
  return [undefined, ...named];
}

/**
 * GC (spec 1.1.0): deletes every link tagged for this network whose attachment (container id, ifname) is not in
 * `cni.dev/valid-attachments`, in the runtime's namespace and in every namespace under `/run/netns` (links without
 * this plugin's tag are never touched), then releases the IPAM allocation of every recorded attachment of this network
 * that is not valid (an IPAM DEL as DEL would send it: the record's config with ADD's result as `prevResult`) and
 * removes its record; this covers attachments whose link went with its namespace. A removed link without a record (an
 * ADD cut off before it wrote one) gets an IPAM DEL with this config. When the IPAM plugin speaks this version, it
 * gets the GC too. Best effort, as the spec asks: every failure is collected, the rest goes on, a record whose IPAM DEL
 * failed stays for the next GC, and the failures come back as one CNI error. Returns the attachments removed.
 */
export async function gc(inv: Invocation): Promise<Array<{ containerID: string; ifname: string }>> {
  const { conf, env } = inv;
  const key = (containerId: string, ifname: string): string => `${containerId}\0${ifname}`;
  const valid = new Set((conf.validAttachments ?? []).map((a) => key(a.containerID, a.ifname)));
  const removed: Array<{ containerID: string; ifname: string }> = [];
  const kept = new Set<string>(); // links that could not be deleted: their addresses are still in use
  const errors: CniError[] = [];
  for (const netns of namespacesToScan()) {
    let links: LinkInfo[];
    try {
      links = await listLinks({ kind: 'macvtap', ...(netns !== undefined && { netns }) });
    } catch (e) {
      if (isNetnsGone(e)) continue; // a stale mount point, or a namespace removed while we looked
      errors.push(toCniError(e, `listing links in ${netns ?? "the runtime's namespace"}`));
      continue;
    }
    for (const link of links) {
      const tag = parseAttachmentTag(link.alias);
      if (!tag || tag.network !== conf.name || valid.has(key(tag.containerId, tag.ifname))) continue;
      try {
        await removeLink(link.ifindex, netns);
        if (conf.portSecurity && netns !== undefined) await removeTable(link.name, netns);
        removed.push({ containerID: tag.containerId, ifname: tag.ifname });
      } catch (e) {
        kept.add(key(tag.containerId, tag.ifname));
        errors.push(inContext(e, `removing ${link.name}`));
      }
    }
  }
  const recorded = new Set<string>();
  let records: ReturnType<typeof listRecords> = [];
  try {
    records = listRecords(conf.stateDir ?? DEFAULT_STATE_DIR, conf.name);
  } catch (e) {
    errors.push(toCniError(e, 'GC'));
  }
  for (const entry of records) {
    if ('error' in entry) {
      errors.push(new CniError(CNI_ERR.KERNEL, entry.error));
      continue;
    }
    const rec = entry.record;
    const k = key(rec.containerID, rec.ifname);
    recorded.add(k);
    if (valid.has(k) || kept.has(k)) continue;
    try {
      await releaseRecorded(rec, env);
      removeRecord(entry.file);
    } catch (e) {
      errors.push(inContext(e, `releasing the IPAM allocation of ${rec.containerID}/${rec.ifname}`));
    }
  }
  if (conf.ipam) {
    try {
      const versions = await ipamVersions(conf.ipam.type, env);
      const delVersion = [...SUPPORTED_VERSIONS].reverse().find((x) => versions.includes(x) && versionAtLeast(conf.cniVersion, x));
      for (const a of removed) {
        if (!delVersion || recorded.has(key(a.containerID, a.ifname))) continue;
        const stdin = JSON.stringify({ ...JSON.parse(inv.stdin), cniVersion: delVersion, 'cni.dev/valid-attachments': undefined });
        await runIpam(conf.ipam.type, env.path, 'DEL', stdin, ipamEnv(env, { containerId: a.containerID, ifname: a.ifname, netns: '' })).catch((e: unknown) => {
          errors.push(inContext(e, `releasing the IPAM allocation of ${a.containerID}/${a.ifname}`));
        });
      }
      if (versions.includes(conf.cniVersion)) await runIpam(conf.ipam.type, env.path, 'GC', inv.stdin, ipamEnv(env));
    } catch (e) {
      errors.push(toCniError(e, 'GC'));
    }
  }
  const [first] = errors;
  if (first) {
    throw errors.length === 1 ? first : new CniError(first.code, errors.map((e) => e.message).join('; '), errors.map((e) => e.details).filter((d) => d !== undefined).join('; ') || undefined);
  }
  return removed;
}

/**
 * The IPAM DEL of a recorded attachment, as DEL would send it: the ADD's config (its `cniVersion`, which the IPAM plugin
 * accepted then, and its `ipam`), ADD's result as `prevResult` (0.4.0 and later), no `CNI_NETNS` (it may be gone).
 */
async function releaseRecorded(rec: AttachmentRecord, env: CniEnv): Promise<void> {
  const ipam = rec.config.ipam as { type?: unknown } | undefined;
  const version = rec.config.cniVersion;
  if (typeof ipam?.type !== 'string' || typeof version !== 'string') throw new CniError(CNI_ERR.KERNEL, `the record of ${rec.containerID}/${rec.ifname} has no "ipam.type" or "cniVersion"`);
  const stdin = JSON.stringify({ ...rec.config, prevResult: versionAtLeast(version, '0.4.0') ? rec.result : undefined });
  await runIpam(ipam.type, env.path, 'DEL', stdin, ipamEnv(env, { containerId: rec.containerID, ifname: rec.ifname, netns: '' }));
}

async function ipamVersions(type: string, env: CniEnv): Promise<string[]> {
  const r = await runIpam(type, env.path, 'VERSION', JSON.stringify({ cniVersion: LATEST_VERSION }), {});
  return Array.isArray(r?.supportedVersions) ? (r.supportedVersions as string[]) : [];
}

/**
 * STATUS (spec 1.1.0): ready when `master` exists in the runtime's namespace and is up; otherwise error 50 saying
 * which. With IPAM, the IPAM plugin's STATUS when it speaks this version.
 */
export async function status(inv: Invocation): Promise<void> {
  const { conf, env } = inv;
  let master: LinkInfo;
  try {
    master = await getLink(conf.master);
  } catch (e) {
    if (isNoDevice(e)) throw new CniError(CNI_ERR.NOT_AVAILABLE, `master ${conf.master} does not exist`);
    throw toCniError(e, `looking up master ${conf.master}`);
  }
  if (!master.up) throw new CniError(CNI_ERR.NOT_AVAILABLE, `master ${conf.master} is down`);
  if (conf.ipam && (await ipamVersions(conf.ipam.type, env)).includes(conf.cniVersion)) {
    await runIpam(conf.ipam.type, env.path, 'STATUS', inv.stdin, ipamEnv(env));
  }
}
