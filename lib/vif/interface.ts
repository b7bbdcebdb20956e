/**
 * The typed form of one libvirt `<interface>` this layer produces and reads back: `type='direct'` (libvirt creates
 * the macvtap) or `type='ethernet'` with an unmanaged target (the caller created it, see `plugSelfManaged`).
 *
 * One check ({@link checkInterfaceConfig}) covers both what `toInterfaceXml` is asked to produce and what
 * `parseInterfaceXml` read, including the cross-field rules libvirt enforces beyond its RelaxNG grammar, so a bad
 * combination fails here with our error instead of at `virsh define` time.
 */
import { isInteger, isPlainObject, MAX_TAP_QUEUES, parseDecimal, U32_MAX } from '../validate.js';
import { InvalidVifError, type VifIssue } from './errors.js';
// TSDoc links only.
import type { novaInterfaceXml } from './nova.js';
import {
  VIF_MACVTAP_MODES,
  boolean,
  checkAt,
  dropUndefined,
  formatIssues,
  ifname,
  integer,
  mac,
  mtu,
  oneOf,
  optional,
  parseVif,
  readObject,
  readQbgParams,
  readQbhParams,
  type Check,
  type QbgParams,
  type QbhParams,
  type Vif,
  type VifInput,
  type VifMacvtapMode,
  unknownKeyIssues,
} from './model.js';

export { MAX_TAP_QUEUES };

/** NIC models libvirt's QEMU driver knows that a macvtap-backed interface is used with. */
export const INTERFACE_MODELS = ['virtio', 'virtio-transitional', 'virtio-non-transitional', 'e1000', 'e1000e', 'rtl8139'] as const;

/** A NIC model of {@link INTERFACE_MODELS}. */
export type InterfaceModel = (typeof INTERFACE_MODELS)[number];

/** One direction of `<bandwidth>`: kilobytes/s (`average`, `peak`, `floor`) and kilobytes (`burst`), each 1–2^32-1. */
export interface BandwidthRate {
  average?: number;
  peak?: number;
  burst?: number;
  floor?: number;
}

/** `<bandwidth>`: `inbound` is traffic to the guest, `outbound` traffic from it. */
export interface Bandwidth {
  inbound?: BandwidthRate;
  outbound?: BandwidthRate;
}

/** `<driver><host …/>` offloads (what the host side of virtio-net may do). */
export interface HostOffloads {
  csum?: boolean;
  gso?: boolean;
  tso4?: boolean;
  tso6?: boolean;
  ecn?: boolean;
  ufo?: boolean;
  mrgRxbuf?: boolean;
}

/** `<driver><guest …/>` offloads (what the guest's virtio-net may negotiate). */
export interface GuestOffloads {
  csum?: boolean;
  tso4?: boolean;
  tso6?: boolean;
  ecn?: boolean;
  ufo?: boolean;
}

/** `<driver>` of a virtio interface. */
export interface Driver {
  /** `vhost` (in-kernel backend) or `qemu` (userspace). */
  name?: 'vhost' | 'qemu';
  /** Multiqueue: number of queue pairs, 1–{@link MAX_TAP_QUEUES}. */
  queues?: number;
  /** Virtio RX ring size: 256, 512 or 1024 (powers of two QEMU accepts). */
  rxQueueSize?: number;
  /** Virtio TX ring size: 256, 512 or 1024 (QEMU honours it only with the vhost-user backend; Nova sets it anyway). */
  txQueueSize?: number;
  host?: HostOffloads;
  guest?: GuestOffloads;
}

/** `<virtualport>`: IEEE 802.1Qbg (VEPA/VSI) or 802.1Qbh (port profile) association parameters. */
export type Virtualport = { type: '802.1Qbg'; parameters?: QbgParams } | { type: '802.1Qbh'; parameters?: QbhParams };

/**
 * One `<interface>`. Element and attribute names map one to one: `source` → `<source dev mode>`, `target` →
 * `<target dev managed>`, `linkState` → `<link state>`, `bootOrder` → `<boot order>`, `alias` → `<alias name>`,
 * `trustGuestRxFilters` → the attribute of `<interface>`.
 */
export interface InterfaceConfig {
  type: 'direct' | 'ethernet';
  /** Unicast, not all-zero; lower case once checked. */
  mac: string;
  source?: { dev: string; mode: VifMacvtapMode };
  target?: { dev: string; managed?: boolean };
  model?: InterfaceModel;
  driver?: Driver;
  bandwidth?: Bandwidth;
  /** 68–65535; `'ethernet'` only. */
  mtu?: number;
  linkState?: 'up' | 'down';
  trustGuestRxFilters?: boolean;
  virtualport?: Virtualport;
  /** 1–2^32-1. */
  bootOrder?: number;
  /** A libvirt user alias: `ua-` and then `[A-Za-z0-9_.-]+`. */
  alias?: string;
}

const isVirtio = (model: string | undefined): boolean => model === undefined || model.startsWith('virtio');

const positive = integer(1, U32_MAX);

/**
 * Checks an optional object at `path` with a check per known key, refusing any other key (`nested` names keys the
 * caller reads itself); its known keys.
 */
function optionalFields(issues: VifIssue[], path: string, v: unknown, fields: Record<string, Check>, nested: readonly string[] = []): Record<string, unknown> | undefined {
  if (v === undefined) return undefined;
  return readObject(issues, path, v, (o) => {
    issues.push(...unknownKeyIssues(path, o, [...Object.keys(fields), ...nested]));
    const out: Record<string, unknown> = {};
    for (const [key, check] of Object.entries(fields)) if (checkAt(issues, `${path}.${key}`, o[key], check)) out[key] = o[key];
    return out;
  });
}

const ON_OFF = optional(boolean);
// QEMU's virtio-net takes a power of two in 256–1024 for either ring (virtio_net_device_realize).
const queueSize: Check = (n) => (n === 256 || n === 512 || n === 1024 ? undefined : 'must be 256, 512 or 1024 (a power of two QEMU accepts)');
const RATE = optional(positive);

function readDriver(issues: VifIssue[], v: unknown): Driver | undefined {
  const d = optionalFields(issues, 'driver', v, {
    name: optional(oneOf(['vhost', 'qemu'])),
    queues: optional(integer(1, MAX_TAP_QUEUES)),
    rxQueueSize: optional(queueSize),
    txQueueSize: optional(queueSize),
  }, ['host', 'guest']);
  if (d === undefined || !isPlainObject(v)) return undefined;
  d.host = optionalFields(issues, 'driver.host', v.host, { csum: ON_OFF, gso: ON_OFF, tso4: ON_OFF, tso6: ON_OFF, ecn: ON_OFF, ufo: ON_OFF, mrgRxbuf: ON_OFF });
  d.guest = optionalFields(issues, 'driver.guest', v.guest, { csum: ON_OFF, tso4: ON_OFF, tso6: ON_OFF, ecn: ON_OFF, ufo: ON_OFF });
  return d as Driver;
}

const RATE_FIELDS = { average: RATE, peak: RATE, burst: RATE, floor: RATE };

function readBandwidth(issues: VifIssue[], v: unknown): Bandwidth | undefined {
  if (v === undefined) return undefined;
  return readObject(issues, 'bandwidth', v, (b) => (issues.push(...unknownKeyIssues('bandwidth', b, ['inbound', 'outbound'])), {
    inbound: optionalFields(issues, 'bandwidth.inbound', b.inbound, RATE_FIELDS),
    outbound: optionalFields(issues, 'bandwidth.outbound', b.outbound, RATE_FIELDS),
  }));
}

function readVirtualport(issues: VifIssue[], v: unknown): Virtualport | undefined {
  if (v === undefined) return undefined;
  return readObject(issues, 'virtualport', v, (vp): Virtualport | undefined => {
    issues.push(...unknownKeyIssues('virtualport', vp, ['type', 'parameters']));
    const params = vp.parameters;
    if (isPlainObject(params)) {
      const known = vp.type === '802.1Qbh' ? ['profileid'] : ['managerid', 'typeid', 'typeidversion', 'instanceid'];
      issues.push(...unknownKeyIssues('virtualport.parameters', params, known));
    }
    if (vp.type === '802.1Qbh') return { type: vp.type, parameters: params === undefined ? undefined : readQbhParams(issues, 'virtualport.parameters', params) };
    if (vp.type === '802.1Qbg') return { type: vp.type, parameters: params === undefined ? undefined : readQbgParams(issues, 'virtualport.parameters', params) };
    return void issues.push({ path: 'virtualport.type', message: 'must be "802.1Qbg" or "802.1Qbh"' });
  });
}

// libvirt only keeps user aliases that start with "ua-"; aliasName is [a-zA-Z0-9_\-.]+.
const aliasCheck: Check = (v) => {
  if (typeof v !== 'string') return 'must be a string';
  return /^ua-[A-Za-z0-9_.-]+$/.test(v) ? undefined : 'must be "ua-" followed by letters, digits, "_", "-" or "." (a libvirt user alias)';
};

/** libvirt's rules beyond its grammar, for a config whose fields are each valid. */
function crossFieldIssues(c: InterfaceConfig): VifIssue[] {
  const issues: VifIssue[] = [];
  const issue = (path: string, message: string): void => void issues.push({ path, message });
  if (c.type === 'direct') {
    if (!c.source) issue('source', 'type "direct" needs a source device and mode');
    // qemuDomainNetSupportsMTU: libvirt refuses <mtu> on direct; the macvtap takes its source device's MTU.
    if (c.mtu !== undefined) issue('mtu', 'libvirt refuses <mtu> on type "direct": set the source device MTU instead (plug does, from network.meta.mtu)');
    if (c.target?.managed !== undefined) issue('target.managed', 'managed is only meaningful for type "ethernet"');
  } else {
    if (c.source) issue('source', 'type "ethernet" takes no source device');
    if (!c.target) issue('target', 'type "ethernet" needs a target device');
    if (c.virtualport) issue('virtualport', 'libvirt accepts <virtualport> only on bridge, network and direct interfaces');
    if (c.trustGuestRxFilters !== undefined) issue('trustGuestRxFilters', 'libvirt supports trustGuestRxFilters only on type "direct"');
  }
  if (c.driver && !isVirtio(c.model)) issue('driver', `<driver> options need a virtio model, not ${c.model}`);
  if (c.trustGuestRxFilters && !isVirtio(c.model)) issue('trustGuestRxFilters', 'trustGuestRxFilters needs a virtio model');
  for (const dir of ['inbound', 'outbound'] as const) {
    const r = c.bandwidth?.[dir];
    if (!r) continue;
    // virNetDevBandwidthParse: floor only inbound and only for type='network'; average is mandatory otherwise.
    if (r.floor !== undefined) issue(`bandwidth.${dir}.floor`, 'libvirt accepts floor only on <inbound> of interfaces of type "network", not direct or ethernet');
    if (r.average === undefined) issue(`bandwidth.${dir}.average`, 'libvirt requires average in every <inbound>/<outbound> (peak and burst need it)');
  }
  return issues;
}

const CONFIG_KEYS = [
  'type', 'mac', 'source', 'target', 'model', 'driver', 'bandwidth', 'mtu', 'linkState', 'trustGuestRxFilters', 'virtualport', 'bootOrder', 'alias',
] as const satisfies ReadonlyArray<keyof InterfaceConfig>;

/**
 * Every problem of an {@link InterfaceConfig} (libvirt's grammar, then its semantic rules for direct/ethernet), and
 * the config with its known keys only, `undefined`s dropped and the MAC in lower case. @internal
 */
export function interfaceConfigIssues(config: unknown): { issues: VifIssue[]; config: InterfaceConfig } {
  const issues: VifIssue[] = [];
  if (!isPlainObject(config)) return { issues: [{ path: '', message: 'an interface must be an object' }], config: config as InterfaceConfig };
  const c = config;
  issues.push(...unknownKeyIssues('', c, CONFIG_KEYS));
  checkAt(issues, 'type', c.type, oneOf(['direct', 'ethernet']));
  checkAt(issues, 'mac', c.mac, mac);
  const out = dropUndefined({
    type: c.type,
    mac: typeof c.mac === 'string' ? c.mac.toLowerCase() : c.mac,
    source: optionalFields(issues, 'source', c.source, { dev: ifname, mode: oneOf(VIF_MACVTAP_MODES) }),
    target: optionalFields(issues, 'target', c.target, { dev: ifname, managed: optional(boolean) }),
    model: checkAt(issues, 'model', c.model, optional(oneOf(INTERFACE_MODELS))) ? c.model : undefined,
    driver: readDriver(issues, c.driver),
    bandwidth: readBandwidth(issues, c.bandwidth),
    mtu: checkAt(issues, 'mtu', c.mtu, optional(mtu)) ? c.mtu : undefined,
    linkState: checkAt(issues, 'linkState', c.linkState, optional(oneOf(['up', 'down']))) ? c.linkState : undefined,
    trustGuestRxFilters: checkAt(issues, 'trustGuestRxFilters', c.trustGuestRxFilters, optional(boolean)) ? c.trustGuestRxFilters : undefined,
    virtualport: readVirtualport(issues, c.virtualport),
    bootOrder: checkAt(issues, 'bootOrder', c.bootOrder, optional(positive)) ? c.bootOrder : undefined,
    alias: checkAt(issues, 'alias', c.alias, optional(aliasCheck)) ? c.alias : undefined,
  }) as InterfaceConfig;
  if (issues.length === 0) issues.push(...crossFieldIssues(out));
  return { issues, config: out };
}

/**
 * Validates an {@link InterfaceConfig} (libvirt's grammar plus its semantic rules for direct/ethernet).
 * @throws {@link InvalidVifError} listing every problem.
 */
export function checkInterfaceConfig(config: unknown, vifId?: string): InterfaceConfig {
  const { issues, config: c } = interfaceConfigIssues(config);
  if (issues.length) {
    throw new InvalidVifError(`invalid interface${vifId === undefined ? '' : ` for vif ${vifId}`}: ${formatIssues(issues)}`, {
      ...(vifId === undefined ? {} : { vifId }),
      issues,
    });
  }
  return c;
}

/** Nova's flavor quota keys for vif bandwidth, plus `vif_inbound_floor`, and where each lands in {@link Bandwidth}. */
export const BANDWIDTH_QUOTA_KEYS = {
  vif_inbound_average: ['inbound', 'average'],
  vif_inbound_peak: ['inbound', 'peak'],
  vif_inbound_burst: ['inbound', 'burst'],
  vif_inbound_floor: ['inbound', 'floor'],
  vif_outbound_average: ['outbound', 'average'],
  vif_outbound_peak: ['outbound', 'peak'],
  vif_outbound_burst: ['outbound', 'burst'],
} as const satisfies Record<string, readonly ['inbound' | 'outbound', 'average' | 'peak' | 'burst' | 'floor']>;

/**
 * Maps a flavor's extra specs onto `<bandwidth>`, as Nova's `set_vif_bandwidth_config` does: keys
 * `quota:vif_inbound_average` … (the `quota:` scope may be omitted), values integers or digit strings. Other keys are
 * ignored (a flavor has many). Returns `undefined` when no bandwidth key is present.
 *
 * @throws {@link InvalidVifError} naming the key whose value is not a positive 32-bit integer.
 */
export function bandwidthFromQuota(extraSpecs: Record<string, unknown>): Bandwidth | undefined {
  const out: { inbound?: Record<string, number>; outbound?: Record<string, number> } = {};
  const issues: { path: string; message: string }[] = [];
  for (const [rawKey, value] of Object.entries(extraSpecs)) {
    const key = rawKey.startsWith('quota:') ? rawKey.slice('quota:'.length) : rawKey;
    if (!Object.hasOwn(BANDWIDTH_QUOTA_KEYS, key)) continue;
    const [dir, attr] = BANDWIDTH_QUOTA_KEYS[key as keyof typeof BANDWIDTH_QUOTA_KEYS];
    const n = typeof value === 'string' ? parseDecimal(value) : value;
    if (!isInteger(n, 1, U32_MAX)) {
      issues.push({ path: rawKey, message: `must be a positive integer (kilobytes${attr === 'burst' ? '' : '/s'}), got ${JSON.stringify(value)}` });
      continue;
    }
    (out[dir] ??= {})[attr] = n;
  }
  if (issues.length) throw new InvalidVifError(`invalid bandwidth quota: ${formatIssues(issues)}`, { issues });
  return out.inbound || out.outbound ? out : undefined;
}

/** How to render a vif as an `<interface>`. Every field is optional. */
export interface InterfaceOptions {
  /**
   * `'direct'` (default): libvirt creates the macvtap on `details.macvtap_source`. `'ethernet'`: the unmanaged form
   * for a macvtap the caller created (`<target dev managed='no'>`); needs `targetDev`.
   */
  form?: 'direct' | 'ethernet';
  /** `<target dev>`: required for `'ethernet'`; for `'direct'` it names the macvtap libvirt creates. */
  targetDev?: string;
  /** `<model type>`; default `'virtio'`. */
  model?: InterfaceModel;
  /**
   * Asks for multiqueue: `<driver name='vhost' queues='min(vcpus, maxTapQueues)'>` (only when that is above 1).
   * Unlike Nova, giving vCPUs is the request itself: Nova turns multiqueue on only for `hw:vif_multiqueue_enabled`
   * (flavor) or `hw_vif_multiqueue_enabled` (image) — use {@link novaInterfaceXml} for Nova's decision.
   */
  vcpus?: number;
  /** Ceiling for the queue count; default {@link MAX_TAP_QUEUES} (Nova's `max_queues`). */
  maxTapQueues?: number;
  /** `<driver name>`; default `'vhost'` when multiqueue is in effect or `rxQueueSize` is given (as Nova), otherwise absent. */
  driverName?: 'vhost' | 'qemu';
  /** `<driver rx_queue_size>`: 256, 512 or 1024. */
  rxQueueSize?: number;
  /** `<driver tx_queue_size>`: 256, 512 or 1024. */
  txQueueSize?: number;
  /** `<driver><host …/>`. */
  hostOffloads?: HostOffloads;
  /** `<driver><guest …/>`. */
  guestOffloads?: GuestOffloads;
  /** `<bandwidth>`; merged over what `quota` gives. */
  bandwidth?: Bandwidth;
  /**
   * A flavor's extra specs; `quota:vif_*` keys become `<bandwidth>` (see {@link bandwidthFromQuota}). Stricter than
   * Nova, by choice: a peak or burst without the direction's average is refused (Nova silently drops the direction,
   * libvirt needs the average), and so is a 0 (Nova writes it, libvirt's schema refuses it). {@link novaInterfaceXml}
   * follows Nova instead and warns about what it drops.
   */
  quota?: Record<string, unknown>;
  /**
   * `<mtu size>`. Default: `network.meta.mtu` for `'ethernet'`, none for `'direct'` (libvirt refuses it there; `plug`
   * sets the VLAN device's MTU instead). `null` omits it.
   */
  mtu?: number | null;
  /** `<link state>`. */
  linkState?: 'up' | 'down';
  /** `trustGuestRxFilters='yes|no'` (direct only). */
  trustGuestRxFilters?: boolean;
  /** `<virtualport>`; default (form `'direct'` only) from the vif's `qbh_params`/`qbg_params`. `null` omits it. */
  virtualport?: Virtualport | null;
  /** `<boot order>`. */
  bootOrder?: number;
  /** `<alias name>`, must start with `ua-`. */
  alias?: string;
}

/** The keys {@link InterfaceOptions} takes. */
export const INTERFACE_OPTION_KEYS = [
  'form', 'targetDev', 'model', 'vcpus', 'maxTapQueues', 'driverName', 'rxQueueSize', 'txQueueSize', 'hostOffloads', 'guestOffloads',
  'bandwidth', 'quota', 'mtu', 'linkState', 'trustGuestRxFilters', 'virtualport', 'bootOrder', 'alias',
] as const satisfies ReadonlyArray<keyof InterfaceOptions>;

/** Problems of the options {@link interfaceFromVif} reads itself; the rest are checked in the config they become. */
function optionIssues(options: unknown): VifIssue[] {
  if (!isPlainObject(options)) return [{ path: '', message: 'options must be an object' }];
  const issues: VifIssue[] = unknownKeyIssues('', options, INTERFACE_OPTION_KEYS);
  // The nested objects are copied into the config under other names: name their keys as the caller spelt them.
  const nested: Array<[string, unknown, readonly string[]]> = [
    ['hostOffloads', options.hostOffloads, ['csum', 'gso', 'tso4', 'tso6', 'ecn', 'ufo', 'mrgRxbuf']],
    ['guestOffloads', options.guestOffloads, ['csum', 'tso4', 'tso6', 'ecn', 'ufo']],
    ['bandwidth', options.bandwidth, ['inbound', 'outbound']],
  ];
  for (const [path, v, known] of nested) if (isPlainObject(v)) issues.push(...unknownKeyIssues(path, v, known));
  checkAt(issues, 'form', options.form, optional(oneOf(['direct', 'ethernet'])));
  checkAt(issues, 'vcpus', options.vcpus, optional(integer(1, Infinity)));
  checkAt(issues, 'maxTapQueues', options.maxTapQueues, optional(integer(1, MAX_TAP_QUEUES)));
  checkAt(issues, 'mtu', options.mtu, (v) => (v === null ? undefined : optional(mtu)(v)));
  return issues;
}

/**
 * The {@link InterfaceConfig} for a vif: what `toInterfaceXml` renders. Validates the vif (if not already a parsed
 * {@link Vif}) and the options, and checks the result against libvirt's rules.
 *
 * @throws {@link VifDetailsMissingMacvtapParameters} / {@link InvalidVifError} before anything is produced.
 */
export function interfaceFromVif(vifInput: VifInput | Vif, options: InterfaceOptions = {}): InterfaceConfig {
  const vif = parseVif(vifInput);
  const issues = optionIssues(options);
  if (issues.length) {
    throw new InvalidVifError(`invalid interface options for vif ${vif.id}: ${formatIssues(issues)}`, { vifId: vif.id, issues });
  }
  const form = options.form ?? 'direct';
  if (form === 'ethernet' && options.targetDev === undefined) {
    throw new InvalidVifError(`the ethernet form needs targetDev (the macvtap the caller created) for vif ${vif.id}`, {
      vifId: vif.id,
      issues: [{ path: 'targetDev', message: 'required for form "ethernet"' }],
    });
  }
  const queues = options.vcpus === undefined ? undefined : Math.min(options.vcpus, options.maxTapQueues ?? MAX_TAP_QUEUES);
  const multiqueue = queues !== undefined && queues > 1;

  const driver = dropUndefined({
    // As Nova's get_base_config: the vhost backend is the one that takes an RX queue size, so asking for one names it.
    name: options.driverName ?? (multiqueue || options.rxQueueSize !== undefined ? 'vhost' : undefined),
    queues: multiqueue ? queues : undefined,
    rxQueueSize: options.rxQueueSize,
    txQueueSize: options.txQueueSize,
    host: options.hostOffloads,
    guest: options.guestOffloads,
  });

  const quotaBw = options.quota ? bandwidthFromQuota(options.quota) : undefined;
  const bandwidth = quotaBw || options.bandwidth
    ? {
        inbound: quotaBw?.inbound || options.bandwidth?.inbound ? { ...quotaBw?.inbound, ...options.bandwidth?.inbound } : undefined,
        outbound: quotaBw?.outbound || options.bandwidth?.outbound ? { ...quotaBw?.outbound, ...options.bandwidth?.outbound } : undefined,
      }
    : undefined;

  let virtualport: Virtualport | undefined;
  if (options.virtualport !== undefined) virtualport = options.virtualport ?? undefined;
  // The vif's port-profile parameters only mean something where libvirt associates the port (type direct).
  else if (form === 'ethernet') virtualport = undefined;
  else if (vif.qbh_params) virtualport = { type: '802.1Qbh', parameters: vif.qbh_params };
  else if (vif.qbg_params) virtualport = { type: '802.1Qbg', parameters: vif.qbg_params };

  const mtu = options.mtu === null ? undefined : options.mtu ?? (form === 'ethernet' ? vif.network.meta.mtu : undefined);

  const config = {
    type: form,
    mac: vif.address,
    source: form === 'direct' ? { dev: vif.details.macvtap_source, mode: vif.details.macvtap_mode } : undefined,
    target:
      form === 'ethernet'
        ? { dev: options.targetDev, managed: false }
        : options.targetDev !== undefined
          ? { dev: options.targetDev }
          : undefined,
    model: options.model ?? 'virtio',
    driver: Object.keys(driver).length ? driver : undefined,
    bandwidth,
    mtu,
    linkState: options.linkState,
    trustGuestRxFilters: options.trustGuestRxFilters,
    virtualport,
    bootOrder: options.bootOrder,
    alias: options.alias,
  };
  return checkInterfaceConfig(dropUndefined(config), vif.id);
}
