/**
 * The typed surface of the harness's native addon (`macvtap_bench.node`, registered in `native/bench/addon.cc`):
 * datapath endpoints, packet capture and the raw netlink floor loop — what only the benchmark uses, kept out of the
 * library's addon (typed in the library's own `binding.d.ts`). Loaded by `native.ts` only.
 *
 * Errors are plain `Error`s carrying the library's `NativeErrorFields` (`code`, `errno`, `syscall`, …); `native.ts`
 * turns them into the library's `MacvtapError`. Namespaces (`ns`) are as in the library: `null`, a path or an fd.
 * fds this addon opens (packet sockets) are owned by this addon's per-environment registry and closed with its
 * `fdClose`, never the library's.
 */
import type { NativeNetns } from 'macvtap/internal';

/** A datapath endpoint's configuration (testbed/endpoints.ts validates and defaults it; see its GuestConfig/PeerConfig). */
export type NativeEndpointConfig =
  | ({ kind: 'guest'; fd: number; vnetHdrSize: 0 | 10 | 12; mac: string; ip: string;
      mode: 'echo' | 'sink' | 'generate' | 'raw-echo'; count?: number;
      generate?: { dstMac: string; dstIp: string; srcPort: number; dstPort: number; payloadSize: number; ratePps: number;
                   gsoSize?: number; count?: number } } & NativeEndpointCommon)
  | ({ kind: 'peer'; netns: NativeNetns; bindIp: string; bindPort: number;
      mode: 'echo' | 'sink' | 'generate' | 'pingpong'; target?: { ip: string; port: number }; payloadSize?: number;
      ratePps?: number; count?: number; warmup?: number; batch?: number; timeoutMs?: number } & NativeEndpointCommon);

/** Fields every endpoint has. */
export interface NativeEndpointCommon {
  cpu?: number;
  poll: 'block' | 'busy';
  /** 1 – 600000 (10 minutes). */
  durationMs: number;
}

/** What an endpoint's thread measured (`done`). */
export interface NativeEndpointStats {
  rxPackets: number; rxBytes: number; txPackets: number; txBytes: number;
  ignored: number; txErrors: number; arpReplies: number;
  cpuUserUs: number; cpuSysUs: number; elapsedNs: number;
  latency: {
    count: number; minNs: number; maxNs: number; meanNs: number;
    p50Ns: number; p90Ns: number; p99Ns: number; p999Ns: number;
    buckets: [number, number][];
  } | null;
}

/** A running endpoint as the addon returns it. */
export interface NativeEndpoint {
  id: number;
  /** Resolves once the thread is set up (socket bound, CPU pinned); rejects like `done` when setup failed. */
  ready: Promise<void>;
  /** Resolves with the stats once the thread has ended and been joined; rejects on a setup or hard fd failure. */
  done: Promise<NativeEndpointStats>;
}

/** `packetOpen`'s result: the socket's fd (owned by the addon) and the bound link's ifindex in its namespace. */
export interface NativePacketSocket {
  fd: number;
  ifindex: number;
}

/** The harness's native addon. Each function's errno contract is documented next to its C++ definition. */
export interface BenchBinding {
  /**
   * Benchmark floor, not API: `count` synchronous `RTM_GETLINK` round trips of `ifindex` on a plain socket made in
   * `ns`, timed in C; per-call nanoseconds.
   */
  rawGetLinkLoop(ifindex: number, count: number, ns: NativeNetns): Float64Array;
  /**
   * Starts a datapath endpoint on its own `std::thread` (never libuv's pool). The guest uses its own `dup` of `fd`;
   * the caller's fd is never closed. Environment teardown stops and joins it.
   */
  endpointStart(config: NativeEndpointConfig): NativeEndpoint;
  /** Asks an endpoint to stop (its `done` then resolves); `false` when it has already ended. */
  endpointStop(id: number): boolean;

  /**
   * Opens an `AF_PACKET`/`SOCK_RAW` socket inside `ns`, bound to `ifname` for every ethertype (non-blocking,
   * `PACKET_IGNORE_OUTGOING`): it sees every frame arriving on that link whatever its destination MAC. `frameWrite` on
   * it sends one Ethernet frame out of the link. For the anti-spoofing probe (security/).
   */
  packetOpen(ifname: string, ns: NativeNetns): Promise<NativePacketSocket>;
  /**
   * Reads frames from `fd` (a packet socket or a tap queue) until `want` of them contain `marker` (1–256 bytes) or
   * `timeoutMs` has passed; resolves the matching frames (at most `maxLength` bytes each), possibly none.
   */
  frameCapture(fd: number, marker: Buffer, want: number, timeoutMs: number, maxLength: number): Promise<Buffer[]>;

  /**
   * `write()` of one frame on an fd (a packet socket of `packetOpen`: sent out of its link; or a tap queue). Returns
   * bytes written.
   */
  frameWrite(fd: number, frame: Buffer): number;
  /** Closes an fd this addon owns (a packet socket). Throws `EBADF` for an fd it does not own. */
  fdClose(fd: number): void;
  /** The fds this addon owns in this environment, ascending. */
  ownedFds(): number[];
}
