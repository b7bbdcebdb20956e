/**
 * Port security for a vif: the Neutron port's `port_security_enabled`, `fixed_ips`, `allowed_address_pairs` and its
 * security group rules, taken as Neutron's port dict carries them, checked, and applied to the vif's macvtap with the
 * core's `applyPortSecurity` (nftables netdev chains bound to the device).
 *
 * Two ways to a device: `plugSelfManaged` applies it to the macvtap it creates; for `type='direct'` libvirt creates the
 * macvtap at domain start, so the vif layer picks the `<target dev>` name in advance ({@link directTargetDev}) and
 * {@link applyVifPortSecurity} applies the policy to that device once it exists (or to the one a live domain XML names).
 *
 * The policy is checked by the same function the core runs before it sends anything (`compilePolicy`), so a port that
 * would be refused is refused here, before a VLAN device or a macvtap exists.
 */
import { applyPortSecurity, getLink, getPortSecurity, MacvtapError, removePortSecurity, type LinkInfo, type PortSecurityPolicy, type SecurityGroupRule } from '../index.js';
import { compilePolicy } from '../portsec/policy.js';
import type { Netns } from '../types.js';
import { isPlainObject } from '../validate.js';
import { InvalidVifError, VifPlugError, type VifIssue } from './errors.js';
import { formatIssues, ifname, mac as macCheck, parseVif, unknownKeyIssues, type Vif, type VifInput } from './model.js';
import { parseDomainInterfaces } from './xml.js';

/** One of a Neutron port's `fixed_ips`: `{ ip_address, subnet_id }`. */
export interface NeutronFixedIp {
  /** An IPv4 or IPv6 address (a prefix is accepted too). */
  ip_address: string;
  /** Neutron's subnet; not used for filtering. */
  subnet_id?: string | null;
}

/** One of a Neutron port's `allowed_address_pairs`: `{ ip_address, mac_address? }`. */
export interface NeutronAllowedAddressPair {
  /** An address or prefix (IPv4 or IPv6) the guest may also send from. */
  ip_address: string;
  /** The MAC it may send it from; the port's MAC when absent or `null`. */
  mac_address?: string | null;
}

/**
 * The port-security fields of a Neutron port (`GET /v2.0/ports/ID`), under Neutron's names, plus the rules of its
 * security groups. Pass them as Neutron returns them; other keys are refused (naming the key), so a typo never
 * silently turns filtering off.
 */
export interface VifPortSecurity {
  /**
   * `false`: no filtering at all, and any table left on the device is removed (Neutron refuses allowed address pairs
   * and security groups on such a port, and so does this layer). Absent or `null`: `true`, Neutron's default.
   */
  port_security_enabled?: boolean | null;
  /** The port's fixed IPs: the source addresses the guest may use. Absent or `null`: none (link-local only). */
  fixed_ips?: readonly NeutronFixedIp[] | null;
  /** More (address, MAC) combinations the guest may send from. */
  allowed_address_pairs?: readonly NeutronAllowedAddressPair[] | null;
  /**
   * The rules of the port's security groups (`GET /v2.0/security-group-rules?security_group_id=…` for each of the
   * port's `security_groups`), remote groups expanded to `remote_ip_prefix` rules; **stateless** (see the core's
   * `SecurityGroupRule`). Absent or `null`: anti-spoofing only. `[]`: every IPv4/IPv6 packet dropped but those a port
   * needs (ARP, neighbour discovery, DHCP client), as Neutron does for a port without security groups.
   */
  security_group_rules?: readonly SecurityGroupRule[] | null;
  /** The port's MAC. Default: the vif's `address`; when given it must be that address (otherwise: the wrong port). */
  mac_address?: string | null;
}

/** The keys {@link VifPortSecurity} takes. */
export const VIF_PORT_SECURITY_KEYS = ['port_security_enabled', 'fixed_ips', 'allowed_address_pairs', 'security_group_rules', 'mac_address'] as const;

/** Prefixes libvirt keeps for names it generates: a `<target dev>` starting with one is dropped and replaced by libvirt. */
export const LIBVIRT_GENERATED_PREFIXES = ['vnet', 'macvtap', 'macvlan'] as const;

/** Names an nftables table can be made for (the core's rule: `mvtps-<name>` must be an nft identifier). */
const NFT_NAME = /^[A-Za-z0-9_.-]+$/;

function invalid(vif: Vif, what: string, issues: VifIssue[]): InvalidVifError {
  return new InvalidVifError(`invalid ${what} for vif ${vif.id}: ${formatIssues(issues)}`, { vifId: vif.id, issues });
}

/** The field of {@link VifPortSecurity} behind a path the core's policy check names. */
function neutronPath(option: string, path: string): string {
  return option
    .replace(/^policy\.ips\[(\d+)\]/, `${path}.fixed_ips[$1].ip_address`)
    .replace(/^policy\.allowedAddressPairs\[(\d+)\]\.ip/, `${path}.allowed_address_pairs[$1].ip_address`)
    .replace(/^policy\.allowedAddressPairs\[(\d+)\]\.mac/, `${path}.allowed_address_pairs[$1].mac_address`)
    .replace(/^policy\.allowedAddressPairs/, `${path}.allowed_address_pairs`)
    .replace(/^policy\.mac/, `${path}.mac_address`)
    .replace(/^policy\.rules|^rules/, `${path}.security_group_rules`);
}

function arrayOf(issues: VifIssue[], path: string, v: unknown, check: (item: Record<string, unknown>, at: string) => void): void {
  if (v === undefined || v === null) return;
  if (!Array.isArray(v)) return void issues.push({ path, message: 'must be an array' });
  v.forEach((item, i) => {
    const at = `${path}[${i}]`;
    if (!isPlainObject(item)) issues.push({ path: at, message: 'must be an object' });
    else check(item, at);
  });
}

/**
 * Checks a vif's port-security input and turns it into the core's policy: `null` when `port_security_enabled` is
 * `false` (no filtering). Every problem is reported with its path under `path` (`portSecurity.fixed_ips[0].ip_address`).
 *
 * @throws {@link InvalidVifError} listing every problem, before anything touches the host.
 */
export function vifPortSecurityPolicy(vif: Vif, input: unknown, path = 'portSecurity'): PortSecurityPolicy | null {
  if (!isPlainObject(input)) throw invalid(vif, 'port security', [{ path, message: 'must be an object with the Neutron port\'s port-security fields' }]);
  const issues = unknownKeyIssues(path, input, VIF_PORT_SECURITY_KEYS);
  const enabled = input.port_security_enabled;
  if (enabled !== undefined && enabled !== null && typeof enabled !== 'boolean') {
    issues.push({ path: `${path}.port_security_enabled`, message: 'must be a boolean' });
  }
  arrayOf(issues, `${path}.fixed_ips`, input.fixed_ips, (ip, at) => {
    issues.push(...unknownKeyIssues(at, ip, ['ip_address', 'subnet_id']));
    if (typeof ip.ip_address !== 'string') issues.push({ path: `${at}.ip_address`, message: 'must be a string (an IP address)' });
  });
  arrayOf(issues, `${path}.allowed_address_pairs`, input.allowed_address_pairs, (pair, at) => {
    issues.push(...unknownKeyIssues(at, pair, ['ip_address', 'mac_address']));
    if (typeof pair.ip_address !== 'string') issues.push({ path: `${at}.ip_address`, message: 'must be a string (an IP address or prefix)' });
  });
  const rules = input.security_group_rules;
  if (rules !== undefined && rules !== null && !Array.isArray(rules)) issues.push({ path: `${path}.security_group_rules`, message: 'must be an array of Neutron security group rules' });
  let mac = vif.address;
  if (input.mac_address !== undefined && input.mac_address !== null) {
    const bad = macCheck(input.mac_address);
    if (bad !== undefined) issues.push({ path: `${path}.mac_address`, message: bad });
    else if ((input.mac_address as string).toLowerCase() !== vif.address) {
      issues.push({ path: `${path}.mac_address`, message: `is not the vif's address ${vif.address}: the guest sends from the vif's address, so this is another port's data` });
    } else mac = vif.address;
  }
  if (issues.length) throw invalid(vif, 'port security', issues);

  if (enabled === false) {
    // Neutron's own API refuses these on a port without port security (AddressPairAndPortSecurityRequired,
    // PortSecurityAndIPRequiredForSecurityGroups): data saying otherwise is a mistake, not a wish to filter nothing.
    const pairs = input.allowed_address_pairs as unknown[] | null | undefined;
    if (pairs && pairs.length) issues.push({ path: `${path}.allowed_address_pairs`, message: 'must be empty when port_security_enabled is false (Neutron refuses the combination)' });
    if (Array.isArray(rules) && rules.length) issues.push({ path: `${path}.security_group_rules`, message: 'must be empty when port_security_enabled is false (Neutron refuses the combination)' });
    if (issues.length) throw invalid(vif, 'port security', issues);
    return null;
  }
  const policy: PortSecurityPolicy = {
    mac,
    ips: ((input.fixed_ips ?? []) as NeutronFixedIp[]).map((ip) => ip.ip_address),
    ...(input.allowed_address_pairs ? { allowedAddressPairs: input.allowed_address_pairs as NeutronAllowedAddressPair[] } : {}),
    ...(Array.isArray(rules) ? { rules: rules as SecurityGroupRule[] } : {}),
  };
  try {
    // The core's own check, so what it would refuse after the plug created something is refused now.
    compilePolicy(policy);
  } catch (e) {
    if (!(e instanceof TypeError || e instanceof RangeError)) throw e;
    const m = /^The "([^"]+)" option (.*)$/s.exec(e.message);
    throw invalid(vif, 'port security', [m ? { path: neutronPath(m[1] as string, path), message: m[2] as string } : { path, message: e.message }]);
  }
  return policy;
}

/** Problems of a device name port security is applied to; `undefined` when fine. @internal */
export function portSecurityNameIssue(name: string, template = false): string | undefined {
  const bad = ifname(template ? name.replace('%d', '0') : name);
  if (bad !== undefined) return bad;
  if (!NFT_NAME.test(template ? name.replace('%d', '0') : name)) return 'must hold only letters, digits, "_", "." and "-" when port security is applied (nftables names its table after the device)';
  return undefined;
}

/**
 * The `<target dev>` name for a `type='direct'` vif whose port security is applied after libvirt created the macvtap:
 * the vif's `devname` (Nova's `tap` + port id prefix), or that formula when the vif has none or its `devname` starts
 * with a prefix libvirt reserves for names it generates ({@link LIBVIRT_GENERATED_PREFIXES}: such a name is dropped).
 */
export function directTargetDev(vif: Vif): string {
  const d = vif.devname;
  if (d !== undefined && !LIBVIRT_GENERATED_PREFIXES.some((p) => d.startsWith(p)) && portSecurityNameIssue(d) === undefined) return d;
  // Nova's formula (nova.network.model.VIF: ("tap" + port id)[:NIC_NAME_LEN]), with what nft cannot name dropped.
  return `tap${vif.id.replace(/[^A-Za-z0-9_.-]/g, '')}`.slice(0, 14);
}

/** Checks a caller's `<target dev>` for a direct vif. @internal */
export function targetDevIssue(name: unknown): string | undefined {
  if (typeof name !== 'string') return 'must be a string (a device name)';
  const bad = portSecurityNameIssue(name);
  if (bad !== undefined) return bad;
  const reserved = LIBVIRT_GENERATED_PREFIXES.find((p) => name.startsWith(p));
  return reserved === undefined ? undefined : `must not start with "${reserved}": libvirt drops such names and generates its own`;
}

/** Options of {@link applyVifPortSecurity} and {@link removeVifPortSecurity}. */
export interface VifPortSecurityOptions {
  /** The namespace of the macvtap (a path such as `/run/netns/NAME`, or an fd). Default: the current one. */
  netns?: Netns;
  /** The macvtap's name. Default: read from `domainXml` when given, else {@link directTargetDev}. */
  device?: string;
  /** A live domain XML (`virsh dumpxml`): the device is the `<target dev>` of the interface with the vif's MAC. */
  domainXml?: string;
  /** Owner written in the table's comment (the core's `owner`, default `'macvtap'`): `gc({ owner })` collects it. */
  owner?: string;
}

/** What {@link applyVifPortSecurity} did. */
export interface VifPortSecurityResult {
  /** The device the policy is on (or was removed from). */
  device: string;
  /** `true`: the policy is enforced; `false`: port security is disabled and the device is unfiltered. */
  enabled: boolean;
  /** With `enabled: false`: whether a table was there and was removed. */
  removed?: boolean;
}

const OPTION_KEYS = ['netns', 'device', 'domainXml', 'owner'];

function deviceOf(vif: Vif, options: VifPortSecurityOptions): string {
  const raw: unknown = options;
  if (!isPlainObject(raw)) throw invalid(vif, 'port security options', [{ path: '', message: 'options must be an object' }]);
  const issues = unknownKeyIssues('', raw, OPTION_KEYS);
  if (options.device !== undefined) {
    const bad = portSecurityNameIssue(String(options.device));
    if (typeof options.device !== 'string' || bad !== undefined) issues.push({ path: 'device', message: bad ?? 'must be a string' });
  }
  if (options.device !== undefined && options.domainXml !== undefined) issues.push({ path: 'domainXml', message: 'give device or domainXml, not both' });
  if (issues.length) throw invalid(vif, 'port security options', issues);
  if (options.device !== undefined) return options.device;
  if (options.domainXml === undefined) return directTargetDev(vif);
  const mine = parseDomainInterfaces(options.domainXml).filter((i) => i.mac === vif.address);
  if (mine.length !== 1 || mine[0]?.target?.dev === undefined) {
    throw invalid(vif, 'domain XML', [{
      path: 'domainXml',
      message: mine.length === 0 ? `has no direct/ethernet interface with the vif's MAC ${vif.address}`
        : mine.length > 1 ? `has ${mine.length} interfaces with the vif's MAC ${vif.address}`
          : 'the interface has no <target dev> (give the live XML of a running domain: libvirt writes the name there)',
    }]);
  }
  return mine[0].target.dev;
}

const nsOpt = (netns: Netns | undefined): { netns?: Netns } => (netns === undefined ? {} : { netns });

/**
 * Applies a vif's port security to its macvtap — for `type='direct'`, the one libvirt created at domain start (start
 * the domain paused, apply, then resume, as Nova does while it waits for Neutron's `network-vif-plugged`: the guest
 * never runs unfiltered). With `port_security_enabled: false` it removes any table the device has instead.
 * Applying again replaces the policy atomically (the core's `applyPortSecurity`).
 *
 * The device must be a macvtap with the vif's MAC: anything else is refused and left alone.
 *
 * Equivalent to: `nft -f` with the port's table `netdev mvtps-DEV` (see `applyPortSecurity`), or
 * `nft delete table netdev mvtps-DEV` when port security is disabled.
 *
 * @throws {@link InvalidVifError} for bad input (before the host is touched); {@link VifPlugError}
 *   `ERR_VIF_DEVICE_MISSING` (no such device), `ERR_VIF_PLUG_FAILED` (not this vif's macvtap, or the kernel or
 *   libnftables refused; `cause` is the core's `MacvtapError`).
 */
export async function applyVifPortSecurity(vifInput: VifInput | Vif, portSecurity: VifPortSecurity, options: VifPortSecurityOptions = {}): Promise<VifPortSecurityResult> {
  const vif = parseVif(vifInput);
  const policy = vifPortSecurityPolicy(vif, portSecurity);
  const device = deviceOf(vif, options);
  const fail = (message: string, cause?: unknown): VifPlugError =>
    new VifPlugError('ERR_VIF_PLUG_FAILED', `${message}${cause instanceof Error ? `: ${cause.message}` : ''}`, { vifId: vif.id, device, ...(cause === undefined ? {} : { cause }) });
  if (policy === null) {
    try {
      // Only a table of ours: one of that name without our comment is someone else's (the core's apply leaves it too).
      const ours = (await getPortSecurity(device, nsOpt(options.netns))) !== null;
      return { device, enabled: false, removed: ours && (await removePortSecurity(device, nsOpt(options.netns))) };
    } catch (e) {
      throw fail(`cannot remove the port security of ${device}`, e);
    }
  }
  let link: LinkInfo;
  try {
    link = await getLink(device, nsOpt(options.netns));
  } catch (e) {
    if (e instanceof MacvtapError && e.code === 'ENODEV') {
      throw new VifPlugError('ERR_VIF_DEVICE_MISSING', `macvtap ${device} does not exist (is the domain started?)`, { vifId: vif.id, device, cause: e });
    }
    throw fail(`cannot look up ${device}`, e);
  }
  if (link.kind !== 'macvtap' || link.mac !== vif.address) {
    throw fail(`${device} is a ${link.kind ?? 'kindless'} link with MAC ${link.mac ?? 'none'}, not this vif's macvtap; not filtering it`);
  }
  try {
    // By ifindex: a device replaced since the check is ENODEV, never filtered by mistake.
    await applyPortSecurity(link.ifindex, policy, { ...nsOpt(options.netns), ...(options.owner === undefined ? {} : { owner: options.owner }) });
  } catch (e) {
    throw fail(`cannot apply port security to ${device}`, e);
  }
  return { device, enabled: true };
}

/**
 * Removes the port-security table of a vif's device (for `type='direct'`, after the domain stopped: libvirt deletes
 * the macvtap, but the table outlives it and newer kernels bind it to the next device of that name).
 *
 * Equivalent to: `nft delete table netdev mvtps-DEV`.
 * @returns `true` when there was one.
 * @throws {@link InvalidVifError} for bad options; {@link VifPlugError} `ERR_VIF_PLUG_FAILED` when it is refused.
 */
export async function removeVifPortSecurity(vifInput: VifInput | Vif, options: VifPortSecurityOptions = {}): Promise<boolean> {
  const vif = parseVif(vifInput);
  const device = deviceOf(vif, options);
  try {
    // Only a table of ours, as in applyVifPortSecurity.
    if ((await getPortSecurity(device, nsOpt(options.netns))) === null) return false;
    return await removePortSecurity(device, nsOpt(options.netns));
  } catch (e) {
    throw new VifPlugError('ERR_VIF_PLUG_FAILED', `cannot remove the port security of ${device}: ${(e as Error).message}`, { vifId: vif.id, device, cause: e });
  }
}
