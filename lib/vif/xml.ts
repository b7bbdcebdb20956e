/**
 * libvirt `<interface>` XML for a macvtap vif, written and read with fast-xml-parser (its `XMLBuilder` and
 * `XMLParser`): every attribute and text value is escaped exactly once, by {@link writeXml}, never by string
 * concatenation, and read back into the same {@link InterfaceConfig}.
 *
 * The reader behaves like libvirt's own: element order does not matter (the grammar is an `<interleave>`), unknown
 * elements and attributes are ignored (a live domain's XML has `<address>`, `<alias name='net0'>`, …), and the values
 * it keeps are checked by the same check as what we produce.
 */
import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser';
import { VifXmlError, type VifIssue } from './errors.js';
import { checkInterfaceConfig, interfaceConfigIssues, interfaceFromVif, type InterfaceConfig, type InterfaceOptions } from './interface.js';
import { dropUndefined, formatIssues, unknownKeyIssues, type Vif, type VifInput } from './model.js';
import { isPlainObject, isUuid, parseDecimal } from '../validate.js';

/** An element as read or to be written: name, attributes (unescaped text), children in document order. @internal */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlNode[];
}
/** A child of an {@link XmlElement}: an element or text. @internal */
export type XmlNode = XmlElement | { text: string };

const isElement = (n: XmlNode): n is XmlElement => 'name' in n;

/** A new element; `text`, when given, is its one child. @internal */
export function xmlElement(name: string, attrs: Record<string, string> = {}, text?: string): XmlElement {
  return { name, attrs, children: text === undefined ? [] : [{ text }] };
}

/** Appends a new element to `parent` (see {@link xmlElement}) and returns it. @internal */
export function appendElement(parent: XmlElement, name: string, attrs: Record<string, string> = {}, text?: string): XmlElement {
  const e = xmlElement(name, attrs, text);
  parent.children.push(e);
  return e;
}

// ---------------------------------------------------------------------------------------------------------------
// Writing

// The builder's own entity replacement is off (it would also turn every ' and " in text into references): the two
// value processors below are the one place values are escaped. Attributes also keep tab, newline and carriage return
// as references, which attribute-value normalization would otherwise turn into spaces.
const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\t': '&#9;', '\n': '&#10;', '\r': '&#13;' };
const escapeText = (s: string): string => s.replace(/[&<>\r]/g, (c) => ESCAPES[c]!);
const escapeAttr = (s: string): string => s.replace(/[&<>"\t\n\r]/g, (c) => ESCAPES[c]!);

const writer = new XMLBuilder({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  format: true,
  indentBy: '  ',
  suppressEmptyNode: true,
  suppressBooleanAttributes: false,
  processEntities: false,
  tagValueProcessor: (_name, value) => escapeText(String(value)),
  attributeValueProcessor: (_name, value) => escapeAttr(String(value)),
});

/** fast-xml-parser's document-order form of a node (`preserveOrder`). */
type FxpNode = { [name: string]: FxpNode[] | string | Record<string, string> | undefined; ':@'?: Record<string, string> };

function toFxp(n: XmlNode): FxpNode {
  return isElement(n) ? { [n.name]: n.children.map(toFxp), ':@': n.attrs } : { '#text': n.text };
}

/** Serializes one element, pretty-printed with two-space indents, without XML declaration. @internal */
export function writeXml(root: XmlElement): string {
  return (writer.build([toFxp(root)]) as string).replace(/^\n/, '');
}

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

/** The `<interface>` element of an already validated config. */
function interfaceElement(c: InterfaceConfig): XmlElement {
  const iface = xmlElement('interface', attrs({ type: c.type, trustGuestRxFilters: c.trustGuestRxFilters }, yesNo));
  appendElement(iface, 'mac', { address: c.mac });
  if (c.source) appendElement(iface, 'source', { dev: c.source.dev, mode: c.source.mode });
  if (c.virtualport) {
    const vp = appendElement(iface, 'virtualport', { type: c.virtualport.type });
    if (c.virtualport.parameters) appendElement(vp, 'parameters', attrs({ ...c.virtualport.parameters }));
  }
  if (c.target) appendElement(iface, 'target', attrs({ dev: c.target.dev, managed: c.target.managed }, yesNo));
  if (c.model) appendElement(iface, 'model', { type: c.model });
  if (c.driver) {
    const d = c.driver;
    const drv = appendElement(iface, 'driver', attrs({ name: d.name, queues: d.queues, rx_queue_size: d.rxQueueSize, tx_queue_size: d.txQueueSize }));
    if (d.host) {
      const h = d.host;
      appendElement(drv, 'host', attrs({ csum: h.csum, gso: h.gso, tso4: h.tso4, tso6: h.tso6, ecn: h.ecn, ufo: h.ufo, mrg_rxbuf: h.mrgRxbuf }));
    }
    if (d.guest) appendElement(drv, 'guest', attrs({ ...d.guest }));
  }
  if (c.bandwidth) {
    const bw = appendElement(iface, 'bandwidth');
    for (const dir of ['inbound', 'outbound'] as const) {
      const r = c.bandwidth[dir];
      if (r) appendElement(bw, dir, attrs({ average: r.average, peak: r.peak, burst: r.burst, floor: r.floor }));
    }
  }
  if (c.linkState) appendElement(iface, 'link', { state: c.linkState });
  if (c.mtu !== undefined) appendElement(iface, 'mtu', { size: String(c.mtu) });
  if (c.bootOrder !== undefined) appendElement(iface, 'boot', { order: String(c.bootOrder) });
  if (c.alias) appendElement(iface, 'alias', { name: c.alias });
  return iface;
}

/**
 * Serializes an {@link InterfaceConfig} (validated first) to one `<interface>` element, without XML declaration,
 * ready for `virsh attach-device` or a domain's `<devices>`.
 *
 * @throws {@link InvalidVifError} when the config breaks libvirt's rules.
 */
export function interfaceToXml(config: InterfaceConfig): string {
  return writeXml(interfaceElement(checkInterfaceConfig(config)));
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

function childElements(el: XmlElement): XmlElement[] {
  return el.children.filter(isElement);
}

/** The first child element named `name` (libvirt reads `./name` and takes the first). */
function child(el: XmlElement | undefined, name: string): XmlElement | undefined {
  return el ? childElements(el).find((e) => e.name === name) : undefined;
}

function attr(el: XmlElement | undefined, name: string): string | undefined {
  return el && Object.hasOwn(el.attrs, name) ? el.attrs[name] : undefined;
}

/** Decimal (and, where libvirt allows it, `0x` hex) → number; anything else is passed on for the check to reject. */
function num(v: string | undefined, hex = false): number | string | undefined {
  if (v === undefined) return undefined;
  const n = parseDecimal(v);
  if (n !== undefined) return n;
  if (hex && /^0x[0-9a-fA-F]+$/.test(v)) return parseInt(v.slice(2), 16);
  return v;
}

function bool(v: string | undefined, t: string, f: string): boolean | string | undefined {
  if (v === undefined) return undefined;
  return v === t ? true : v === f ? false : `${v} (expected ${t} or ${f})`;
}

const onOffAttr = (el: XmlElement | undefined, name: string) => bool(attr(el, name), 'on', 'off');

/** Reads one `<interface>` element into the raw (unchecked) config shape. */
function readInterface(el: XmlElement): Record<string, unknown> {
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
      txQueueSize: num(attr(driver, 'tx_queue_size')),
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

// fast-xml-parser in document-order mode. htmlEntities decodes character references (`&#10;`, `&#x41;`), each
// reference once (`&amp;#10;` stays the text "&#10;"); named references other than XML's five are refused before parsing.
const reader = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseAttributeValue: false,
  parseTagValue: false,
  processEntities: true,
  htmlEntities: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  trimValues: true,
});

function toTree(nodes: FxpNode[]): XmlNode[] {
  const out: XmlNode[] = [];
  for (const n of nodes) {
    for (const [key, value] of Object.entries(n)) {
      if (key === ':@') continue;
      if (key === '#text') out.push({ text: String(value) });
      else out.push({ name: key, attrs: { ...n[':@'] }, children: toTree(value as FxpNode[]) });
    }
  }
  return out;
}

/** Parses a document and returns its root element; refuses what is not well-formed, and DTDs. @internal */
export function readXml(xml: unknown): XmlElement {
  if (typeof xml !== 'string') throw new VifXmlError(`expected an XML string, got ${xml === null ? 'null' : typeof xml}`);
  // No DTDs: libvirt's XML has none, and entity definitions are how hostile documents blow up.
  if (/<!DOCTYPE/i.test(xml)) throw new VifXmlError('XML with a DOCTYPE is refused (libvirt XML has none)');
  // Without a DTD only XML's five named references exist; a conforming parser (libvirt's) refuses any other.
  const markupOnly = xml.replace(/<!--[\s\S]*?-->|<!\[CDATA\[[\s\S]*?\]\]>|<\?[\s\S]*?\?>/g, '');
  const badRef = /&(?!(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);)[^\s<]{0,12}/.exec(markupOnly);
  if (badRef) throw new VifXmlError(`not well-formed XML: undefined entity or bare "&" at ${JSON.stringify(badRef[0])}`);
  const ok = XMLValidator.validate(xml);
  if (ok !== true) {
    throw new VifXmlError(`not well-formed XML: ${ok.err.msg} (line ${ok.err.line}, column ${ok.err.col})`, {
      issues: [{ path: `${ok.err.line}:${ok.err.col}`, message: ok.err.msg }],
    });
  }
  let top: XmlNode[];
  try {
    top = toTree(reader.parse(xml) as FxpNode[]);
  } catch (e) {
    throw new VifXmlError(`not well-formed XML: ${(e as Error).message}`, { cause: e });
  }
  const roots = top.filter(isElement);
  if (roots.length !== 1) throw new VifXmlError(`XML must have exactly one root element, found ${roots.length}`);
  return roots[0]!;
}

function checkRead(raw: Record<string, unknown>, where: string): InterfaceConfig {
  if (raw.type !== 'direct' && raw.type !== 'ethernet') {
    throw new VifXmlError(`${where}: unsupported interface type ${JSON.stringify(raw.type ?? null)} (only "direct" and "ethernet" describe a macvtap)`, {
      issues: [{ path: 'type', message: 'must be "direct" or "ethernet"' }],
    });
  }
  const { issues, config } = interfaceConfigIssues(raw);
  if (issues.length) throw new VifXmlError(`${where}: ${formatIssues(issues)}`, { issues });
  return config;
}

/**
 * Reads one `<interface type='direct'>` or `<interface type='ethernet'>` element back into an
 * {@link InterfaceConfig}. `parseInterfaceXml(interfaceToXml(c))` deep-equals `c`.
 *
 * @throws {@link VifXmlError} when the XML is not well-formed, is not an `<interface>` of those types, or holds values
 *   libvirt would refuse (with every problem in `issues`).
 */
export function parseInterfaceXml(xml: string): InterfaceConfig {
  const root = readXml(xml);
  if (root.name !== 'interface') throw new VifXmlError(`expected an <interface> element, got <${root.name}>`);
  return checkRead(readInterface(root), '<interface>');
}

/**
 * Reads every `direct`/`ethernet` interface of a domain's XML (`virsh dumpxml`), in document order, skipping
 * interfaces of other types.
 *
 * @throws {@link VifXmlError} as {@link parseInterfaceXml}, naming which interface is wrong.
 */
export function parseDomainInterfaces(xml: string): InterfaceConfig[] {
  const root = readXml(xml);
  if (root.name !== 'domain') throw new VifXmlError(`expected a <domain> element, got <${root.name}>`);
  const out: InterfaceConfig[] = [];
  childElements(child(root, 'devices') ?? root)
    .filter((e) => e.name === 'interface')
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
 * embedded element for element, unknown elements and attributes included; comments are dropped).
 *
 * @throws {@link InvalidVifError} for a bad config or domain option; {@link VifXmlError} for a bad XML string.
 */
export function toDomainXml(interfaces: Array<InterfaceConfig | string>, options: DomainOptions = {}): string {
  const raw: unknown = options;
  if (!isPlainObject(raw)) throw new VifXmlError('invalid domain options: must be an object', { issues: [{ path: '', message: 'must be an object' }] });
  const name = options.name ?? 'macvtap-vif';
  const issues: VifIssue[] = unknownKeyIssues('', raw, ['name', 'uuid', 'memoryMiB', 'vcpus', 'type']);
  if (options.type !== undefined && options.type !== 'qemu' && options.type !== 'kvm') issues.push({ path: 'type', message: 'must be "qemu" or "kvm"' });
  // libvirt's objectNameWithSlash is [^\n]+; other control characters would not survive XML either.
  if (typeof name !== 'string' || name.length === 0 || /[\x00-\x1f\x7f]/.test(name)) {
    issues.push({ path: 'name', message: 'must be non-empty text without control characters' });
  }
  if (options.uuid !== undefined && !isUuid(options.uuid)) {
    issues.push({ path: 'uuid', message: 'must be a UUID' });
  }
  const memoryMiB = options.memoryMiB ?? 64;
  const vcpus = options.vcpus ?? 1;
  if (!Number.isInteger(memoryMiB) || memoryMiB < 1) issues.push({ path: 'memoryMiB', message: 'must be a positive integer' });
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > 4096) issues.push({ path: 'vcpus', message: 'must be an integer in 1–4096' });
  if (issues.length) throw new VifXmlError(`invalid domain options: ${formatIssues(issues)}`, { issues });

  const dom = xmlElement('domain', { type: options.type ?? 'qemu' });
  appendElement(dom, 'name', {}, name);
  if (options.uuid) appendElement(dom, 'uuid', {}, options.uuid);
  appendElement(dom, 'memory', { unit: 'MiB' }, String(memoryMiB));
  appendElement(dom, 'vcpu', {}, String(vcpus));
  appendElement(appendElement(dom, 'os'), 'type', { arch: 'x86_64' }, 'hvm');
  const devices = appendElement(dom, 'devices');
  for (const i of interfaces) {
    if (typeof i === 'string') {
      parseInterfaceXml(i);
      devices.children.push(readXml(i));
    } else {
      devices.children.push(interfaceElement(checkInterfaceConfig(i)));
    }
  }
  return writeXml(dom);
}
