/**
 * Nova's own decisions for a macvtap vif's `<interface>`, from the same inputs Nova has: the flavor (vCPUs and extra
 * specs), the image properties, the `[libvirt]` options and the virt type. Read from Nova 26 (Zed)
 * `nova/virt/libvirt/vif.py` (`LibvirtGenericVIFDriver.get_base_config`, `get_config_macvtap`,
 * `_get_virtio_mq_settings`, `_get_max_tap_queues`), `nova/virt/libvirt/designer.py` and
 * `nova/virt/hardware.py` (`get_vif_multiqueue_constraint`), and checked against them by `test/vif-nova.test.ts`.
 *
 * Where Nova emits what libvirt or the kernel refuse, this emits the valid form instead (see {@link novaInterfaceXml}).
 */
import { release } from 'node:os';
import { isInteger, isPlainObject, MAX_TAP_QUEUES, parseDecimal, U32_MAX } from '../validate.js';
import { FlavorImageConflict, InvalidVifError, UnsupportedHardware, UnsupportedVirtType, type VifIssue } from './errors.js';
import { checkInterfaceConfig, type Bandwidth, type BandwidthRate, type InterfaceConfig } from './interface.js';
import { checkAt, dropUndefined, formatIssues, integer, oneOf, optional, parseVif, unknownKeyIssues, type Vif, type VifInput } from './model.js';
import { interfaceToXml } from './xml.js';

/** Nova's `[libvirt] virt_type` choices (Zed). */
export const NOVA_VIRT_TYPES = ['kvm', 'qemu', 'lxc', 'parallels'] as const;

/** A Nova `[libvirt] virt_type`. */
export type NovaVirtType = (typeof NOVA_VIRT_TYPES)[number];

/** Nova's `network_model.VIF_MODEL_ALL`: the values an image's `hw_vif_model` may take. */
export const NOVA_VIF_MODELS = ['virtio', 'ne2k_pci', 'pcnet', 'rtl8139', 'e1000', 'e1000e', 'netfront', 'spapr-vlan', 'lan9118', 'sriov', 'vmxnet', 'vmxnet3'] as const;

/** Nova's `SUPPORTED_VIF_MODELS`: which models each virt type accepts (`UnsupportedHardware` otherwise). */
export const NOVA_SUPPORTED_VIF_MODELS: Readonly<Record<NovaVirtType, readonly string[]>> = {
  qemu: ['virtio', 'ne2k_pci', 'pcnet', 'rtl8139', 'e1000', 'e1000e', 'lan9118', 'spapr-vlan', 'vmxnet3'],
  kvm: ['virtio', 'ne2k_pci', 'pcnet', 'rtl8139', 'e1000', 'e1000e', 'spapr-vlan', 'vmxnet3'],
  lxc: [],
  parallels: ['virtio', 'rtl8139', 'e1000'],
};

/** Nova's `[libvirt]` options that shape a macvtap vif's `<interface>`. `null` is Nova's unset. */
export interface NovaLibvirtConf {
  /** `max_queues`: ceiling of the queue count (≥ 1); unset, Nova derives one from the kernel's major version. */
  max_queues?: number | null;
  /** `rx_queue_size`: 256, 512 or 1024; set, a virtio vif gets `<driver rx_queue_size>` (and `name='vhost'`). */
  rx_queue_size?: 256 | 512 | 1024 | null;
  /**
   * `tx_queue_size`: 256, 512 or 1024. Accepted because it is one of Nova's options, but, as in Nova, it does not
   * reach a macvtap vif (Nova sets it only for vhost-user and vDPA).
   */
  tx_queue_size?: 256 | 512 | 1024 | null;
  /** `use_virtio_for_bridges` (default `true`): virtio when the image names no model on kvm/qemu/parallels. */
  use_virtio_for_bridges?: boolean;
}

/** What Nova knows when it renders a vif: the flavor, the image, its `[libvirt]` options and the virt type. */
export interface NovaInterfaceOptions {
  /** The flavor's vCPUs (≥ 1): the queue count when multiqueue is on. */
  vcpus: number;
  /**
   * The flavor's extra specs. Read: `hw:vif_multiqueue_enabled` (a boolean or Nova's boolean strings) and
   * `quota:vif_{inbound,outbound}_{average,peak,burst}` (integers ≥ 0, kilobytes/s or kilobytes). Other keys are
   * the flavor's business and are ignored, as Nova ignores them here.
   */
  flavorExtraSpecs?: Record<string, unknown>;
  /**
   * The image's properties. Read: `hw_vif_model` (one of {@link NOVA_VIF_MODELS}) and `hw_vif_multiqueue_enabled`.
   * `os_distro` without `hw_vif_model` is refused: Nova would then ask libosinfo for a model.
   */
  imageProperties?: Record<string, unknown>;
  /** Nova's `[libvirt]` options. */
  conf?: NovaLibvirtConf;
  /** Nova's `[libvirt] virt_type`; default `'kvm'`, Nova's default. */
  virtType?: NovaVirtType;
}

const OPTION_KEYS = ['vcpus', 'flavorExtraSpecs', 'imageProperties', 'conf', 'virtType'] as const satisfies ReadonlyArray<keyof NovaInterfaceOptions>;
const CONF_KEYS = ['max_queues', 'rx_queue_size', 'tx_queue_size', 'use_virtio_for_bridges'] as const satisfies ReadonlyArray<keyof NovaLibvirtConf>;

// oslo_utils.strutils TRUE_STRINGS / FALSE_STRINGS (compared lower-cased and trimmed, as bool_from_string does).
const TRUE_STRINGS = ['1', 't', 'true', 'on', 'y', 'yes'];
const FALSE_STRINGS = ['0', 'f', 'false', 'off', 'n', 'no'];

/**
 * A boolean as Nova's `bool_from_string` reads it, or `undefined` when absent. Nova reads any other string as
 * `false`; this refuses it (Nova's API refuses it too when the flavor is created, but not in image properties).
 */
function novaBool(issues: VifIssue[], path: string, v: unknown): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (TRUE_STRINGS.includes(s)) return true;
    if (FALSE_STRINGS.includes(s)) return false;
  }
  issues.push({ path, message: `must be a boolean or one of ${[...TRUE_STRINGS, ...FALSE_STRINGS].join(', ')}, got ${JSON.stringify(v)}` });
  return undefined;
}

/**
 * Nova's `_get_max_tap_queues` without `max_queues`: by the kernel's major version, ≤ 2 → 1, 3 → 8, 4 → 256, and from
 * 5 on `undefined` (no cap: Nova then asks for as many queues as vCPUs). @internal
 */
export function novaKernelQueueCap(kernelRelease: string = release()): number | undefined {
  const major = parseInt(kernelRelease.split('.')[0] ?? '', 10);
  if (major <= 2) return 1;
  if (major === 3) return 8;
  if (major === 4) return 256;
  return undefined;
}

/** The four quota directions and attributes Nova's `set_vif_bandwidth_config` reads (no `floor`). */
const QUOTA_ITEMS = ['vif_inbound_average', 'vif_inbound_peak', 'vif_inbound_burst', 'vif_outbound_average', 'vif_outbound_peak', 'vif_outbound_burst'];

/** A bandwidth intention this function could not render (see {@link novaBandwidth}). @internal */
export interface DroppedBandwidth {
  direction: 'inbound' | 'outbound';
  keys: string[];
  reason: string;
}

/**
 * `<bandwidth>` from a flavor's `quota:vif_*` extra specs, as Nova's `set_vif_bandwidth_config` and
 * `LibvirtConfigGuestInterface.format_dom` make it: a key counts when splitting it at `:` gives `quota` and one of the
 * six items; a direction is written only when it has an average, and then with its peak and burst.
 *
 * Where Nova writes what libvirt refuses, the valid form: a value `0` (Nova's API accepts 0) means no limit, so a
 * zero peak or burst is left out and a zero average leaves the direction out. Every dropped intention (a peak or burst
 * without an average, a zero) is returned in `dropped`. @internal
 */
export function novaBandwidth(extraSpecs: Record<string, unknown>): { bandwidth: Bandwidth | undefined; dropped: DroppedBandwidth[]; issues: VifIssue[] } {
  const issues: VifIssue[] = [];
  const raw: Record<string, { value: number; key: string }> = {};
  for (const [key, value] of Object.entries(extraSpecs)) {
    const scope = key.split(':');
    if (scope.length < 2 || scope[0] !== 'quota' || !QUOTA_ITEMS.includes(scope[1]!)) continue;
    const n = typeof value === 'string' ? parseDecimal(value.trim()) : value;
    if (!isInteger(n, 0, U32_MAX)) {
      issues.push({ path: `flavorExtraSpecs.${key}`, message: `must be an integer 0–${U32_MAX}, got ${JSON.stringify(value)}` });
      continue;
    }
    raw[scope[1]!] = { value: n, key };
  }
  const out: Bandwidth = {};
  const dropped: DroppedBandwidth[] = [];
  for (const direction of ['inbound', 'outbound'] as const) {
    const get = (attr: string) => raw[`vif_${direction}_${attr}`];
    const [average, peak, burst] = [get('average'), get('peak'), get('burst')];
    const others = [peak, burst].filter((x) => x !== undefined);
    if (average === undefined || average.value === 0) {
      if (others.length) {
        dropped.push({
          direction,
          keys: others.map((x) => x.key),
          reason: average === undefined ? `no quota:vif_${direction}_average (libvirt needs one; Nova drops the direction)` : `quota:vif_${direction}_average is 0 (no limit)`,
        });
      }
      continue;
    }
    const rate: BandwidthRate = { average: average.value };
    for (const [attr, x] of [['peak', peak], ['burst', burst]] as const) {
      if (x === undefined) continue;
      if (x.value === 0) dropped.push({ direction, keys: [x.key], reason: `${attr} 0 (no limit; libvirt refuses a zero)` });
      else rate[attr] = x.value;
    }
    out[direction] = rate;
  }
  return { bandwidth: out.inbound || out.outbound ? out : undefined, dropped, issues };
}

/** Nova's decisions for one vif, before rendering. @internal */
export interface NovaDecisions {
  /** The model Nova decided (`undefined`: none; libvirt's default). It decides whether `<driver>` is written. */
  model: string | undefined;
  driverName: 'vhost' | 'qemu' | undefined;
  /** The queue count: Nova's, capped at {@link MAX_TAP_QUEUES}. */
  queues: number | undefined;
  rxQueueSize: number | undefined;
}

function checkOptions(options: unknown): { issues: VifIssue[]; o: NovaInterfaceOptions } {
  if (!isPlainObject(options)) return { issues: [{ path: '', message: 'options must be an object' }], o: {} as NovaInterfaceOptions };
  const issues = unknownKeyIssues('', options, OPTION_KEYS);
  checkAt(issues, 'vcpus', options.vcpus, integer(1, Infinity));
  checkAt(issues, 'virtType', options.virtType, optional((v) => (typeof v === 'string' ? undefined : 'must be a string')));
  for (const key of ['flavorExtraSpecs', 'imageProperties'] as const) {
    if (options[key] !== undefined && !isPlainObject(options[key])) issues.push({ path: key, message: 'must be an object' });
  }
  const conf = options.conf;
  if (conf !== undefined) {
    if (!isPlainObject(conf)) issues.push({ path: 'conf', message: 'must be an object' });
    else {
      issues.push(...unknownKeyIssues('conf', conf, CONF_KEYS));
      const nullable = (c: (v: unknown) => string | undefined) => (v: unknown) => (v === null || v === undefined ? undefined : c(v));
      checkAt(issues, 'conf.max_queues', conf.max_queues, nullable(integer(1, Infinity)));
      checkAt(issues, 'conf.rx_queue_size', conf.rx_queue_size, nullable(oneOf([256, 512, 1024])));
      checkAt(issues, 'conf.tx_queue_size', conf.tx_queue_size, nullable(oneOf([256, 512, 1024])));
      checkAt(issues, 'conf.use_virtio_for_bridges', conf.use_virtio_for_bridges, optional((v) => (typeof v === 'boolean' ? undefined : 'must be true or false')));
    }
  }
  return { issues, o: options as unknown as NovaInterfaceOptions };
}

/**
 * Nova's `get_base_config` for a macvtap vif (vnic type `normal` or `macvtap`): the model, the `<driver>` name, the
 * queue count and the RX queue size, with Nova's errors. @internal
 */
export function novaDecisions(o: NovaInterfaceOptions, vifId?: string): NovaDecisions {
  const issues: VifIssue[] = [];
  const specs = o.flavorExtraSpecs ?? {};
  const image = o.imageProperties ?? {};
  const conf = o.conf ?? {};
  const virt = o.virtType ?? 'kvm';
  const imageModel = image.hw_vif_model ?? undefined;
  checkAt(issues, 'imageProperties.hw_vif_model', imageModel, optional(oneOf(NOVA_VIF_MODELS)));
  if (imageModel === undefined && image.os_distro !== undefined && image.os_distro !== null) {
    issues.push({ path: 'imageProperties.os_distro', message: 'without hw_vif_model, Nova asks libosinfo for the model of this OS: give hw_vif_model' });
  }
  const flavorMq = novaBool(issues, 'flavorExtraSpecs.hw:vif_multiqueue_enabled', specs['hw:vif_multiqueue_enabled']);
  const imageMq = novaBool(issues, 'imageProperties.hw_vif_multiqueue_enabled', image.hw_vif_multiqueue_enabled);
  if (issues.length) throw new InvalidVifError(`invalid flavor or image for vif ${vifId ?? '(no id)'}: ${formatIssues(issues)}`, { ...(vifId === undefined ? {} : { vifId }), issues });

  // get_vif_model: the image's model, else virtio on kvm/qemu/parallels (use_virtio_for_bridges).
  let model = imageModel as string | undefined;
  if (model === undefined && (virt === 'kvm' || virt === 'qemu' || virt === 'parallels') && (conf.use_virtio_for_bridges ?? true)) model = 'virtio';
  // is_vif_model_valid_for_virt: no model is always valid; a model on an unknown virt type is UnsupportedVirtType.
  if (model !== undefined) {
    if (!(NOVA_VIRT_TYPES as readonly string[]).includes(virt)) throw new UnsupportedVirtType(virt, vifId);
    if (!NOVA_SUPPORTED_VIF_MODELS[virt].includes(model)) throw new UnsupportedHardware(model, virt, vifId);
  } else if (!(NOVA_VIRT_TYPES as readonly string[]).includes(virt)) {
    // Nova's config refuses such a virt_type before any vif is rendered.
    throw new UnsupportedVirtType(virt, vifId);
  }
  const none: NovaDecisions = { model, driverName: undefined, queues: undefined, rxQueueSize: undefined };
  if (model !== 'virtio') return none;

  // Nova's workaround for libvirt enabling vhost on non-KVM guests.
  let driverName: 'vhost' | 'qemu' | undefined = virt === 'qemu' ? 'qemu' : undefined;
  let queues: number | undefined;
  if (virt === 'kvm' || virt === 'parallels') {
    // get_vif_multiqueue_constraint: one vCPU never gets multiqueue, and the conflict is not even looked at then.
    let enabled = false;
    if (o.vcpus >= 2) {
      if (flavorMq !== undefined && imageMq !== undefined && flavorMq !== imageMq) {
        throw new FlavorImageConflict('hw:vif_multiqueue_enabled', flavorMq, imageMq, vifId);
      }
      enabled = flavorMq ?? imageMq ?? false;
    }
    if (enabled) {
      driverName = 'vhost';
      // _get_max_tap_queues: max_queues when set, else by kernel version (no cap from 5 on, in Nova).
      const novaCap = conf.max_queues ?? novaKernelQueueCap();
      const novaQueues = novaCap === undefined ? o.vcpus : Math.min(o.vcpus, novaCap);
      queues = Math.min(novaQueues, MAX_TAP_QUEUES);
    }
  }
  const rx = conf.rx_queue_size ?? undefined;
  // "vhost backend only supports update of RX queue size": Nova forces name='vhost' to get a <driver> element.
  if (rx !== undefined && (driverName === 'vhost' || driverName === undefined)) driverName = 'vhost';
  return { model, driverName, queues, rxQueueSize: rx };
}

function warnDropped(vifId: string, dropped: DroppedBandwidth[]): void {
  for (const d of dropped) {
    process.emitWarning(`vif ${vifId}: ${d.keys.join(', ')} not rendered: ${d.reason}`, { code: 'MACVTAP_VIF_BANDWIDTH_DROPPED', type: 'MacvtapVifWarning' });
  }
}

/**
 * The {@link InterfaceConfig} Nova's `LibvirtGenericVIFDriver.get_config` makes for a macvtap vif (see
 * {@link novaInterfaceXml}). @throws as {@link novaInterfaceXml}.
 */
export function novaInterfaceConfig(vifInput: VifInput | Vif, options: NovaInterfaceOptions): InterfaceConfig {
  const id = isPlainObject(vifInput) && typeof vifInput.id === 'string' ? vifInput.id : undefined;
  const { issues, o } = checkOptions(options);
  if (issues.length) throw new InvalidVifError(`invalid novaInterfaceXml options${id === undefined ? '' : ` for vif ${id}`}: ${formatIssues(issues)}`, { ...(id === undefined ? {} : { vifId: id }), issues });
  // Nova's order: get_base_config (model, multiqueue) first, then the vif's details, then the bandwidth.
  const d = novaDecisions(o, id);
  const vif = parseVif(vifInput);
  const bw = novaBandwidth(o.flavorExtraSpecs ?? {});
  if (bw.issues.length) throw new InvalidVifError(`invalid flavor for vif ${vif.id}: ${formatIssues(bw.issues)}`, { vifId: vif.id, issues: bw.issues });
  warnDropped(vif.id, bw.dropped);
  const driver = dropUndefined({ name: d.driverName, queues: d.queues, rxQueueSize: d.rxQueueSize });
  return checkInterfaceConfig(
    dropUndefined({
      type: 'direct',
      mac: vif.address,
      source: { dev: vif.details.macvtap_source, mode: vif.details.macvtap_mode },
      // designer.set_vif_host_backend_direct_config sets virtio whatever model get_base_config decided.
      model: 'virtio',
      driver: Object.keys(driver).length ? driver : undefined,
      bandwidth: bw.bandwidth,
    }),
    vif.id,
  );
}

/**
 * The `<interface>` Nova (Zed) renders for a macvtap vif — `LibvirtGenericVIFDriver.get_config` with the flavor's
 * vCPUs and extra specs, the image's properties, the `[libvirt]` options and the virt type — making Nova's decisions:
 *
 * - model: the image's `hw_vif_model`, else virtio (kvm/qemu/parallels with `use_virtio_for_bridges`); a model the
 *   virt type does not support is {@link UnsupportedHardware}. Nova then writes `<model type='virtio'/>` for every
 *   macvtap vif whatever the image asked (`set_vif_host_backend_direct_config`); the image's model only decides
 *   whether `<driver>` is written (virtio only). So does this.
 * - `<driver>`: `name='qemu'` on virt type qemu; on kvm/parallels, multiqueue when `hw:vif_multiqueue_enabled` (flavor)
 *   or `hw_vif_multiqueue_enabled` (image) is true and vCPUs ≥ 2 — both set and different is
 *   {@link FlavorImageConflict} — with `name='vhost' queues='min(vcpus, cap)'`, the cap being `max_queues` or the
 *   kernel's (by major version: 3 → 8, 4 → 256); `rx_queue_size` makes the name `vhost` unless it is `qemu`.
 * - `<bandwidth>` from `quota:vif_*` (a direction only with its average, as Nova; see below).
 * - missing `macvtap_source`/`macvtap_mode`/`physical_interface` is {@link VifDetailsMissingMacvtapParameters}.
 *
 * Where Nova's output is refused by libvirt or the kernel, this writes the valid form: at most 256 queues (Nova on
 * kernels ≥ 5 asks for as many as vCPUs, e.g. `queues='300'`, which QEMU cannot open: the kernel's limit is 256);
 * `passthrough` for the mode Nova passes through as given (`passthru` is not in libvirt's schema); no zero in
 * `<bandwidth>` (Nova's API accepts 0, libvirt's schema does not: 0 is read as no limit). A peak or burst dropped
 * (no average, as Nova drops it, or a zero) is reported with `process.emitWarning` (code
 * `MACVTAP_VIF_BANDWIDTH_DROPPED`). Stricter than Nova: a multiqueue value that is not a boolean (Nova reads it as
 * false) and a quota that is not an integer are refused, as is an image with `os_distro` but no `hw_vif_model`.
 *
 * @example
 * ```ts
 * novaInterfaceXml(vif, { vcpus: 4, flavorExtraSpecs: { 'hw:vif_multiqueue_enabled': 'true' }, conf: { rx_queue_size: 512 } });
 * // <interface type="direct"> <mac …/> <source dev="eth0.100" mode="bridge"/> <model type="virtio"/>
 * //   <driver name="vhost" queues="4" rx_queue_size="512"/> </interface>
 * ```
 * @throws {@link InvalidVifError} (bad options, unknown keys, bad values), {@link UnsupportedVirtType},
 *   {@link UnsupportedHardware}, {@link FlavorImageConflict}, {@link VifDetailsMissingMacvtapParameters}.
 */
export function novaInterfaceXml(vif: VifInput | Vif, options: NovaInterfaceOptions): string {
  return interfaceToXml(novaInterfaceConfig(vif, options));
}
