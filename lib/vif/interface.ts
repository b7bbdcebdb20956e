/**
 * The typed form of one libvirt `<interface>` this layer produces and reads back: `type='direct'` (libvirt creates
 * the macvtap) or `type='ethernet'` with an unmanaged target (the caller created it, see `plugSelfManaged`).
 *
 * One zod schema checks both what `toInterfaceXml` is asked to produce and what `parseInterfaceXml` read, including
 * the cross-field rules libvirt enforces beyond its RelaxNG grammar, so a bad combination fails here with our error
 * instead of at `virsh define` time.
 */
import { z } from 'zod';
import { InvalidVifError } from './errors.js';
import {
  VIF_MACVTAP_MODES,
  dropUndefined,
  formatIssues,
  ifnameSchema,
  macSchema,
  mtuSchema,
  parseVif,
  qbgParamsSchema,
  qbhParamsSchema,
  toIssues,
  type Vif,
  type VifInput,
} from './model.js';

/** The Linux tap/macvtap queue limit (`MAX_TAP_QUEUES`): the default ceiling for multiqueue. */
export const MAX_TAP_QUEUES = 256;

/** NIC models libvirt's QEMU driver knows that a macvtap-backed interface is used with. */
export const INTERFACE_MODELS = ['virtio', 'virtio-transitional', 'virtio-non-transitional', 'e1000', 'e1000e', 'rtl8139'] as const;

const isVirtio = (model: string | undefined): boolean => model === undefined || model.startsWith('virtio');

const onOff = z.boolean({ error: 'must be true or false' });
const positiveInt = z.number({ error: 'must be a number' }).int({ error: 'must be an integer' }).min(1, { error: 'must be at least 1' });
// libvirt's `speed`/`BurstSize`: unsignedInt with minInclusive 1.
const rate = positiveInt.max(0xffffffff, { error: 'must fit 32 bits' });

/** One direction of `<bandwidth>`: kilobytes/s (`average`, `peak`, `floor`) and kilobytes (`burst`). */
export const bandwidthRateSchema = z.object({
  average: rate.optional(),
  peak: rate.optional(),
  burst: rate.optional(),
  floor: rate.optional(),
});

/** `<bandwidth>`: `inbound` is traffic to the guest, `outbound` traffic from it. */
export const bandwidthSchema = z.object({
  inbound: bandwidthRateSchema.optional(),
  outbound: bandwidthRateSchema.optional(),
});

/** `<driver><host …/>` offloads (what the host side of virtio-net may do). */
export const hostOffloadsSchema = z.object({
  csum: onOff.optional(),
  gso: onOff.optional(),
  tso4: onOff.optional(),
  tso6: onOff.optional(),
  ecn: onOff.optional(),
  ufo: onOff.optional(),
  mrgRxbuf: onOff.optional(),
});

/** `<driver><guest …/>` offloads (what the guest's virtio-net may negotiate). */
export const guestOffloadsSchema = z.object({
  csum: onOff.optional(),
  tso4: onOff.optional(),
  tso6: onOff.optional(),
  ecn: onOff.optional(),
  ufo: onOff.optional(),
});

/** `<driver>` of a virtio interface. */
export const driverSchema = z.object({
  /** `vhost` (in-kernel backend) or `qemu` (userspace). */
  name: z.enum(['vhost', 'qemu']).optional(),
  /** Multiqueue: number of queue pairs. */
  queues: positiveInt.max(MAX_TAP_QUEUES, { error: `must be at most ${MAX_TAP_QUEUES} (MAX_TAP_QUEUES)` }).optional(),
  /** Virtio RX ring size: a power of two in 256–1024 (QEMU's limits). */
  rxQueueSize: z
    .number()
    .int()
    .refine((n) => n === 256 || n === 512 || n === 1024, { error: 'must be 256, 512 or 1024 (a power of two QEMU accepts)' })
    .optional(),
  host: hostOffloadsSchema.optional(),
  guest: guestOffloadsSchema.optional(),
});

/** `<virtualport>`: IEEE 802.1Qbg (VEPA/VSI) or 802.1Qbh (port profile) association parameters. */
export const virtualportSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('802.1Qbg'), parameters: qbgParamsSchema.optional() }),
  z.object({ type: z.literal('802.1Qbh'), parameters: qbhParamsSchema.optional() }),
]);

// libvirt only keeps user aliases that start with "ua-"; aliasName is [a-zA-Z0-9_\-.]+.
const aliasSchema = z
  .string({ error: 'must be a string' })
  .regex(/^ua-[A-Za-z0-9_.-]+$/, { error: 'must be "ua-" followed by letters, digits, "_", "-" or "." (a libvirt user alias)' });

/**
 * One `<interface>`. Element and attribute names map one to one: `source` → `<source dev mode>`, `target` →
 * `<target dev managed>`, `linkState` → `<link state>`, `bootOrder` → `<boot order>`, `alias` → `<alias name>`,
 * `trustGuestRxFilters` → the attribute of `<interface>`.
 */
export const interfaceConfigSchema = z
  .object({
    type: z.enum(['direct', 'ethernet'], { error: 'must be "direct" or "ethernet"' }),
    mac: macSchema,
    source: z.object({ dev: ifnameSchema, mode: z.enum(VIF_MACVTAP_MODES, { error: `must be one of ${VIF_MACVTAP_MODES.join(', ')}` }) }).optional(),
    target: z.object({ dev: ifnameSchema, managed: z.boolean().optional() }).optional(),
    model: z.enum(INTERFACE_MODELS, { error: `must be one of ${INTERFACE_MODELS.join(', ')}` }).optional(),
    driver: driverSchema.optional(),
    bandwidth: bandwidthSchema.optional(),
    mtu: mtuSchema.optional(),
    linkState: z.enum(['up', 'down']).optional(),
    trustGuestRxFilters: z.boolean().optional(),
    virtualport: virtualportSchema.optional(),
    bootOrder: positiveInt.max(0xffffffff).optional(),
    alias: aliasSchema.optional(),
  })
  .superRefine((c, ctx) => {
    const issue = (path: (string | number)[], message: string): void => ctx.addIssue({ code: 'custom', path, message });
    if (c.type === 'direct') {
      if (!c.source) issue(['source'], 'type "direct" needs a source device and mode');
      // qemuDomainNetSupportsMTU: libvirt refuses <mtu> on direct; the macvtap takes its source device's MTU.
      if (c.mtu !== undefined) issue(['mtu'], 'libvirt refuses <mtu> on type "direct": set the source device MTU instead (plug does, from network.meta.mtu)');
      if (c.target?.managed !== undefined) issue(['target', 'managed'], 'managed is only meaningful for type "ethernet"');
    } else {
      if (c.source) issue(['source'], 'type "ethernet" takes no source device');
      if (!c.target) issue(['target'], 'type "ethernet" needs a target device');
      if (c.virtualport) issue(['virtualport'], 'libvirt accepts <virtualport> only on bridge, network and direct interfaces');
      if (c.trustGuestRxFilters !== undefined) issue(['trustGuestRxFilters'], 'libvirt supports trustGuestRxFilters only on type "direct"');
    }
    if (c.driver && !isVirtio(c.model)) issue(['driver'], `<driver> options need a virtio model, not ${c.model}`);
    if (c.trustGuestRxFilters && !isVirtio(c.model)) issue(['trustGuestRxFilters'], 'trustGuestRxFilters needs a virtio model');
    for (const dir of ['inbound', 'outbound'] as const) {
      const r = c.bandwidth?.[dir];
      if (!r) continue;
      // virNetDevBandwidthParse: floor only inbound and only for type='network'; average is mandatory otherwise.
      if (r.floor !== undefined) issue(['bandwidth', dir, 'floor'], 'libvirt accepts floor only on <inbound> of interfaces of type "network", not direct or ethernet');
      if (r.average === undefined) issue(['bandwidth', dir, 'average'], 'libvirt requires average in every <inbound>/<outbound> (peak and burst need it)');
    }
  });

/** The typed form of one `<interface>`; see {@link interfaceConfigSchema}. */
export type InterfaceConfig = z.output<typeof interfaceConfigSchema>;
/** `<bandwidth>` in kilobytes/s and kilobytes. */
export type Bandwidth = z.output<typeof bandwidthSchema>;
/** `<driver><host>` offloads. */
export type HostOffloads = z.output<typeof hostOffloadsSchema>;
/** `<driver><guest>` offloads. */
export type GuestOffloads = z.output<typeof guestOffloadsSchema>;
/** `<virtualport>`. */
export type Virtualport = z.output<typeof virtualportSchema>;

/**
 * Validates an {@link InterfaceConfig} (libvirt's grammar plus its semantic rules for direct/ethernet).
 * @throws {@link InvalidVifError} listing every problem.
 */
export function checkInterfaceConfig(config: unknown, vifId?: string): InterfaceConfig {
  const r = interfaceConfigSchema.safeParse(config);
  if (!r.success) {
    const issues = toIssues(r.error);
    throw new InvalidVifError(`invalid interface${vifId === undefined ? '' : ` for vif ${vifId}`}: ${formatIssues(issues)}`, {
      ...(vifId === undefined ? {} : { vifId }),
      issues,
    });
  }
  return dropUndefined(r.data);
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
    const n = typeof value === 'number' ? value : typeof value === 'string' && /^[0-9]+$/.test(value) ? Number(value) : NaN;
    if (!Number.isInteger(n) || n < 1 || n > 0xffffffff) {
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
  model?: (typeof INTERFACE_MODELS)[number];
  /** Asks for multiqueue: `<driver name='vhost' queues='min(vcpus, maxTapQueues)'>` (only when that is above 1). */
  vcpus?: number;
  /** Ceiling for the queue count; default {@link MAX_TAP_QUEUES} (Nova's `max_queues`). */
  maxTapQueues?: number;
  /** `<driver name>`; default `'vhost'` when multiqueue is in effect, otherwise absent. */
  driverName?: 'vhost' | 'qemu';
  /** `<driver rx_queue_size>`: 256, 512 or 1024. */
  rxQueueSize?: number;
  /** `<driver><host …/>`. */
  hostOffloads?: HostOffloads;
  /** `<driver><guest …/>`. */
  guestOffloads?: GuestOffloads;
  /** `<bandwidth>`; merged over what `quota` gives. */
  bandwidth?: Bandwidth;
  /** A flavor's extra specs; `quota:vif_*` keys become `<bandwidth>` (see {@link bandwidthFromQuota}). */
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

const optionsSchema = z.object({
  form: z.enum(['direct', 'ethernet'], { error: 'must be "direct" or "ethernet"' }).optional(),
  vcpus: positiveInt.optional(),
  maxTapQueues: positiveInt.max(MAX_TAP_QUEUES, { error: `must be at most ${MAX_TAP_QUEUES}` }).optional(),
  mtu: z.union([z.null(), mtuSchema]).optional(),
});

/**
 * The {@link InterfaceConfig} for a vif: what `toInterfaceXml` renders. Validates the vif (if not already a parsed
 * {@link Vif}) and the options, and checks the result against libvirt's rules.
 *
 * @throws {@link VifDetailsMissingMacvtapParameters} / {@link InvalidVifError} before anything is produced.
 */
export function interfaceFromVif(vifInput: VifInput | Vif, options: InterfaceOptions = {}): InterfaceConfig {
  const vif = parseVif(vifInput);
  const o = optionsSchema.safeParse(options);
  if (!o.success) {
    const issues = toIssues(o.error);
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
    name: options.driverName ?? (multiqueue ? 'vhost' : undefined),
    queues: multiqueue ? queues : undefined,
    rxQueueSize: options.rxQueueSize,
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
