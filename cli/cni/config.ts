/**
 * The plugin's inputs, validated before anything touches the kernel: the `CNI_*` environment (error 4 when wrong),
 * stdin as JSON (6), its `cniVersion` (1), unknown keys (2) and bad values (7) of the network configuration.
 */
import { isInteger, isPlainObject, linkNameFault, macKind } from '../../lib/validate.js';
import { CNI_ERR, CniError } from './errors.js';

/** Every CNI spec version this plugin speaks, oldest first (VERSION's `supportedVersions`). */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
/** The newest of {@link SUPPORTED_VERSIONS}: what an error reports when the config named none we know. */
export const LATEST_VERSION = '1.1.0';

/** The CNI verbs. */
export type Verb = 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS' | 'VERSION';
const VERBS: readonly Verb[] = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION'];

/** The macvlan modes a CNI attachment may use (`source` needs a MAC list no CNI config carries). */
export const CNI_MODES = ['bridge', 'vepa', 'private', 'passthru'] as const;
export type CniMode = (typeof CNI_MODES)[number];

/** The network configuration this plugin reads (`type: "macvtap-cni"`). */
export interface NetConf {
  cniVersion: string;
  name: string;
  master: string;
  mode: CniMode;
  mtu?: number;
  mac?: string;
  /** `runtimeConfig.mac` (the `mac` capability): wins over `mac` and over `CNI_ARGS` `MAC=`. */
  runtimeMac?: string;
  promisc?: boolean;
  allmulti?: boolean;
  ipv6?: boolean;
  queues?: number;
  ipam?: { type: string };
  /**
   * Port security on the interface (the library's `applyPortSecurity`): the MAC is the interface's, `ips` default to
   * the IPAM addresses. Checked in full by the verbs before anything is made (see `commands.ts`).
   */
  portSecurity?: { ips?: string[]; allowedAddressPairs?: unknown[]; rules?: unknown[] };
  dns?: Record<string, unknown>;
  prevResult?: Record<string, unknown>;
  /** Where the attachment records live (`<stateDir>/<network>/`); default `/var/lib/cni/macvtap-cni` (see `state.ts`). */
  stateDir?: string;
  /** `cni.dev/valid-attachments` of a GC request. */
  validAttachments?: Array<{ containerID: string; ifname: string }>;
}

/** The `CNI_*` environment of one invocation. */
export interface CniEnv {
  command: Verb;
  containerId?: string;
  netns?: string;
  ifname?: string;
  path: string[];
  /** `MAC=` of `CNI_ARGS`. */
  argsMac?: string;
}

const CONTAINER_ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const NETWORK_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** `CNI_ARGS` keys the runtimes send that this plugin reads or may safely ignore. */
const KNOWN_ARGS = new Set(['IgnoreUnknown', 'MAC', 'K8S_POD_NAME', 'K8S_POD_NAMESPACE', 'K8S_POD_INFRA_CONTAINER_ID', 'K8S_POD_UID']);

const envError = (msg: string): CniError => new CniError(CNI_ERR.INVALID_ENV, msg);
const confError = (msg: string): CniError => new CniError(CNI_ERR.INVALID_CONFIG, msg);

/** Only `CNI_COMMAND`: read first, since it decides what else is required. */
export function readCommand(env: NodeJS.ProcessEnv): Verb {
  const c = env.CNI_COMMAND;
  if (c === undefined || c === '') throw envError('CNI_COMMAND is not set');
  if (!(VERBS as readonly string[]).includes(c)) throw envError(`CNI_COMMAND ${JSON.stringify(c)} is not one of ${VERBS.join(', ')}`);
  return c as Verb;
}

/**
 * The environment for `command`, checked as the spec's "Parameters" section asks: `CNI_CONTAINERID` and `CNI_IFNAME`
 * for ADD/DEL/CHECK, `CNI_NETNS` for ADD/CHECK (DEL may come without one: the sandbox may be gone).
 */
export function readEnv(command: Verb, env: NodeJS.ProcessEnv): CniEnv {
  const out: CniEnv = { command, path: (env.CNI_PATH ?? '').split(':').filter((d) => d !== '') };
  const attach = command === 'ADD' || command === 'DEL' || command === 'CHECK';
  if (attach) {
    const id = env.CNI_CONTAINERID;
    if (!id) throw envError('CNI_CONTAINERID is not set');
    if (!CONTAINER_ID_RE.test(id)) throw envError(`CNI_CONTAINERID ${JSON.stringify(id)} must be letters, digits, "_", ".", "-", starting with a letter or digit`);
    out.containerId = id;
    const ifname = env.CNI_IFNAME;
    if (!ifname) throw envError('CNI_IFNAME is not set');
    const fault = linkNameFault(ifname);
    if (fault) throw envError(`CNI_IFNAME ${JSON.stringify(ifname)} is not a valid interface name (${faultText(fault)})`);
    out.ifname = ifname;
    const netns = env.CNI_NETNS;
    if (netns) {
      if (!netns.startsWith('/')) throw envError(`CNI_NETNS ${JSON.stringify(netns)} must be an absolute path`);
      out.netns = netns;
    } else if (command !== 'DEL') {
      throw envError('CNI_NETNS is not set');
    }
    const args = env.CNI_ARGS;
    if (args) out.argsMac = readArgs(args);
  }
  if (out.path.some((d) => !d.startsWith('/'))) throw envError(`CNI_PATH ${JSON.stringify(env.CNI_PATH)} must be absolute directories separated by ":"`);
  return out;
}

function faultText(f: NonNullable<ReturnType<typeof linkNameFault>>): string {
  return { empty: 'empty', dot: '"." and ".." are not names', char: 'no "/", ":", whitespace or NUL', template: 'no "%"', percent: 'no "%"', length: 'at most 15 bytes' }[f];
}

/** `CNI_ARGS` (`K=V;K=V`): returns `MAC`. Unknown keys are an error unless `IgnoreUnknown` is true, as libcni's. */
function readArgs(text: string): string | undefined {
  const pairs = new Map<string, string>();
  for (const item of text.split(';')) {
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) throw envError(`CNI_ARGS item ${JSON.stringify(item)} is not KEY=VALUE`);
    pairs.set(item.slice(0, eq), item.slice(eq + 1));
  }
  const ignore = /^(1|true)$/i.test(pairs.get('IgnoreUnknown') ?? '');
  for (const k of pairs.keys()) {
    if (!KNOWN_ARGS.has(k) && !ignore) throw envError(`CNI_ARGS has the unknown key ${JSON.stringify(k)} (and no IgnoreUnknown=1)`);
  }
  const mac = pairs.get('MAC');
  if (mac !== undefined && macKind(mac) !== 'unicast') throw envError(`CNI_ARGS MAC=${JSON.stringify(mac)} is not a unicast MAC address`);
  return mac;
}

/** Stdin as a JSON object, or error 6. */
export function decode(stdin: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(stdin);
  } catch (e) {
    throw new CniError(CNI_ERR.DECODING_FAILURE, `the network configuration on stdin is not JSON: ${(e as Error).message}`);
  }
  if (!isPlainObject(v)) throw new CniError(CNI_ERR.DECODING_FAILURE, 'the network configuration on stdin must be a JSON object');
  return v;
}

/** The config's `cniVersion` when it is one of ours, else error 1 (7 when it is not a string at all). */
export function readVersion(raw: Record<string, unknown>): string {
  const ver = raw.cniVersion;
  if (typeof ver !== 'string' || ver === '') throw confError('"cniVersion" is required (a string such as "1.0.0")');
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(ver)) {
    throw new CniError(CNI_ERR.INCOMPATIBLE_VERSION, `cniVersion ${JSON.stringify(ver)} is not supported (supported: ${SUPPORTED_VERSIONS.join(', ')})`);
  }
  return ver;
}

/** `a >= b` for the dotted versions of {@link SUPPORTED_VERSIONS}. */
export function versionAtLeast(a: string, b: string): boolean {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const x = pa[i] ?? 0;
    const y = pb[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

/** The keys the spec defines for every plugin's config, and this plugin's own. Anything else is error 2. */
const KEYS = new Set([
  'cniVersion', 'name', 'type', 'args', 'capabilities', 'runtimeConfig', 'prevResult', 'ipam', 'dns', 'ipMasq',
  'cni.dev/valid-attachments', 'cni.dev/attachments',
  'master', 'mode', 'mtu', 'mac', 'promisc', 'allmulti', 'ipv6', 'queues', 'portSecurity', 'stateDir',
]);

/** The whole network configuration, validated; nothing is created before this returns. */
export function readConf(raw: Record<string, unknown>, cniVersion: string): NetConf {
  for (const [k, val] of Object.entries(raw)) {
    if (!KEYS.has(k)) throw new CniError(CNI_ERR.UNSUPPORTED_FIELD, `unsupported field ${JSON.stringify(k)}: ${JSON.stringify(val)}`);
  }
  if (typeof raw.name !== 'string' || !NETWORK_NAME_RE.test(raw.name)) {
    throw confError(`"name" must be a network name (letters, digits, "_", ".", "-"), got ${JSON.stringify(raw.name)}`);
  }
  if (typeof raw.type !== 'string' || raw.type === '') throw confError(`"type" must be the plugin's name, got ${JSON.stringify(raw.type)}`);
  if (raw.ipMasq !== undefined && raw.ipMasq !== false) throw new CniError(CNI_ERR.UNSUPPORTED_FIELD, `unsupported field "ipMasq": ${JSON.stringify(raw.ipMasq)} (this plugin does no masquerading)`);
  for (const k of ['args', 'capabilities', 'runtimeConfig', 'dns', 'prevResult'] as const) {
    if (raw[k] !== undefined && !isPlainObject(raw[k])) throw confError(`"${k}" must be an object, got ${JSON.stringify(raw[k])}`);
  }
  const conf: NetConf = { cniVersion, name: raw.name, master: '', mode: 'bridge' };
  if (raw.master === undefined) throw confError('"master" is required (the lower device in the runtime\'s namespace)');
  if (typeof raw.master !== 'string' || linkNameFault(raw.master)) throw confError(`"master" must be an interface name, got ${JSON.stringify(raw.master)}`);
  conf.master = raw.master;
  if (raw.mode !== undefined) {
    if (!(CNI_MODES as readonly unknown[]).includes(raw.mode)) throw confError(`"mode" must be one of ${CNI_MODES.join(', ')}, got ${JSON.stringify(raw.mode)}`);
    conf.mode = raw.mode as CniMode;
  }
  if (raw.mtu !== undefined) {
    if (!isInteger(raw.mtu, 68, 65535)) throw confError(`"mtu" must be an integer 68–65535, got ${JSON.stringify(raw.mtu)}`);
    conf.mtu = raw.mtu;
  }
  if (raw.mac !== undefined) conf.mac = macValue('"mac"', raw.mac);
  for (const k of ['promisc', 'allmulti', 'ipv6'] as const) {
    if (raw[k] !== undefined) {
      if (typeof raw[k] !== 'boolean') throw confError(`"${k}" must be true or false, got ${JSON.stringify(raw[k])}`);
      conf[k] = raw[k];
    }
  }
  if (raw.queues !== undefined) {
    if (!isInteger(raw.queues, 1, 256)) throw confError(`"queues" must be an integer 1–256, got ${JSON.stringify(raw.queues)}`);
    conf.queues = raw.queues;
  }
  if (raw.ipam !== undefined) {
    const ipam = raw.ipam;
    if (!isPlainObject(ipam) || typeof ipam.type !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(ipam.type)) {
      throw confError(`"ipam" must be an object whose "type" names an IPAM plugin, got ${JSON.stringify(ipam)}`);
    }
    // An empty ipam object ({}) is what some tools write for "none": only a named type delegates.
    conf.ipam = { type: ipam.type };
  }
  if (raw.portSecurity !== undefined) {
    const ps = raw.portSecurity;
    if (!isPlainObject(ps)) throw confError(`"portSecurity" must be an object { ips?, allowedAddressPairs?, rules? }, got ${JSON.stringify(ps)}`);
    for (const k of Object.keys(ps)) {
      if (!['ips', 'allowedAddressPairs', 'rules'].includes(k)) throw new CniError(CNI_ERR.UNSUPPORTED_FIELD, `unsupported field "portSecurity.${k}": ${JSON.stringify(ps[k])}`);
    }
    for (const k of ['ips', 'allowedAddressPairs', 'rules'] as const) {
      if (ps[k] !== undefined && !Array.isArray(ps[k])) throw confError(`"portSecurity.${k}" must be an array, got ${JSON.stringify(ps[k])}`);
    }
    if (ps.ips === undefined && raw.ipam === undefined) throw confError('"portSecurity" needs "ips", or an "ipam" whose addresses become them');
    conf.portSecurity = ps as NetConf['portSecurity'];
  }
  if (raw.stateDir !== undefined) {
    if (typeof raw.stateDir !== 'string' || !raw.stateDir.startsWith('/') || raw.stateDir.includes('\0')) {
      throw confError(`"stateDir" must be an absolute directory path, got ${JSON.stringify(raw.stateDir)}`);
    }
    conf.stateDir = raw.stateDir;
  }
  const rc = raw.runtimeConfig as Record<string, unknown> | undefined;
  if (rc?.mac !== undefined) conf.runtimeMac = macValue('"runtimeConfig.mac"', rc.mac);
  if (raw.dns !== undefined) conf.dns = raw.dns as Record<string, unknown>;
  if (raw.prevResult !== undefined) conf.prevResult = raw.prevResult as Record<string, unknown>;
  const va = raw['cni.dev/valid-attachments'] ?? raw['cni.dev/attachments'];
  if (va !== undefined) {
    if (!Array.isArray(va) || !va.every((a) => isPlainObject(a) && typeof a.containerID === 'string' && typeof a.ifname === 'string')) {
      throw confError('"cni.dev/valid-attachments" must be an array of { "containerID", "ifname" }');
    }
    conf.validAttachments = va as NetConf['validAttachments'];
  }
  return conf;
}

function macValue(what: string, v: unknown): string {
  if (macKind(v) !== 'unicast') throw confError(`${what} must be a unicast MAC address (aa:bb:cc:dd:ee:ff), got ${JSON.stringify(v)}`);
  return (v as string).toLowerCase();
}

/** The MAC an attachment gets: `runtimeConfig.mac`, else `CNI_ARGS` `MAC=`, else `mac` (the reference plugins' order). */
export function effectiveMac(conf: NetConf, env: CniEnv): string | undefined {
  return conf.runtimeMac ?? env.argsMac ?? conf.mac;
}
