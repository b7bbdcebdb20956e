/**
 * Plugging a Nova macvtap vif on the host, as Nova's `plug_macvtap` does, through the core's rtnetlink API:
 *
 * - `plug`: with a VLAN, ensure the VLAN device `macvtap_source` on `physical_interface` (create it, or accept it when
 *   it already is that VLAN on that lower device), bring it up and set its MTU from `network.meta.mtu` every time;
 *   without one, ensure the source device is up. libvirt then creates the macvtap itself (`type='direct'`).
 *   Nova (Zed) differs in three ways, checked against its own code by `test/vif-nova-plug.test.ts`: it sets no MTU
 *   (libvirt refuses `<mtu>` on direct, so this is the only place the network's MTU reaches the macvtap's lower);
 *   with the physical interface down it accepts `ip link set … up` failing and leaves the VLAN down (ours fails with
 *   `ENETDOWN` and deletes the VLAN it created); and it leaves an existing down device down (ours brings it up).
 * - `unplug`: nothing to delete for libvirt-managed attachments; VLAN devices go only through {@link removeVlan}.
 * - `plugSelfManaged`: for drivers that own the device: also create the macvtap with the vif's MAC, open its queues,
 *   and return them with the matching unmanaged `type='ethernet'` XML.
 *
 * Work on one device is serialized in-process (per namespace as given and device name), so concurrent plugs of vifs
 * sharing a VLAN do not race each other; a race with another process is settled by the kernel's `EEXIST`.
 */
import {
  MacvtapError,
  applyPortSecurity,
  createMacvtap,
  createVlan,
  deleteLink,
  getLink,
  getPortSecurity,
  openTap,
  removePortSecurity,
  setBandwidth,
  setLink,
  type Bandwidth as CoreBandwidth,
  type PortSecurityPolicy,
  type TapQueue,
} from '../index.js';
import type { LinkInfo, Netns } from '../types.js';
import { isInteger, isPlainObject, MAX_TAP_QUEUES } from '../validate.js';
import { InvalidVifError, VifPlugError, type VifPlugErrorCode } from './errors.js';
import { INTERFACE_OPTION_KEYS, interfaceFromVif, type InterfaceConfig, type InterfaceOptions } from './interface.js';
import { formatIssues, ifname, kernelMacvtapMode, parseVif, unknownKeyIssues, type Vif, type VifInput } from './model.js';
import {
  applyVifPortSecurity,
  directTargetDev,
  portSecurityNameIssue,
  targetDevIssue,
  vifPortSecurityPolicy,
  type VifPortSecurity,
  type VifPortSecurityOptions,
  type VifPortSecurityResult,
} from './portsec.js';
import { interfaceToXml } from './xml.js';

/** Options of {@link plug}, {@link unplug} and {@link removeVlan}. */
export interface PlugOptions {
  /** Do the work in this network namespace (a path such as `/run/netns/NAME`, or an fd). Default: the current one. */
  netns?: Netns;
}

/** Options of {@link plug}. */
export interface DirectPlugOptions extends PlugOptions {
  /**
   * The Neutron port's port-security fields and its security group rules (see {@link VifPortSecurity}), checked now,
   * before anything is created. libvirt creates the macvtap only at domain start, so `plug` cannot filter it yet: the
   * result carries the `<target dev>` to put in the domain XML and `applyPortSecurity()` to call once the domain is
   * created (paused) and before it is resumed.
   */
  portSecurity?: VifPortSecurity;
  /**
   * With `portSecurity`: the `<target dev>` name (libvirt names the macvtap so). Default {@link directTargetDev}: the
   * vif's `devname` when libvirt keeps it. Must not start with `vnet`, `macvtap` or `macvlan` (libvirt replaces those).
   */
  targetDev?: string;
}

/** What {@link plug} found or made. */
export interface PlugResult {
  /** The validated vif. */
  vif: Vif;
  /** The source device (`details.macvtap_source`) as it is after plugging: up, with the MTU set for a VLAN. */
  source: LinkInfo;
  /** `true` when this call created the VLAN device. */
  vlanCreated: boolean;
  /**
   * With `portSecurity`: the name to render as `<target dev>` (`toInterfaceXml(vif, { targetDev })`), so the device
   * libvirt creates is known in advance.
   */
  targetDev?: string;
  /**
   * With `portSecurity`: applies it ({@link applyVifPortSecurity}) to `targetDev` in the plug's namespace, or to the
   * device `options.device` / the `<target dev>` of `options.domainXml` names. Call it after libvirt created the
   * macvtap (domain created paused) and before the guest runs.
   */
  applyPortSecurity?: (options?: Omit<VifPortSecurityOptions, 'netns'>) => Promise<VifPortSecurityResult>;
}

// ---------------------------------------------------------------------------------------------------------------
// Per-device serialization

const chains = new Map<string, Promise<void>>();

function deviceKey(netns: Netns | undefined, device: string): string {
  return `${netns === undefined ? '' : typeof netns === 'number' ? `fd:${netns}` : netns}\u0000${device}`;
}

/**
 * Runs `fn` after every earlier call for the same key has settled (success or failure), so read-check-create
 * sequences on one device never interleave in this process.
 */
async function serialized<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const previous = chains.get(key) ?? Promise.resolve();
  const run = previous.then(fn);
  const tail = run.then(
    () => undefined,
    () => undefined,
  );
  chains.set(key, tail);
  try {
    return await run;
  } finally {
    // Last one out removes the entry, so the map does not grow with every device ever plugged.
    if (chains.get(key) === tail) chains.delete(key);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

const codeOf = (e: unknown): string | undefined => (e instanceof MacvtapError ? e.code : undefined);

function plugError(code: VifPlugErrorCode, message: string, vif: Vif, device: string, cause?: unknown): VifPlugError {
  const detail = cause instanceof Error ? `: ${cause.message}` : '';
  return new VifPlugError(code, `${message}${detail}`, { vifId: vif.id, device, ...(cause === undefined ? {} : { cause }) });
}

async function getLinkOrNull(name: string, netns: Netns | undefined): Promise<LinkInfo | null> {
  try {
    return await getLink(name, netns === undefined ? {} : { netns });
  } catch (e) {
    if (codeOf(e) === 'ENODEV') return null;
    throw e;
  }
}

const nsOpt = (netns: Netns | undefined): { netns?: Netns } => (netns === undefined ? {} : { netns });

/** Refuses option keys a function does not take, naming each (as the core does), before anything is touched. */
function checkOptions(vif: Vif, what: string, options: unknown, known: readonly string[]): void {
  if (!isPlainObject(options)) {
    throw new InvalidVifError(`invalid ${what} for vif ${vif.id}: must be an object`, { vifId: vif.id, issues: [{ path: '', message: 'must be an object' }] });
  }
  const issues = unknownKeyIssues('', options, known);
  if (issues.length) throw new InvalidVifError(`invalid ${what} for vif ${vif.id}: ${formatIssues(issues)}`, { vifId: vif.id, issues });
}

/**
 * Removes the port-security table of `name` if it is one this package made (a table of that name without our
 * comment is someone else's and stays, as the core's apply leaves it); libnftables missing means there is none.
 */
async function dropPortSecurity(name: string, netns: Netns | undefined): Promise<void> {
  try {
    if ((await getPortSecurity(name, nsOpt(netns))) !== null) await removePortSecurity(name, nsOpt(netns));
  } catch (e) {
    if (!(e instanceof MacvtapError && e.code === 'ENOENT' && e.syscall === 'dlopen')) throw e;
  }
}

/** Is `link` the VLAN `id` on the device named `lower`? Compares by ifindex when the lower's name is not resolved. */
async function isVlanOn(link: LinkInfo, id: number, lower: string, netns: Netns | undefined): Promise<boolean> {
  if (link.kind !== 'vlan' || link.vlan?.id !== id || !link.lower || link.lower.netnsid !== null) return false;
  if (link.lower.name !== null) return link.lower.name === lower;
  const phys = await getLinkOrNull(lower, netns);
  return phys !== null && phys.ifindex === link.lower.ifindex;
}

function describeLink(link: LinkInfo): string {
  const what = link.kind === 'vlan' && link.vlan ? `VLAN ${link.vlan.id}` : `a ${link.kind ?? 'kindless'} link`;
  return `${what}${link.lower ? ` on ${link.lower.name ?? `ifindex ${link.lower.ifindex}`}` : ''}`;
}

/** Ensures the VLAN device of a vif exists (ours or identical), is up, and has the network's MTU. */
async function ensureVlan(vif: Vif, vlan: number, netns: Netns | undefined): Promise<{ link: LinkInfo; created: boolean }> {
  const { macvtap_source: name, physical_interface: phys } = vif.details;
  let link = await getLinkOrNull(name, netns);
  let created = false;
  if (link === null) {
    try {
      link = await createVlan({ lower: phys, id: vlan, name, ...nsOpt(netns) });
      created = true;
    } catch (e) {
      const code = codeOf(e);
      if (code === 'EOPNOTSUPP') {
        throw plugError('ERR_VIF_VLAN_UNSUPPORTED', `cannot create VLAN ${vlan} device ${name} on ${phys}: the kernel lacks 802.1Q VLAN support (RTM_NEWLINK answered EOPNOTSUPP)`, vif, name, e);
      }
      if (code === 'ENODEV') throw plugError('ERR_VIF_DEVICE_MISSING', `physical interface ${phys} for VLAN ${vlan} does not exist`, vif, phys, e);
      // Another process created it between our look and our create: judge what it made like any existing link.
      if (code === 'EEXIST') link = await getLinkOrNull(name, netns);
      else throw plugError('ERR_VIF_PLUG_FAILED', `cannot create VLAN ${vlan} device ${name} on ${phys}`, vif, name, e);
      if (link === null) throw plugError('ERR_VIF_PLUG_FAILED', `VLAN device ${name} vanished while being created`, vif, name, e);
    }
  }
  if (!created && !(await isVlanOn(link, vlan, phys, netns))) {
    throw plugError('ERR_VIF_VLAN_CONFLICT', `${name} exists but is ${describeLink(link)}, not VLAN ${vlan} on ${phys}; refusing to reuse or change it`, vif, name);
  }
  const mtu = vif.network.meta.mtu;
  try {
    // Up, as Nova's ensure_vlan, and the MTU on every plug (the network's MTU may have changed), which Nova (Zed) does
    // not set: plug_macvtap passes ensure_vlan no MTU.
    const after = await setLink(link.ifindex, { up: true, ...(mtu === undefined ? {} : { mtu }) }, nsOpt(netns));
    return { link: after ?? link, created };
  } catch (e) {
    // Leave nothing half-made behind: a VLAN this call created goes again.
    if (created) await deleteLink(link.ifindex, nsOpt(netns)).catch(() => undefined);
    throw plugError('ERR_VIF_PLUG_FAILED', `cannot bring up ${name}${mtu === undefined ? '' : ` with MTU ${mtu}`}`, vif, name, e);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// API

/**
 * Plugs a vif for a libvirt-managed `type='direct'` attachment (Nova's `plug_macvtap`). Idempotent: plugging the
 * same vif again changes nothing but the VLAN device's MTU, if the network's changed.
 *
 * Equivalent to, with a VLAN: `ip link add link PHYS name SOURCE type vlan id VLAN` (unless it exists as exactly that),
 * `ip link set SOURCE up mtu MTU`; without one: `ip link set SOURCE up`.
 *
 * @throws {@link VifDetailsMissingMacvtapParameters} / {@link InvalidVifError} for a bad vif, before the kernel is touched.
 * @throws {@link VifPlugError} `ERR_VIF_VLAN_UNSUPPORTED` (kernel without 802.1Q; nothing is left behind),
 *   `ERR_VIF_VLAN_CONFLICT` (a link of that name is something else; it is left alone), `ERR_VIF_DEVICE_MISSING`,
 *   `ERR_VIF_PLUG_FAILED`; `cause` is the core's `MacvtapError`.
 */
export async function plug(vifInput: VifInput | Vif, options: DirectPlugOptions = {}): Promise<PlugResult> {
  const vif = parseVif(vifInput);
  checkOptions(vif, 'plug options', options, ['netns', 'portSecurity', 'targetDev']);
  const { netns } = options;
  const source = vif.details.macvtap_source;
  // Port security is checked now, before the VLAN device may be created; it is applied once libvirt made the macvtap.
  let secure: Pick<PlugResult, 'targetDev' | 'applyPortSecurity'> = {};
  if (options.portSecurity !== undefined) {
    vifPortSecurityPolicy(vif, options.portSecurity);
    const bad = options.targetDev === undefined ? undefined : targetDevIssue(options.targetDev);
    if (bad !== undefined) throw new InvalidVifError(`invalid plug options for vif ${vif.id}: targetDev: ${bad}`, { vifId: vif.id, issues: [{ path: 'targetDev', message: bad }] });
    const targetDev = options.targetDev ?? directTargetDev(vif);
    const portSecurity = options.portSecurity;
    secure = {
      targetDev,
      applyPortSecurity: (o = {}) => applyVifPortSecurity(vif, portSecurity, { ...(o.domainXml === undefined && o.device === undefined ? { device: targetDev } : {}), ...o, ...nsOpt(netns) }),
    };
  } else if (options.targetDev !== undefined) {
    throw new InvalidVifError(`invalid plug options for vif ${vif.id}: targetDev: only with portSecurity (otherwise pass it to toInterfaceXml)`, {
      vifId: vif.id, issues: [{ path: 'targetDev', message: 'only with portSecurity (otherwise pass it to toInterfaceXml)' }],
    });
  }
  return serialized(deviceKey(netns, source), async () => {
    if (vif.details.vlan !== undefined) {
      try {
        const { link, created } = await ensureVlan(vif, vif.details.vlan, netns);
        return { vif, source: link, vlanCreated: created, ...secure };
      } catch (e) {
        if (e instanceof VifPlugError) throw e;
        throw plugError('ERR_VIF_PLUG_FAILED', `cannot ensure VLAN device ${source}`, vif, source, e);
      }
    }
    let link: LinkInfo | null;
    try {
      link = await getLinkOrNull(source, netns);
    } catch (e) {
      throw plugError('ERR_VIF_PLUG_FAILED', `cannot look up source device ${source}`, vif, source, e);
    }
    if (link === null) throw plugError('ERR_VIF_DEVICE_MISSING', `source device ${source} does not exist`, vif, source);
    if (!link.up) {
      try {
        link = (await setLink(link.ifindex, { up: true }, nsOpt(netns))) ?? link;
      } catch (e) {
        throw plugError('ERR_VIF_PLUG_FAILED', `cannot bring up source device ${source}`, vif, source, e);
      }
    }
    return { vif, source: link, vlanCreated: false, ...secure };
  });
}

/**
 * Unplugs a libvirt-managed vif. libvirt created and deletes the macvtap itself, and VLAN devices are shared by every
 * vif of the network (Neutron's agent removes them when the network goes, see {@link removeVlan}), so there is
 * nothing to delete: this validates the vif and returns. For self-managed plugs use {@link SelfManagedPlug.unplug}
 * or {@link unplugSelfManaged}.
 *
 * @throws {@link InvalidVifError} / {@link VifDetailsMissingMacvtapParameters} for a bad vif.
 */
export async function unplug(vifInput: VifInput | Vif, options: PlugOptions = {}): Promise<void> {
  checkOptions(parseVif(vifInput), 'unplug options', options, ['netns']);
}

/**
 * Deletes the VLAN device of a vif's network (the network-delete step of Neutron's agent). Refuses to delete a link
 * of that name that is not that VLAN on that physical interface.
 *
 * Equivalent to: `ip link del SOURCE` after checking `ip -d link show SOURCE`.
 *
 * @returns `true` when it deleted the device, `false` when there was none (or the vif has no VLAN).
 * @throws {@link VifPlugError} `ERR_VIF_VLAN_CONFLICT` or `ERR_VIF_PLUG_FAILED`.
 */
export async function removeVlan(vifInput: VifInput | Vif, options: PlugOptions = {}): Promise<boolean> {
  const vif = parseVif(vifInput);
  checkOptions(vif, 'removeVlan options', options, ['netns']);
  const { netns } = options;
  const { macvtap_source: name, physical_interface: phys, vlan } = vif.details;
  if (vlan === undefined) return false;
  return serialized(deviceKey(netns, name), async () => {
    const link = await getLinkOrNull(name, netns);
    if (link === null) return false;
    if (!(await isVlanOn(link, vlan, phys, netns))) {
      throw plugError('ERR_VIF_VLAN_CONFLICT', `${name} is ${describeLink(link)}, not VLAN ${vlan} on ${phys}; not deleting it`, vif, name);
    }
    try {
      await deleteLink(link.ifindex, nsOpt(netns));
      return true;
    } catch (e) {
      if (codeOf(e) === 'ENODEV') return false;
      throw plugError('ERR_VIF_PLUG_FAILED', `cannot delete VLAN device ${name}`, vif, name, e);
    }
  });
}

/** Options of {@link plugSelfManaged}. */
export interface SelfManagedOptions extends PlugOptions {
  /** Number of queues (fds) to open, 1–256; above 1 the XML asks for multiqueue with that many. Default 1. */
  queues?: number;
  /** The macvtap's name or a `%d` template. Default: the vif's `devname`, else `'macvtap%d'`. */
  name?: string;
  /** Keep the virtio-net header on the queues (what QEMU wants). Default `true`. */
  vnetHdr?: boolean;
  /** `O_NONBLOCK` on the queues (what QEMU expects). Default `true`. */
  nonblock?: boolean;
  /** Further `<interface>` options (model, offloads, bandwidth, …); `form`, `targetDev` and `vcpus` are set here. */
  xml?: Omit<InterfaceOptions, 'form' | 'targetDev' | 'vcpus'>;
  /**
   * The Neutron port's port-security fields and its security group rules (see {@link VifPortSecurity}): applied to the
   * macvtap right after it is created, before any queue is opened (so no frame passes unfiltered), and removed with
   * it. `port_security_enabled: false` removes any table the new device's name still has. Checked before anything is
   * created; a failing apply deletes the macvtap again.
   */
  portSecurity?: VifPortSecurity;
}

/** A macvtap this layer created for a vif, its open queues, and the unmanaged XML that matches them. */
export interface SelfManagedPlug {
  /** The validated vif. */
  vif: Vif;
  /** The macvtap as created (up, with the vif's MAC). */
  link: LinkInfo;
  /** Its open queues: hand their fds to QEMU (`detach()`), or read and write frames. */
  queues: TapQueue[];
  /** `<interface type='ethernet'><target dev='NAME' managed='no'/>…`. */
  xml: string;
  /** With `portSecurity`: the policy enforced on the macvtap, `null` when port security is disabled. */
  portSecurity?: PortSecurityPolicy | null;
  /** The same, typed. */
  config: InterfaceConfig;
  /** Closes the queues still open, deletes the macvtap and its port-security table. Idempotent. */
  unplug(): Promise<void>;
  /** Same as {@link SelfManagedPlug.unplug}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Self-managed plug: {@link plug}, then create the macvtap on the source device with the vif's MAC and mode, open its
 * queues, and return them with the unmanaged `type='ethernet'` XML naming it. The macvtap is deleted again if a later
 * step fails (a VLAN device {@link plug} made stays: it belongs to the network, as with `plug`). With `portSecurity`,
 * the policy is applied between creating the macvtap and opening its queues, and so is the `<bandwidth>` of the XML
 * (`xml.quota`'s `quota:vif_*` keys and `xml.bandwidth`), with the core's `setBandwidth`.
 *
 * Equivalent to: `plug`, then `ip link add link SOURCE name NAME address MAC type macvtap mode MODE`,
 * `ip link set NAME up`, with `portSecurity` the core's `applyPortSecurity` (`nft -f`, table `netdev mvtps-NAME`),
 * and opening `/dev/tapIFINDEX` once per queue.
 *
 * @throws {@link InvalidVifError} for bad options (before the kernel is touched), and whatever {@link plug} throws;
 *   {@link VifPlugError} `ERR_VIF_PLUG_FAILED` when the macvtap cannot be created or opened.
 */
export async function plugSelfManaged(vifInput: VifInput | Vif, options: SelfManagedOptions = {}): Promise<SelfManagedPlug> {
  const vif = parseVif(vifInput);
  checkOptions(vif, 'self-managed plug options', options, ['netns', 'queues', 'name', 'vnetHdr', 'nonblock', 'xml', 'portSecurity']);
  // form, targetDev and vcpus are this function's to set: given in `xml`, they would be silently overridden.
  if (options.xml !== undefined) {
    const issues = isPlainObject(options.xml)
      ? unknownKeyIssues('xml', options.xml, INTERFACE_OPTION_KEYS.filter((k) => k !== 'form' && k !== 'targetDev' && k !== 'vcpus'))
      : [{ path: 'xml', message: 'must be an object' }];
    if (issues.length) throw new InvalidVifError(`invalid self-managed plug options for vif ${vif.id}: ${formatIssues(issues)}`, { vifId: vif.id, issues });
  }
  const { netns } = options;
  const queues = options.queues ?? 1;
  if (!isInteger(queues, 1, MAX_TAP_QUEUES)) {
    throw new InvalidVifError(`queues must be an integer in 1–${MAX_TAP_QUEUES}, got ${String(queues)}`, {
      vifId: vif.id,
      issues: [{ path: 'queues', message: `must be an integer in 1–${MAX_TAP_QUEUES}` }],
    });
  }
  const name = options.name ?? vif.devname ?? 'macvtap%d';
  const provisional = name.replace('%d', '0');
  const nameIssue = ifname(provisional) ?? ((name.match(/%d/g)?.length ?? 0) > 1 ? 'at most one %d' : undefined);
  if (nameIssue !== undefined) {
    throw new InvalidVifError(`name ${JSON.stringify(name)} is not a device name or a template with one %d`, {
      vifId: vif.id,
      issues: [{ path: 'name', message: nameIssue }],
    });
  }
  const xmlOptions = (targetDev: string): InterfaceOptions => ({ ...options.xml, form: 'ethernet', targetDev, vcpus: queues });
  // Refuse bad XML options and port security now, before anything exists on the host.
  const { bandwidth } = interfaceFromVif(vif, xmlOptions(provisional));
  const secured = options.portSecurity !== undefined;
  const policy = secured ? vifPortSecurityPolicy(vif, options.portSecurity) : null;
  const nftIssue = secured ? portSecurityNameIssue(name, true) : undefined;
  if (nftIssue !== undefined) {
    throw new InvalidVifError(`name ${JSON.stringify(name)} cannot carry port security: ${nftIssue}`, { vifId: vif.id, issues: [{ path: 'name', message: nftIssue }] });
  }

  await plug(vif, nsOpt(netns));
  let link: LinkInfo;
  try {
    link = await createMacvtap({
      lower: vif.details.macvtap_source,
      name,
      mode: kernelMacvtapMode(vif.details.macvtap_mode),
      mac: vif.address,
      up: true,
      ...nsOpt(netns),
    });
  } catch (e) {
    throw plugError('ERR_VIF_PLUG_FAILED', `cannot create macvtap ${name} on ${vif.details.macvtap_source}`, vif, name, e);
  }
  // Undoes what this call made on the host: the macvtap, and the table if this call applied one.
  let applied = false;
  const rollback = async (): Promise<void> => {
    await deleteLink(link.ifindex, nsOpt(netns)).catch(() => undefined);
    if (applied) await dropPortSecurity(link.name, netns).catch(() => undefined);
  };
  if (secured) {
    try {
      // Before any queue exists: no frame reaches or leaves the guest unfiltered. A disabled port gets no table,
      // including one left under this name by an earlier device (kernels from 6.16 rebind it to the new device).
      // A failed apply changed nothing (one nftables transaction): only the macvtap is undone then.
      if (policy === null) await dropPortSecurity(link.name, netns);
      else {
        await applyPortSecurity(link.ifindex, policy, nsOpt(netns));
        applied = true;
      }
    } catch (e) {
      await rollback();
      throw plugError('ERR_VIF_PLUG_FAILED', `cannot ${policy === null ? 'remove the port security of' : 'apply port security to'} macvtap ${link.name}`, vif, link.name, e);
    }
  }
  if (bandwidth?.inbound || bandwidth?.outbound) {
    // The XML's <bandwidth> (quota keys and the explicit option; validated above, no floor) enforced on the macvtap
    // itself, before any queue exists: libvirt leaves a managed='no' target alone.
    try {
      await setBandwidth(link.ifindex, bandwidth as CoreBandwidth, nsOpt(netns));
    } catch (e) {
      await rollback();
      throw plugError('ERR_VIF_PLUG_FAILED', `cannot set the bandwidth of macvtap ${link.name}`, vif, link.name, e);
    }
  }
  let opened: TapQueue[];
  try {
    opened = await openTap(link.ifindex, { queues, vnetHdr: options.vnetHdr ?? true, nonblock: options.nonblock ?? true, ...nsOpt(netns) });
  } catch (e) {
    await rollback();
    throw plugError('ERR_VIF_PLUG_FAILED', `cannot open ${queues} queue(s) of macvtap ${link.name}`, vif, link.name, e);
  }
  const config = interfaceFromVif(vif, xmlOptions(link.name));
  const xml = interfaceToXml(config);

  let unplugged: Promise<void> | undefined;
  const doUnplug = (): Promise<void> =>
    (unplugged ??= (async () => {
      await Promise.all(opened.map((q) => q.close()));
      try {
        await deleteLink(link.ifindex, nsOpt(netns));
      } catch (e) {
        if (codeOf(e) !== 'ENODEV') throw plugError('ERR_VIF_PLUG_FAILED', `cannot delete macvtap ${link.name}`, vif, link.name, e);
      }
      // The table outlives its device; newer kernels would bind it to the next device of that name.
      if (applied) {
        try {
          await dropPortSecurity(link.name, netns);
        } catch (e) {
          throw plugError('ERR_VIF_PLUG_FAILED', `cannot remove the port security of ${link.name}`, vif, link.name, e);
        }
      }
    })());
  return {
    vif, link, queues: opened, xml, config, ...(secured ? { portSecurity: policy } : {}),
    unplug: doUnplug, [Symbol.asyncDispose]: doUnplug,
  };
}

/**
 * Removes a self-managed macvtap when the {@link SelfManagedPlug} object is gone (e.g. after a driver restart): deletes
 * the link named `name` (default the vif's `devname`) if it is a macvtap with the vif's MAC, and the port-security
 * table of that name (`netdev mvtps-NAME`) if there is one.
 *
 * @returns `true` when it deleted it, `false` when there was none.
 * @throws {@link VifPlugError} `ERR_VIF_PLUG_FAILED` when a link of that name is something else (it is left alone)
 *   or cannot be deleted.
 */
export async function unplugSelfManaged(vifInput: VifInput | Vif, options: PlugOptions & { name?: string } = {}): Promise<boolean> {
  const vif = parseVif(vifInput);
  checkOptions(vif, 'unplugSelfManaged options', options, ['netns', 'name']);
  const name = options.name ?? vif.devname;
  if (name === undefined) {
    throw new InvalidVifError(`vif ${vif.id} has no devname: pass the macvtap's name`, { vifId: vif.id, issues: [{ path: 'name', message: 'required' }] });
  }
  return serialized(deviceKey(options.netns, name), async () => {
    const link = await getLinkOrNull(name, options.netns);
    let deleted = false;
    if (link !== null) {
      if (link.kind !== 'macvtap' || link.mac !== vif.address) {
        throw plugError('ERR_VIF_PLUG_FAILED', `${name} is ${describeLink(link)} with MAC ${link.mac ?? 'none'}, not this vif's macvtap; not deleting it`, vif, name);
      }
      try {
        await deleteLink(link.ifindex, nsOpt(options.netns));
        deleted = true;
      } catch (e) {
        if (codeOf(e) !== 'ENODEV') throw plugError('ERR_VIF_PLUG_FAILED', `cannot delete macvtap ${name}`, vif, name, e);
      }
    }
    // A port-security table the lost plug applied outlives the device: remove it too (none without libnftables).
    if (portSecurityNameIssue(name) === undefined) {
      try {
        await dropPortSecurity(name, options.netns);
      } catch (e) {
        throw plugError('ERR_VIF_PLUG_FAILED', `cannot remove the port security of ${name}`, vif, name, e);
      }
    }
    return deleted;
  });
}
