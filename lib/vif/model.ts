/**
 * The Nova `macvtap` vif dictionary: its types, and the checks that turn an untrusted dict into a {@link Vif}.
 *
 * Neutron's macvtap mechanism driver hands Nova a dict whose `details` carry `macvtap_source` (the device the macvtap
 * sits on: the physical interface, or a VLAN sub-interface of it), `macvtap_mode`, `physical_interface` and, for VLAN
 * networks, `vlan`. The libvirt-macvtap-vif blueprint called the first two `macvtap_src` and `mode`; both spellings are
 * accepted here and normalized to Nova's.
 *
 * The checks collect every problem (a {@link VifIssue} with its dotted path) instead of stopping at the first; their
 * rules are the core's predicates in `../validate.ts`, so a MAC or a device name means the same thing everywhere.
 */
import { isInteger, isPlainObject, isUuid, linkNameFault, macKind, MAX_MTU, MAX_NAME_BYTES, MIN_MTU, parseDecimal } from '../validate.js';
import { InvalidVifError, VifDetailsMissingMacvtapParameters, type VifIssue } from './errors.js';

/** libvirt's macvtap modes (`<source mode>`), Nova's `macvtap_mode` values. The kernel calls `passthrough` `passthru`. */
export const VIF_MACVTAP_MODES = ['bridge', 'vepa', 'private', 'passthrough'] as const;

/** A macvtap mode as libvirt and Nova spell it. */
export type VifMacvtapMode = (typeof VIF_MACVTAP_MODES)[number];

/** The `details` keys a macvtap vif must have, in the order Nova checks them. */
export const REQUIRED_MACVTAP_DETAILS = ['macvtap_source', 'macvtap_mode', 'physical_interface'] as const;

/** Blueprint spelling → Nova spelling of `details` keys. */
export const DETAIL_ALIASES: Readonly<Record<string, (typeof REQUIRED_MACVTAP_DETAILS)[number]>> = {
  macvtap_src: 'macvtap_source',
  mode: 'macvtap_mode',
};

// ---------------------------------------------------------------------------------------------------------------
// Types

/** 802.1Qbh port profile (Cisco VN-Link): `<virtualport type='802.1Qbh'><parameters profileid/>`. */
export interface QbhParams {
  /** 1–39 characters, no control characters (libvirt's `virtualPortProfileID`). */
  profileid: string;
}

/** 802.1Qbg (VSI) parameters: `<virtualport type='802.1Qbg'><parameters managerid typeid typeidversion instanceid/>`. */
export interface QbgParams {
  /** 0–255. */
  managerid?: number;
  /** 0–0xffffff. */
  typeid?: number;
  /** 0–255. */
  typeidversion?: number;
  /** A UUID. */
  instanceid?: string;
}

/** The validated `details` of a {@link Vif}: Nova's key names, libvirt's mode names. */
export interface VifDetails {
  /** The device the macvtap sits on (physical interface, or the VLAN device `plug` ensures). */
  macvtap_source: string;
  /** libvirt `<source mode>`. */
  macvtap_mode: VifMacvtapMode;
  /** The physical interface (the VLAN device's lower device). */
  physical_interface: string;
  /** 802.1Q VLAN id 1–4094; when set, `macvtap_source` is a VLAN device on `physical_interface` that `plug` ensures. */
  vlan?: number;
}

/** The validated `network` of a {@link Vif}. */
export interface VifNetwork {
  id?: string;
  /** Unused by macvtap, kept because Nova's dict has it. */
  bridge?: string;
  label?: string;
  meta: {
    /** 68–65535. */
    mtu?: number;
  };
  /** Not interpreted here (libvirt does not see subnets for a direct attachment). */
  subnets?: unknown[];
}

/** A validated, normalized vif dict: Nova's key names, lower-case MAC, numeric VLAN, no `null`s. */
export interface Vif {
  /** Neutron port id. */
  id: string;
  /** The guest's MAC address: unicast, not all-zero, lower case. */
  address: string;
  type: 'macvtap';
  /** `normal`, or `macvtap` (Neutron's vnic type for macvtap ports; Nova treats both alike here). */
  vnic_type: 'normal' | 'macvtap';
  /** Nova's device name (`tap` + port id prefix); the self-managed macvtap's default name. */
  devname?: string;
  network: VifNetwork;
  details: VifDetails;
  qbh_params?: QbhParams;
  qbg_params?: QbgParams;
}

/**
 * `details` as accepted: either spelling of the mode and source keys, the kernel's `passthru`, `null` as absent,
 * the VLAN id as a number or a digit string. Other keys (Neutron's `port_filter`, …) are accepted and dropped.
 */
export interface VifDetailsInput {
  macvtap_source?: string | null;
  /** The blueprint's name of `macvtap_source`. */
  macvtap_src?: string | null;
  macvtap_mode?: VifMacvtapMode | 'passthru' | null;
  /** The blueprint's name of `macvtap_mode`. */
  mode?: VifMacvtapMode | 'passthru' | null;
  physical_interface?: string | null;
  vlan?: number | string | null;
  [key: string]: unknown;
}

/**
 * A vif dict as accepted (blueprint aliases, `null`s for Nova's `None`, numeric-string VLAN ids, unknown extra keys,
 * which are dropped). A {@link Vif} is one too.
 */
export interface VifInput {
  id: string;
  address: string;
  type: 'macvtap';
  vnic_type?: 'normal' | 'macvtap';
  devname?: string | null;
  network: {
    id?: string;
    bridge?: string | null;
    label?: string;
    meta?: { mtu?: number | null; [key: string]: unknown };
    subnets?: unknown[];
    [key: string]: unknown;
  };
  details: VifDetailsInput;
  qbh_params?: QbhParams | null;
  qbg_params?: QbgParams | null;
  [key: string]: unknown;
}

// ---------------------------------------------------------------------------------------------------------------
// Checks. Each takes a value and returns what is wrong with it (a message) or `undefined`.

/** A check of one value: the problem with it, or `undefined` when it is fine. @internal */
export type Check = (v: unknown) => string | undefined;

/** Records what `check` says about `v` under `path`; `true` when `v` passed. @internal */
export function checkAt(issues: VifIssue[], path: string, v: unknown, check: Check): boolean {
  const message = check(v);
  if (message !== undefined) issues.push({ path, message });
  return message === undefined;
}

/** `check`, with `undefined` accepted as absent. @internal */
export const optional = (check: Check): Check => (v) => (v === undefined ? undefined : check(v));

/** `check`, with `undefined` and `null` (Nova's `None`) accepted as absent. */
const nullable = (check: Check): Check => (v) => (v === undefined || v === null ? undefined : check(v));

/** One of `values`, compared exactly. @internal */
export const oneOf = (values: readonly unknown[]): Check => (v) =>
  values.includes(v) ? undefined : values.length === 2
    ? `must be ${JSON.stringify(values[0])} or ${JSON.stringify(values[1])}`
    : `must be one of ${values.join(', ')}`;

/** An integer in `[min, max]`. @internal */
export const integer = (min: number, max: number): Check => (v) => {
  if (isInteger(v, min, max)) return undefined;
  if (typeof v !== 'number') return 'must be a number';
  if (!Number.isInteger(v)) return 'must be an integer';
  return v < min ? `must be at least ${min}` : `must be at most ${max}`;
};

/** `true` or `false`. @internal */
export const boolean: Check = (v) => (typeof v === 'boolean' ? undefined : 'must be true or false');

// Characters both the kernel (dev_valid_name: no '/', ':' or whitespace) and libvirt's RelaxNG `deviceName`
// ([a-zA-Z0-9_.\-\\:/]+) accept: anything else would be refused by one of them later, far from the cause.
const IFNAME_RE = /^[A-Za-z0-9_.\\-]+$/;

/**
 * A network device name valid for both the kernel and libvirt: 1–15 bytes of `[A-Za-z0-9_.\-\\]`, not `.` or `..`.
 * @internal
 */
export const ifname: Check = (v) => {
  if (typeof v !== 'string') return 'must be a string (a network device name)';
  const fault = linkNameFault(v);
  if (fault === 'empty') return 'must not be empty';
  if (fault === 'length') return `must be at most ${MAX_NAME_BYTES} bytes (IFNAMSIZ)`;
  if (!IFNAME_RE.test(v)) return 'may only contain letters, digits, "_", ".", "-" and "\\" (kernel and libvirt device names)';
  // What is left of the kernel's rules once the character set holds: "." and "..".
  if (fault !== undefined) return 'must not be "." or ".."';
  return undefined;
};

/**
 * A unicast, non-zero MAC address `aa:bb:cc:dd:ee:ff` (either case; normalized to lower case by the callers).
 * Multicast addresses are refused, as both the kernel and libvirt's `uniMacAddr` refuse them. @internal
 */
export const mac: Check = (v) => {
  if (typeof v !== 'string') return 'must be a string (a MAC address)';
  switch (macKind(v)) {
    case 'unicast': return undefined;
    case undefined: return 'must be a MAC address aa:bb:cc:dd:ee:ff';
    case 'multicast': return 'must be a unicast MAC address (first octet even)';
    case 'zero': return 'must not be all zero';
  }
};

/** An MTU the kernel accepts on an Ethernet device: 68–65535. @internal */
export const mtu: Check = integer(MIN_MTU, MAX_MTU);

const string: Check = (v) => (typeof v === 'string' ? undefined : 'must be a string');

const modeCheck: Check = (v) => {
  if (typeof v !== 'string') return `must be one of ${VIF_MACVTAP_MODES.join(', ')}`;
  return (VIF_MACVTAP_MODES as readonly string[]).includes(v) || v === 'passthru'
    ? undefined
    : `unknown macvtap mode ${JSON.stringify(v)}: must be one of ${VIF_MACVTAP_MODES.join(', ')}`;
};

// Neutron sends the segmentation id as a string; Nova treats any falsy value as "no VLAN".
const vlanCheck: Check = (v) => {
  const n = typeof v === 'string' ? parseDecimal(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n)) return 'must be a VLAN id 1–4094 (number or digit string)';
  if (!Number.isInteger(n)) return 'must be an integer VLAN id';
  return n >= 1 && n <= 4094 ? undefined : 'VLAN id must be in 1–4094';
};

/**
 * Refuses keys of `obj` not in `known`, naming each, as the core's options do (`knownKeys` in `../validate.ts`): a
 * misspelt option must fail, not silently fall back to a default. @internal
 */
export function unknownKeyIssues(path: string, obj: Record<string, unknown>, known: readonly string[]): VifIssue[] {
  return Object.keys(obj)
    .filter((k) => !known.includes(k))
    .map((k) => ({ path: path ? `${path}.${k}` : k, message: `is not a known option (known: ${known.join(', ')})` }));
}

/** Reads an object with `read` (which records problems under `path`), or records that it is not one. @internal */
export function readObject<T>(issues: VifIssue[], path: string, v: unknown, read: (o: Record<string, unknown>) => T, message = 'must be an object'): T | undefined {
  if (!isPlainObject(v)) {
    issues.push({ path, message });
    return undefined;
  }
  return read(v);
}

const profileid: Check = (v) => {
  if (typeof v !== 'string') return 'must be a string';
  if (v.length === 0) return 'must not be empty';
  if (v.length > 39) return 'must be at most 39 characters (libvirt virtualPortProfileID)';
  // Control characters cannot survive an XML attribute (parsers normalize them to spaces).
  if (/[\x00-\x1f\x7f]/.test(v)) return 'must not contain control characters (newline, tab, …)';
  return undefined;
};

/** Checks 802.1Qbh parameters under `path`; the value as given. @internal */
export function readQbhParams(issues: VifIssue[], path: string, v: unknown): QbhParams | undefined {
  return readObject(issues, path, v, (o) => (checkAt(issues, `${path}.profileid`, o.profileid, profileid) ? { profileid: o.profileid as string } : undefined));
}

const uint8 = optional(integer(0, 255));
const uuid = optional((v) => (isUuid(v) ? undefined : 'must be a UUID'));

/** Checks 802.1Qbg parameters under `path`; the known keys only. @internal */
export function readQbgParams(issues: VifIssue[], path: string, v: unknown): QbgParams | undefined {
  return readObject(issues, path, v, (o) => {
    const before = issues.length;
    checkAt(issues, `${path}.managerid`, o.managerid, uint8);
    checkAt(issues, `${path}.typeid`, o.typeid, optional(integer(0, 0xffffff)));
    checkAt(issues, `${path}.typeidversion`, o.typeidversion, uint8);
    checkAt(issues, `${path}.instanceid`, o.instanceid, uuid);
    if (issues.length > before) return undefined;
    return dropUndefined({ managerid: o.managerid, typeid: o.typeid, typeidversion: o.typeidversion, instanceid: o.instanceid }) as QbgParams;
  });
}

/** Copies `details`, moving blueprint spellings to Nova's and recording a disagreement between the two. */
function resolveDetailAliases(issues: VifIssue[], input: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...input };
  for (const [alias, canonical] of Object.entries(DETAIL_ALIASES)) {
    if (out[alias] === undefined) continue;
    if (out[canonical] === undefined) out[canonical] = out[alias];
    else if (out[canonical] !== out[alias]) {
      issues.push({ path: `details.${alias}`, message: `disagrees with ${canonical} (${JSON.stringify(out[alias])} vs ${JSON.stringify(out[canonical])})` });
    }
    delete out[alias];
  }
  return out;
}

function readDetails(issues: VifIssue[], v: unknown): VifDetails | undefined {
  return readObject(issues, 'details', v, (input) => {
    const before = issues.length;
    const d = resolveDetailAliases(issues, input);
    checkAt(issues, 'details.macvtap_source', d.macvtap_source, ifname);
    checkAt(issues, 'details.macvtap_mode', d.macvtap_mode, modeCheck);
    checkAt(issues, 'details.physical_interface', d.physical_interface, ifname);
    checkAt(issues, 'details.vlan', d.vlan, nullable(vlanCheck));
    if (issues.length > before) return undefined;
    const details: VifDetails = {
      macvtap_source: d.macvtap_source as string,
      // iproute2/kernel spelling accepted for convenience; libvirt and Nova say "passthrough".
      macvtap_mode: d.macvtap_mode === 'passthru' ? 'passthrough' : (d.macvtap_mode as VifMacvtapMode),
      physical_interface: d.physical_interface as string,
    };
    if (d.vlan !== undefined && d.vlan !== null) details.vlan = typeof d.vlan === 'string' ? parseDecimal(d.vlan)! : (d.vlan as number);
    return details;
  });
}

function readNetwork(issues: VifIssue[], v: unknown): VifNetwork | undefined {
  return readObject(issues, 'network', v, (n) => {
    const before = issues.length;
    checkAt(issues, 'network.id', n.id, optional(string));
    checkAt(issues, 'network.bridge', n.bridge, nullable(string));
    checkAt(issues, 'network.label', n.label, optional(string));
    const meta = readObject(issues, 'network.meta', n.meta === undefined ? {} : n.meta, (m) => (checkAt(issues, 'network.meta.mtu', m.mtu, nullable(mtu)) ? { mtu: m.mtu ?? undefined } : undefined));
    checkAt(issues, 'network.subnets', n.subnets, optional((s) => (Array.isArray(s) ? undefined : 'must be an array')));
    if (issues.length > before) return undefined;
    return {
      id: n.id as string | undefined,
      bridge: (n.bridge ?? undefined) as string | undefined,
      label: n.label as string | undefined,
      meta: meta as VifNetwork['meta'],
      subnets: n.subnets as unknown[] | undefined,
    };
  });
}

/** Reads a vif dict, recording every problem in `issues`; the normalized vif when there was none. */
function readVif(issues: VifIssue[], input: unknown): Vif | undefined {
  return readObject(issues, '', input, (o) => {
    const before = issues.length;
    checkAt(issues, 'id', o.id, (v) => (typeof v !== 'string' ? 'must be a string (the Neutron port id)' : v.length === 0 ? 'must not be empty' : undefined));
    checkAt(issues, 'address', o.address, mac);
    checkAt(issues, 'type', o.type, (v) => (v === 'macvtap' ? undefined : `vif type must be "macvtap", not ${JSON.stringify(v)}`));
    // Nova renders vnic types normal and macvtap alike for vif type macvtap; the SR-IOV ones skip the virtio setup.
    checkAt(issues, 'vnic_type', o.vnic_type, (v) =>
      v === undefined || v === 'normal' || v === 'macvtap'
        ? undefined
        : `vnic_type must be "normal" or "macvtap" for a macvtap vif (got ${JSON.stringify(v)}; SR-IOV vnic types are another vif type)`);
    checkAt(issues, 'devname', o.devname, nullable(ifname));
    const network = readNetwork(issues, o.network);
    const details = readDetails(issues, o.details);
    const qbh = o.qbh_params === undefined || o.qbh_params === null ? undefined : readQbhParams(issues, 'qbh_params', o.qbh_params);
    const qbg = o.qbg_params === undefined || o.qbg_params === null ? undefined : readQbgParams(issues, 'qbg_params', o.qbg_params);
    if (issues.length > before) return undefined;
    return {
      id: o.id as string,
      address: (o.address as string).toLowerCase(),
      type: 'macvtap' as const,
      vnic_type: (o.vnic_type ?? 'normal') as 'normal' | 'macvtap',
      devname: (o.devname ?? undefined) as string | undefined,
      network: network!,
      details: details!,
      qbh_params: qbh,
      qbg_params: qbg,
    };
  }, 'a vif must be an object');
}

/** Formats issues for an error message: `details.vlan: VLAN id must be in 1–4094; address: …`. @internal */
export function formatIssues(issues: VifIssue[]): string {
  return issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
}

/** Recursively drops keys whose value is `undefined`, so parsed objects compare and serialize cleanly. @internal */
export function dropUndefined<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => dropUndefined(v)) as T;
  if (typeof value !== 'object' || value === null || Buffer.isBuffer(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = dropUndefined(v);
  return out as T;
}

function missingDetails(input: unknown): string[] {
  if (!isPlainObject(input)) return [];
  // No details object at all: every parameter is missing, as for Nova.
  const d = isPlainObject(input.details) ? input.details : {};
  return REQUIRED_MACVTAP_DETAILS.filter((key) => {
    const aliases = Object.keys(DETAIL_ALIASES).filter((a) => DETAIL_ALIASES[a] === key);
    return (d[key] === undefined || d[key] === null) && aliases.every((a) => d[a] === undefined || d[a] === null);
  });
}

/**
 * Validates and normalizes an untrusted vif dict (e.g. `JSON.parse` of what Neutron sent).
 *
 * @throws {@link VifDetailsMissingMacvtapParameters} when `details` lacks `macvtap_source`, `macvtap_mode` or
 *   `physical_interface` (under either spelling); its `issues` also list any other problem found.
 * @throws {@link InvalidVifError} for anything else (bad MAC, unknown mode, VLAN outside 1–4094, bad device names, …),
 *   with every problem in `issues`.
 */
export function parseVif(input: unknown): Vif {
  const id = isPlainObject(input) && typeof input.id === 'string' ? input.id : undefined;
  const missing = missingDetails(input);
  const issues: VifIssue[] = [];
  const vif = readVif(issues, input);
  if (missing.length > 0) {
    const err = new VifDetailsMissingMacvtapParameters(id, missing);
    const missingPaths = new Set(missing.map((m) => `details.${m}`));
    err.issues.push(...issues.filter((i) => !missingPaths.has(i.path)));
    throw err;
  }
  if (vif === undefined) {
    throw new InvalidVifError(`invalid macvtap vif${id === undefined ? '' : ` ${id}`}: ${formatIssues(issues)}`, {
      ...(id === undefined ? {} : { vifId: id }),
      issues,
    });
  }
  return dropUndefined(vif);
}

/** Kernel (`IFLA_MACVLAN_MODE`, iproute2) spelling of a libvirt/Nova macvtap mode. */
export function kernelMacvtapMode(mode: VifMacvtapMode): 'bridge' | 'vepa' | 'private' | 'passthru' {
  return mode === 'passthrough' ? 'passthru' : mode;
}
