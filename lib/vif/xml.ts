/**
 * libvirt `<interface>` XML for a macvtap vif: built with xmlbuilder2 (every attribute and text value escaped by the
 * serializer, never by string concatenation) and read back into the same {@link InterfaceConfig}.
 *
 * The reader behaves like libvirt's own: element order does not matter (the grammar is an `<interleave>`), unknown
 * elements and attributes are ignored (a live domain's XML has `<address>`, `<alias name='net0'>`, …), and the values
 * it keeps are checked by the same schema that checks what we produce.
 */
import { XMLValidator } from 'fast-xml-parser';
import { create } from 'xmlbuilder2';
import type { XMLBuilder } from 'xmlbuilder2/lib/interfaces.js';
import { VifXmlError, type VifIssue } from './errors.js';
import { checkInterfaceConfig, interfaceConfigSchema, interfaceFromVif, type InterfaceConfig, type InterfaceOptions } from './interface.js';
import { dropUndefined, formatIssues, toIssues, type Vif, type VifInput } from './model.js';

const SERIALIZE = { prettyPrint: true, headless: true, wellFormed: true } as const;

const yesNo = (b: boolean): string => (b ? 'yes' : 'no');
const onOff = (b: boolean): string => (b ? 'on' : 'off');

/** Sets only the attributes that have a value. */
function attrs(obj: Record<string, string | number | boolean | undefined>, fmt: (b: boolean) => string = onOff): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined) continue;
    out[k] = typeof v === 'boolean' ? fmt(v) : String(v);
  }
  return out;
}

/** Appends `<interface>` for an already validated config under `parent`. */
function appendInterface(parent: XMLBuilder, c: InterfaceConfig): void {
  const iface = parent.ele('interface', attrs({ type: c.type, trustGuestRxFilters: c.trustGuestRxFilters }, yesNo));
  iface.ele('mac', { address: c.mac });
  if (c.source) iface.ele('source', { dev: c.source.dev, mode: c.source.mode });
  if (c.virtualport) {
    const vp = iface.ele('virtualport', { type: c.virtualport.type });
    if (c.virtualport.parameters) vp.ele('parameters', attrs({ ...c.virtualport.parameters }));
  }
  if (c.target) iface.ele('target', attrs({ dev: c.target.dev, managed: c.target.managed }, yesNo));
  if (c.model) iface.ele('model', { type: c.model });
  if (c.driver) {
    const d = c.driver;
    const drv = iface.ele('driver', attrs({ name: d.name, queues: d.queues, rx_queue_size: d.rxQueueSize }));
    if (d.host) {
      const h = d.host;
      drv.ele('host', attrs({ csum: h.csum, gso: h.gso, tso4: h.tso4, tso6: h.tso6, ecn: h.ecn, ufo: h.ufo, mrg_rxbuf: h.mrgRxbuf }));
    }
    if (d.guest) drv.ele('guest', attrs({ ...d.guest }));
  }
  if (c.bandwidth) {
    const bw = iface.ele('bandwidth');
    for (const dir of ['inbound', 'outbound'] as const) {
      const r = c.bandwidth[dir];
      if (r) bw.ele(dir, attrs({ average: r.average, peak: r.peak, burst: r.burst, floor: r.floor }));
    }
  }
  if (c.linkState) iface.ele('link', { state: c.linkState });
  if (c.mtu !== undefined) iface.ele('mtu', { size: String(c.mtu) });
  if (c.bootOrder !== undefined) iface.ele('boot', { order: String(c.bootOrder) });
  if (c.alias) iface.ele('alias', { name: c.alias });
}

/**
 * Serializes an {@link InterfaceConfig} (validated first) to one `<interface>` element, without XML declaration,
 * ready for `virsh attach-device` or a domain's `<devices>`.
 *
 * @throws {@link InvalidVifError} when the config breaks libvirt's rules.
 */
export function interfaceToXml(config: InterfaceConfig): string {
  const c = checkInterfaceConfig(config);
  const doc = create();
  appendInterface(doc, c);
  return doc.end(SERIALIZE);
}

/**
 * The libvirt `<interface>` for a Nova macvtap vif: `type='direct'` with `<source dev='macvtap_source'
 * mode='macvtap_mode'>` by default, or the unmanaged `type='ethernet'` form (`options.form`). See
 * {@link InterfaceOptions} for multiqueue, offloads, bandwidth (and Nova's `quota:vif_*` keys), MTU, link state,
 * virtualport, boot order and alias.
 *
 * @example
 * ```ts
 * toInterfaceXml(vif, { vcpus: 4 });
 * // <interface type="direct"><mac address="fa:16:3e:…"/><source dev="eth0.100" mode="bridge"/>
 * //   <model type="virtio"/><driver name="vhost" queues="4"/></interface>
 * ```
 * @throws {@link VifDetailsMissingMacvtapParameters} / {@link InvalidVifError} before any XML is produced.
 */
export function toInterfaceXml(vif: VifInput | Vif, options: InterfaceOptions = {}): string {
  return interfaceToXml(interfaceFromVif(vif, options));
}

// ---------------------------------------------------------------------------------------------------------------
// Reading

/** A DOM element as xmlbuilder2 exposes it (the subset used here). */
interface DomElement {
  nodeType: number;
  localName: string;
  childNodes: ArrayLike<DomElement>;
  getAttribute(name: string): string | null;
}

function childElements(el: DomElement): DomElement[] {
  return Array.from(el.childNodes).filter((n) => n.nodeType === 1);
}

/** The first child element named `name` (libvirt reads `./name` and takes the first). */
function child(el: DomElement | undefined, name: string): DomElement | undefined {
  return el ? childElements(el).find((e) => e.localName === name) : undefined;
}

function attr(el: DomElement | undefined, name: string): string | undefined {
  const v = el?.getAttribute(name);
  return v === null || v === undefined ? undefined : v;
}

/** Decimal (and, where libvirt allows it, `0x` hex) → number; anything else is passed on for the schema to reject. */
function num(v: string | undefined, hex = false): number | string | undefined {
  if (v === undefined) return undefined;
  if (/^[0-9]+$/.test(v)) return Number(v);
  if (hex && /^0x[0-9a-fA-F]+$/.test(v)) return parseInt(v.slice(2), 16);
  return v;
}

function bool(v: string | undefined, t: string, f: string): boolean | string | undefined {
  if (v === undefined) return undefined;
  return v === t ? true : v === f ? false : `${v} (expected ${t} or ${f})`;
}

const onOffAttr = (el: DomElement | undefined, name: string) => bool(attr(el, name), 'on', 'off');

/** Reads one `<interface>` element into the raw (unchecked) config shape. */
function readInterface(el: DomElement): Record<string, unknown> {
  const source = child(el, 'source');
  const target = child(el, 'target');
  const driver = child(el, 'driver');
  const host = child(driver, 'host');
  const guest = child(driver, 'guest');
  const bandwidth = child(el, 'bandwidth');
  const vp = child(el, 'virtualport');
  const vpParams = child(vp, 'parameters');
  const alias = attr(child(el, 'alias'), 'name');

  const rate = (dir: string) => {
    const r = child(bandwidth, dir);
    return r && { average: num(attr(r, 'average')), peak: num(attr(r, 'peak')), burst: num(attr(r, 'burst')), floor: num(attr(r, 'floor')) };
  };
  let virtualport: Record<string, unknown> | undefined;
  if (vp) {
    const type = attr(vp, 'type');
    const parameters = vpParams
      ? type === '802.1Qbh'
        ? { profileid: attr(vpParams, 'profileid') }
        : {
            managerid: num(attr(vpParams, 'managerid'), true),
            typeid: num(attr(vpParams, 'typeid'), true),
            typeidversion: num(attr(vpParams, 'typeidversion'), true),
            instanceid: attr(vpParams, 'instanceid'),
          }
      : undefined;
    virtualport = { type, parameters };
  }

  return dropUndefined({
    type: attr(el, 'type'),
    trustGuestRxFilters: bool(attr(el, 'trustGuestRxFilters'), 'yes', 'no'),
    mac: attr(child(el, 'mac'), 'address'),
    source: source && { dev: attr(source, 'dev'), mode: attr(source, 'mode') },
    target: target && { dev: attr(target, 'dev'), managed: bool(attr(target, 'managed'), 'yes', 'no') },
    model: attr(child(el, 'model'), 'type'),
    driver: driver && {
      name: attr(driver, 'name'),
      queues: num(attr(driver, 'queues')),
      rxQueueSize: num(attr(driver, 'rx_queue_size')),
      host: host && {
        csum: onOffAttr(host, 'csum'),
        gso: onOffAttr(host, 'gso'),
        tso4: onOffAttr(host, 'tso4'),
        tso6: onOffAttr(host, 'tso6'),
        ecn: onOffAttr(host, 'ecn'),
        ufo: onOffAttr(host, 'ufo'),
        mrgRxbuf: onOffAttr(host, 'mrg_rxbuf'),
      },
      guest: guest && {
        csum: onOffAttr(guest, 'csum'),
        tso4: onOffAttr(guest, 'tso4'),
        tso6: onOffAttr(guest, 'tso6'),
        ecn: onOffAttr(guest, 'ecn'),
        ufo: onOffAttr(guest, 'ufo'),
      },
    },
    bandwidth: bandwidth && { inbound: rate('inbound'), outbound: rate('outbound') },
    mtu: num(attr(child(el, 'mtu'), 'size')),
    linkState: attr(child(el, 'link'), 'state'),
    virtualport,
    bootOrder: num(attr(child(el, 'boot'), 'order')),
    // Aliases without "ua-" are assigned by libvirt at run time (net0, …): state, not configuration.
    alias: alias !== undefined && alias.startsWith('ua-') ? alias : undefined,
  });
}

/** Parses a document and returns its root element; refuses what is not well-formed, and DTDs. */
function parseDocument(xml: unknown): DomElement {
  if (typeof xml !== 'string') throw new VifXmlError(`expected an XML string, got ${xml === null ? 'null' : typeof xml}`);
  // No DTDs: libvirt's XML has none, and entity definitions are how hostile documents blow up.
  if (/<!DOCTYPE/i.test(xml)) throw new VifXmlError('XML with a DOCTYPE is refused (libvirt XML has none)');
  const ok = XMLValidator.validate(xml);
  if (ok !== true) {
    throw new VifXmlError(`not well-formed XML: ${ok.err.msg} (line ${ok.err.line}, column ${ok.err.col})`, {
      issues: [{ path: `${ok.err.line}:${ok.err.col}`, message: ok.err.msg }],
    });
  }
  let root: DomElement | null;
  try {
    root = create(xml).root().node as unknown as DomElement;
  } catch (e) {
    throw new VifXmlError(`not well-formed XML: ${(e as Error).message}`, { cause: e });
  }
  if (!root || root.nodeType !== 1) throw new VifXmlError('XML has no root element');
  return root;
}

function checkRead(raw: Record<string, unknown>, where: string): InterfaceConfig {
  if (raw.type !== 'direct' && raw.type !== 'ethernet') {
    throw new VifXmlError(`${where}: unsupported interface type ${JSON.stringify(raw.type ?? null)} (only "direct" and "ethernet" describe a macvtap)`, {
      issues: [{ path: 'type', message: 'must be "direct" or "ethernet"' }],
    });
  }
  const r = interfaceConfigSchema.safeParse(raw);
  if (!r.success) {
    const issues: VifIssue[] = toIssues(r.error);
    throw new VifXmlError(`${where}: ${formatIssues(issues)}`, { issues });
  }
  return dropUndefined(r.data);
}

/**
 * Reads one `<interface type='direct'>` or `<interface type='ethernet'>` element back into an
 * {@link InterfaceConfig}. `parseInterfaceXml(interfaceToXml(c))` deep-equals `c`.
 *
 * @throws {@link VifXmlError} when the XML is not well-formed, is not an `<interface>` of those types, or holds values
 *   libvirt would refuse (with every problem in `issues`).
 */
export function parseInterfaceXml(xml: string): InterfaceConfig {
  const root = parseDocument(xml);
  if (root.localName !== 'interface') throw new VifXmlError(`expected an <interface> element, got <${root.localName}>`);
  return checkRead(readInterface(root), '<interface>');
}

/**
 * Reads every `direct`/`ethernet` interface of a domain's XML (`virsh dumpxml`), in document order, skipping
 * interfaces of other types.
 *
 * @throws {@link VifXmlError} as {@link parseInterfaceXml}, naming which interface is wrong.
 */
export function parseDomainInterfaces(xml: string): InterfaceConfig[] {
  const root = parseDocument(xml);
  if (root.localName !== 'domain') throw new VifXmlError(`expected a <domain> element, got <${root.localName}>`);
  const out: InterfaceConfig[] = [];
  childElements(child(root, 'devices') ?? root)
    .filter((e) => e.localName === 'interface')
    .forEach((e, i) => {
      const type = attr(e, 'type');
      if (type === 'direct' || type === 'ethernet') out.push(checkRead(readInterface(e), `interface ${i}`));
    });
  return out;
}

/** Options of {@link toDomainXml}. */
export interface DomainOptions {
  /** `<name>`; default `'macvtap-vif'`. Any text without control characters. */
  name?: string;
  /** `<uuid>`. */
  uuid?: string;
  /** `<memory unit='MiB'>`; default 64. */
  memoryMiB?: number;
  /** `<vcpu>`; default 1. */
  vcpus?: number;
  /** `<domain type>`; default `'qemu'` (TCG: works without /dev/kvm). */
  type?: 'qemu' | 'kvm';
}

/**
 * Wraps interfaces into a minimal bootable-shaped domain (name, memory, vcpu, `hvm` os, devices) for tests, examples
 * and `virt-xml-validate`. Interfaces are configs, or XML strings (checked with {@link parseInterfaceXml} and then
 * embedded exactly as given).
 *
 * @throws {@link InvalidVifError} for a bad config or domain option; {@link VifXmlError} for a bad XML string.
 */
export function toDomainXml(interfaces: Array<InterfaceConfig | string>, options: DomainOptions = {}): string {
  const name = options.name ?? 'macvtap-vif';
  const issues: VifIssue[] = [];
  // libvirt's objectNameWithSlash is [^\n]+; other control characters would not survive XML either.
  if (typeof name !== 'string' || name.length === 0 || /[\x00-\x1f\x7f]/.test(name)) {
    issues.push({ path: 'name', message: 'must be non-empty text without control characters' });
  }
  if (options.uuid !== undefined && !/^([0-9a-fA-F]{32}|[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12})$/.test(options.uuid)) {
    issues.push({ path: 'uuid', message: 'must be a UUID' });
  }
  const memoryMiB = options.memoryMiB ?? 64;
  const vcpus = options.vcpus ?? 1;
  if (!Number.isInteger(memoryMiB) || memoryMiB < 1) issues.push({ path: 'memoryMiB', message: 'must be a positive integer' });
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > 4096) issues.push({ path: 'vcpus', message: 'must be an integer in 1–4096' });
  if (issues.length) throw new VifXmlError(`invalid domain options: ${formatIssues(issues)}`, { issues });

  const doc = create();
  const dom = doc.ele('domain', { type: options.type ?? 'qemu' });
  dom.ele('name').txt(name);
  if (options.uuid) dom.ele('uuid').txt(options.uuid);
  dom.ele('memory', { unit: 'MiB' }).txt(String(memoryMiB));
  dom.ele('vcpu').txt(String(vcpus));
  dom.ele('os').ele('type', { arch: 'x86_64' }).txt('hvm');
  const devices = dom.ele('devices');
  for (const i of interfaces) {
    if (typeof i === 'string') {
      parseInterfaceXml(i);
      devices.import(create(i));
    } else {
      appendInterface(devices, checkInterfaceConfig(i));
    }
  }
  return doc.end(SERIALIZE);
}
