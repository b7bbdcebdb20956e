/**
 * Native datapath endpoints, what the datapath benchmark measures with and what tests drive traffic with (the
 * harness's addon, native/bench/). A guest endpoint is a minimal network stack over a tap fd — what QEMU's virtio-net
 * backend would see, without a guest OS; a peer endpoint is a UDP socket in a network namespace. Each runs in native
 * code on its own thread, optionally pinned to a CPU, bounded by `durationMs` (at most 10 minutes), a count, or
 * {@link Endpoint.stop}.
 */
import { isIPv4 } from 'node:net';
import { callNativeSync, fromNative, invalidType, invalidValue, validate as v } from 'macvtap/internal';
import type { NativeEndpointConfig, NativeEndpointStats } from '../binding.js';
import { benchBinding as binding } from '../native.js';

/** What one endpoint counted and measured. Guest byte counts are Ethernet frame bytes; peer counts are UDP payload. */
export interface EndpointStats {
  /** Guest: UDP datagrams for it that it accepted. Peer: datagrams received (pingpong: matching echoes). */
  rxPackets: number;
  rxBytes: number;
  /** Frames / datagrams written (guest: echoes, generated frames and ARP replies). */
  txPackets: number;
  txBytes: number;
  /** Frames read that were not for us / unparsable / wrong checksum (pingpong: stale echoes). */
  ignored: number;
  /** Write/send failures (EAGAIN, ENOBUFS). */
  txErrors: number;
  /** ARP replies sent (guest only). */
  arpReplies: number;
  /** CPU time of the endpoint's thread (`getrusage(RUSAGE_THREAD)`), µs. */
  cpuUserUs: number;
  cpuSysUs: number;
  /** Wall time of the loop, ns. */
  elapsedNs: number;
  /** Pingpong only: the round-trip times; `null` for other modes or when no round trip completed. */
  latency: LatencySummary | null;
}

/** From a log-linear histogram (HdrHistogram-style, ≤1% relative error, 1 ns – 10 s). */
export interface LatencySummary {
  count: number;
  minNs: number;
  maxNs: number;
  meanNs: number;
  p50Ns: number;
  p90Ns: number;
  p99Ns: number;
  p999Ns: number;
  /** Non-empty buckets: [upperBoundNs, count][] for plotting and for merging repetitions without averaging percentiles. */
  buckets: [number, number][];
}

/**
 * How an endpoint waits: `block` = sleep in the read itself (guest: read() on the blocking tap fd, `generate` excepted:
 * ppoll() then read, and non-blocking writes that wait in ppoll() for POLLOUT when the device has no room — a blocking
 * write can sleep for good on a shaped macvtap, see `setBandwidth`; peer: recv on a blocking socket), `busy` = spin on
 * a non-blocking fd (a write without room counts as a tx error).
 */
export type PollMode = 'block' | 'busy';

/** A guest endpoint: it owns a tap queue's traffic for the run. */
export interface GuestConfig {
  /** A TapQueue fd (macvtap queue or createTap fd). Not closed by the endpoint (it works on its own dup). */
  fd: number;
  /** Must match how the queue was opened (0 without a vnet header). */
  vnetHdrSize: 0 | 10 | 12;
  /** The guest's identity: it answers ARP for `ip`, accepts frames to `mac` (and broadcast). */
  mac: string;
  ip: string;
  /**
   * `echo` swaps MACs/IPs/ports (checksums stay valid by construction; frames marked NEEDS_CSUM are echoed with their
   * partial checksum and vnet header as received), `sink` counts, `generate` sends, `raw-echo` is the minimal
   * read → fixed-offset swap → write loop (the baseline the ≤10% target compares against).
   */
  mode: 'echo' | 'sink' | 'generate' | 'raw-echo';
  generate?: {
    dstMac: string;
    dstIp: string;
    srcPort: number;
    dstPort: number;
    /** UDP payload bytes per frame (with `gsoSize`: per super-frame, more than `gsoSize`). */
    payloadSize: number;
    /** 0 = as fast as possible. */
    ratePps: number;
    /** With a vnet header: UDP GSO super-frames cut by the kernel into `gsoSize`-byte datagrams (csum partial). */
    gsoSize?: number;
    /** Stop after this many frames. */
    count?: number;
  };
  /** Stop after this many datagrams echoed (echo, raw-echo) or received (sink). */
  count?: number;
  /** Pin the thread to this CPU. */
  cpu?: number;
  poll: PollMode;
  /** 1 – 600000. */
  durationMs: number;
}

/** A peer endpoint: a UDP socket created inside `netns` (setns on the endpoint's own thread). */
export interface PeerConfig {
  netns: string | number | null;
  bindIp: string;
  bindPort: number;
  mode: 'echo' | 'sink' | 'generate' | 'pingpong';
  /** generate / pingpong: where to send (the socket is connected to it). */
  target?: { ip: string; port: number };
  /** UDP payload bytes (pingpong: at least 16, the sequence number and timestamp). Default 64. */
  payloadSize?: number;
  /** generate: datagrams per second, 0 = as fast as possible. */
  ratePps?: number;
  /** pingpong: round trips measured (after `warmup`); sink/echo: datagrams; generate: datagrams sent. */
  count?: number;
  /** pingpong: round trips before measuring. */
  warmup?: number;
  /** recvmmsg/sendmmsg vector length (default 32; pingpong 1). */
  batch?: number;
  /** pingpong: per-round-trip timeout → counted as lost. Default 1000. */
  timeoutMs?: number;
  cpu?: number;
  poll: PollMode;
  durationMs: number;
}

/** A running endpoint. */
export interface Endpoint {
  /** Resolves once the thread is set up (peer: socket bound; both: pinned). */
  readonly ready: Promise<void>;
  /** Stops, joins, resolves stats. */
  stop(): Promise<EndpointStats>;
  /** Resolves when the loop ends by itself (count/duration) or after {@link stop}. */
  readonly done: Promise<EndpointStats>;
}

/** The endpoints' hard cap on a run. */
export const MAX_DURATION_MS = 10 * 60 * 1000;

function ipv4(option: string, value: unknown): string {
  if (typeof value !== 'string') throw invalidType(option, 'an IPv4 address string', value);
  if (!isIPv4(value)) throw invalidValue(option, 'must be an IPv4 address', value);
  return value;
}

/** A frame address: any six-octet MAC (a destination may be multicast or broadcast), by the library's rule. */
function macAddr(option: string, value: unknown): string {
  if (typeof value !== 'string') throw invalidType(option, "a MAC address string like '02:00:00:00:00:01'", value);
  if (v.macKind(value) === undefined) throw invalidValue(option, "must be a MAC address like '02:00:00:00:00:01'", value);
  return value;
}

function common(c: { cpu?: unknown; poll?: unknown; durationMs?: unknown }): { cpu?: number; poll: PollMode; durationMs: number } {
  if (c.poll !== 'block' && c.poll !== 'busy') throw invalidValue('poll', "must be 'block' or 'busy'", c.poll);
  const out: { cpu?: number; poll: PollMode; durationMs: number } = {
    poll: c.poll,
    durationMs: v.integer('durationMs', c.durationMs, 1, MAX_DURATION_MS),
  };
  if (c.cpu !== undefined) out.cpu = v.integer('cpu', c.cpu, 0, 1023);
  return out;
}

function optCount(option: string, value: unknown): number | undefined {
  return value === undefined ? undefined : v.integer(option, value, 0, Number.MAX_SAFE_INTEGER);
}

function wrap(cfg: NativeEndpointConfig): Endpoint {
  const ep = callNativeSync(() => binding.endpointStart(cfg));
  const ready = ep.ready.catch((e: unknown) => { throw fromNative(e); });
  const done = ep.done.catch((e: unknown) => { throw fromNative(e); }) as Promise<EndpointStats>;
  // A setup failure rejects both; a caller awaiting only one of them must not get an unhandled rejection.
  ready.catch(() => undefined);
  done.catch(() => undefined);
  return {
    ready,
    done,
    stop(): Promise<EndpointStats> {
      binding.endpointStop(ep.id);
      return done;
    },
  };
}

/**
 * Starts a guest endpoint on a tap queue's fd.
 * @throws TypeError/RangeError for a bad configuration (synchronously).
 */
export function startGuest(config: GuestConfig): Endpoint {
  const c = v.options('config', config);
  v.knownKeys('config', c, ['fd', 'vnetHdrSize', 'mac', 'ip', 'mode', 'generate', 'count', 'cpu', 'poll', 'durationMs']);
  const fd = v.integer('fd', c.fd, 0, 2 ** 31 - 1);
  if (c.vnetHdrSize !== 0 && c.vnetHdrSize !== 10 && c.vnetHdrSize !== 12) throw invalidValue('vnetHdrSize', 'must be 0, 10 or 12', c.vnetHdrSize);
  if (!['echo', 'sink', 'generate', 'raw-echo'].includes(c.mode as string)) throw invalidValue('mode', "must be 'echo', 'sink', 'generate' or 'raw-echo'", c.mode);
  const cfg: NativeEndpointConfig = {
    kind: 'guest', fd, vnetHdrSize: c.vnetHdrSize, mac: macAddr('mac', c.mac), ip: ipv4('ip', c.ip), mode: c.mode, ...common(c),
  };
  const count = optCount('count', c.count);
  if (count !== undefined) cfg.count = count;
  if (c.mode === 'generate') {
    const g = v.options('generate', c.generate);
    if (c.generate === undefined) throw invalidValue('generate', "is required with mode 'generate'", undefined);
    v.knownKeys('generate', g, ['dstMac', 'dstIp', 'srcPort', 'dstPort', 'payloadSize', 'ratePps', 'gsoSize', 'count']);
    const gen: NonNullable<typeof cfg.generate> = {
      dstMac: macAddr('generate.dstMac', g.dstMac),
      dstIp: ipv4('generate.dstIp', g.dstIp),
      srcPort: v.integer('generate.srcPort', g.srcPort, 1, 65535),
      dstPort: v.integer('generate.dstPort', g.dstPort, 1, 65535),
      payloadSize: v.integer('generate.payloadSize', g.payloadSize, 0, 65507),
      ratePps: v.integer('generate.ratePps', g.ratePps, 0, 1_000_000_000),
    };
    if (g.gsoSize !== undefined) {
      if (c.vnetHdrSize === 0) throw invalidValue('generate.gsoSize', 'needs a vnet header (vnetHdrSize 10 or 12)', g.gsoSize);
      gen.gsoSize = v.integer('generate.gsoSize', g.gsoSize, 1, 65507);
      if (gen.payloadSize <= gen.gsoSize) throw invalidValue('generate.payloadSize', 'must exceed gsoSize (a super-frame holds several segments)', gen.payloadSize);
      if (gen.payloadSize > 65507 - 8) throw invalidValue('generate.payloadSize', 'must leave room for the headers of a 64 KB super-frame', gen.payloadSize);
    }
    const gc = optCount('generate.count', g.count);
    if (gc !== undefined) gen.count = gc;
    cfg.generate = gen;
  } else if (c.generate !== undefined) {
    throw invalidValue('generate', "applies only to mode 'generate'", c.generate);
  }
  return wrap(cfg);
}

/**
 * Starts a peer endpoint (a UDP socket in `netns`).
 * @throws TypeError/RangeError for a bad configuration (synchronously).
 */
export function startPeer(config: PeerConfig): Endpoint {
  const c = v.options('config', config);
  v.knownKeys('config', c, ['netns', 'bindIp', 'bindPort', 'mode', 'target', 'payloadSize', 'ratePps', 'count', 'warmup', 'batch', 'timeoutMs', 'cpu', 'poll', 'durationMs']);
  if (!['echo', 'sink', 'generate', 'pingpong'].includes(c.mode as string)) throw invalidValue('mode', "must be 'echo', 'sink', 'generate' or 'pingpong'", c.mode);
  const netns = c.netns === null || c.netns === undefined ? null : v.netns('netns', c.netns);
  const cfg: NativeEndpointConfig = {
    kind: 'peer', netns, bindIp: ipv4('bindIp', c.bindIp), bindPort: v.integer('bindPort', c.bindPort, 0, 65535), mode: c.mode, ...common(c),
  };
  if (c.target !== undefined) {
    const t = v.options('target', c.target);
    v.knownKeys('target', t, ['ip', 'port']);
    cfg.target = { ip: ipv4('target.ip', t.ip), port: v.integer('target.port', t.port, 1, 65535) };
  } else if (c.mode === 'generate' || c.mode === 'pingpong') {
    throw invalidValue('target', `is required with mode '${c.mode}'`, undefined);
  }
  if (c.payloadSize !== undefined) cfg.payloadSize = v.integer('payloadSize', c.payloadSize, c.mode === 'pingpong' ? 16 : 0, 65507);
  if (c.ratePps !== undefined) cfg.ratePps = v.integer('ratePps', c.ratePps, 0, 1_000_000_000);
  const count = optCount('count', c.count);
  if (count !== undefined) cfg.count = count;
  const warmup = optCount('warmup', c.warmup);
  if (warmup !== undefined) cfg.warmup = warmup;
  if (c.batch !== undefined) cfg.batch = v.integer('batch', c.batch, 1, 1024);
  if (c.timeoutMs !== undefined) cfg.timeoutMs = v.integer('timeoutMs', c.timeoutMs, 1, MAX_DURATION_MS);
  return wrap(cfg);
}

/** Pingpong: round trips that never came back (sent − received). */
export function lostRoundTrips(stats: EndpointStats): number {
  return stats.txPackets - stats.rxPackets;
}
