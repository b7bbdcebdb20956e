/**
 * Throwaway network namespaces, for tests (in the spirit of vishvananda/netlink's `setUpNetlinkTest`) and for the
 * harness's runs alike. Each is named `<prefix>-<pid>-<n>`: `mvt-…` for a test's fixtures, `mvt-bench-…`
 * ({@link BENCH_PREFIX}) for what the harness builds, so a run's namespaces can be told apart by the pid that made
 * them.
 *
 * Namespaces and the veth pairs of fixtures are made with `ip` (an independent tool, so a fixture never depends on the
 * code a test checks; there is no `dummy` on this project's kernel, hence veth lower devices). Each is deleted by
 * {@link TestNetns.destroy}, {@link destroyAll}, or at the latest on exit and SIGINT/SIGTERM (cleanup.ts).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { destroyAllNamespaces, trackNamespace } from './cleanup.js';
import { run } from './command.js';

/** Name prefix of the namespaces the harness makes for a run (`mvt-bench-<pid>-<n>`). */
export const BENCH_PREFIX = 'mvt-bench';
/** Name prefix of a test's own namespaces (`mvt-<pid>-<n>`), the default. */
export const TEST_PREFIX = 'mvt';

let counter = 0;

/** One throwaway network namespace. */
export class TestNetns {
  /** `<prefix>-<pid>-<n>`: what `ip -n` takes. */
  readonly name: string;
  /** `/run/netns/<name>`: what the library's `netns` option takes. */
  readonly path: string;
  private readonly untrack: () => void;
  private destroyed = false;

  private constructor(name: string, untrack: () => void) {
    this.name = name;
    this.path = `/run/netns/${name}`;
    this.untrack = untrack;
  }

  /** Makes a fresh namespace `<prefix>-<pid>-<n>` with `lo` up. */
  static create(prefix: string = TEST_PREFIX): TestNetns {
    const name = `${prefix}-${process.pid}-${counter++}`;
    // Registered before it exists: a SIGINT while `ip netns add` runs must find the cleanup hooks in place.
    const untrack = trackNamespace(name);
    try {
      run('ip', ['netns', 'add', name]);
    } catch (e) {
      untrack();
      throw e;
    }
    const ns = new TestNetns(name, untrack);
    try {
      ns.ip('link', 'set', 'lo', 'up');
    } catch (e) {
      ns.destroy();
      throw e;
    }
    return ns;
  }

  /** `ip -n NAME ARGS…`, stdout. */
  ip(...args: string[]): string {
    return run('ip', ['-n', this.name, ...args]);
  }

  /** `ip -n NAME -d -j link show DEV`, parsed: the independent view of a link. */
  ipLink(dev: string): IpLinkJson {
    const out = JSON.parse(this.ip('-d', '-j', 'link', 'show', 'dev', dev)) as IpLinkJson[];
    if (!out[0]) throw new Error(`ip shows no link ${dev} in ${this.name}`);
    return out[0];
  }

  /** Every link `ip -d -j link show` lists in this namespace. */
  ipLinks(): IpLinkJson[] {
    return JSON.parse(this.ip('-d', '-j', 'link', 'show')) as IpLinkJson[];
  }

  /** Runs a command inside the namespace (`ip netns exec`), stdout. */
  exec(cmd: string, args: string[] = [], input?: string): string {
    return run('ip', ['netns', 'exec', this.name, cmd, ...args], { input });
  }

  /**
   * A veth pair `name` (here) ↔ `peerName` (in `peer`, or here), both up. Returns nothing: look links up by name.
   * `mac`/`peerMac` fix the addresses so frames can be aimed.
   */
  veth(name: string, peerName: string, peer?: TestNetns, opts: { mac?: string; peerMac?: string } = {}): void {
    const args = ['link', 'add', name];
    if (opts.mac) args.push('address', opts.mac);
    args.push('type', 'veth', 'peer', 'name', peerName);
    if (opts.peerMac) args.push('address', opts.peerMac);
    if (peer) args.push('netns', peer.name);
    this.ip(...args);
    this.ip('link', 'set', name, 'up');
    (peer ?? this).ip('link', 'set', peerName, 'up');
  }

  /** Deletes the namespace (and so every link in it). Idempotent. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    spawnSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
    this.untrack();
  }
}

/** Deletes every namespace this process made and has not deleted yet (for `afterAll`). */
export function destroyAll(): void {
  destroyAllNamespaces();
}

/** The namespaces process `pid` made with `prefix` ({@link BENCH_PREFIX} by default) that still exist. */
export function namespacesOf(pid: number, prefix: string = BENCH_PREFIX): string[] {
  return existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(`${prefix}-${pid}-`)) : [];
}

let vlanProbe: string | null | undefined;
/**
 * `null` when this kernel makes 802.1Q VLANs, else why not (`'kernel lacks 802.1Q (…ip's refusal…)'`, or
 * `'not root'`). Kernels differ: some have no 802.1Q at all, Debian's load `8021q` on demand. Probed once with `ip`
 * in a throwaway namespace, independent of the code under test.
 */
export function vlanUnsupported(): string | null {
  if (vlanProbe !== undefined) return vlanProbe;
  if (process.getuid?.() !== 0) return (vlanProbe = 'not root');
  const ns = TestNetns.create();
  try {
    ns.ip('link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'p1');
    const r = spawnSync('ip', ['-n', ns.name, 'link', 'add', 'link', 'p0', 'name', 'p0.2', 'type', 'vlan', 'id', '2'], { encoding: 'utf8' });
    return (vlanProbe = r.status === 0 ? null : `kernel lacks 802.1Q (${r.stderr.trim()})`);
  } finally {
    ns.destroy();
  }
}

/** The fields of `ip -d -j link show` the tests compare against. */
export interface IpLinkJson {
  ifindex: number;
  ifname: string;
  link?: string;
  link_index?: number;
  link_netnsid?: number;
  flags: string[];
  mtu: number;
  min_mtu?: number;
  max_mtu?: number;
  operstate: string;
  group: string;
  txqlen?: number;
  link_type: string;
  address?: string;
  broadcast?: string;
  promiscuity?: number;
  ifalias?: string;
  num_tx_queues?: number;
  num_rx_queues?: number;
  master?: string;
  linkinfo?: {
    info_kind?: string;
    info_data?: {
      mode?: string;
      flags?: string[];
      macaddr_count?: number;
      macaddr_data?: string[];
      protocol?: string;
      id?: number;
      [k: string]: unknown;
    };
    /** `bridge` for a bridge port. */
    info_slave_kind?: string;
    info_slave_data?: { hairpin?: boolean; learning?: boolean; flood?: boolean; [k: string]: unknown };
  };
}

/**
 * A namespace pair: `host` holds the veth end `lower` (a macvtap's lower device), `peer` holds the other end `peerIf`
 * with `peerIp`/24, so a frame sent on a macvtap over `lower` arrives at a socket in `peer`.
 */
export interface Testbed {
  host: TestNetns;
  peer: TestNetns;
  lower: string;
  peerIf: string;
  peerMac: string;
  peerIp: string;
  destroy(): void;
}

/**
 * Makes a {@link Testbed} in 10.200.`subnet`.0/24 (addresses only ever inside these namespaces), its namespaces
 * named with `prefix`.
 */
export function makeTestbed(subnet = 1, prefix: string = TEST_PREFIX): Testbed {
  const host = TestNetns.create(prefix);
  let peer: TestNetns | undefined;
  const peerMac = `02:00:00:00:${subnet.toString(16).padStart(2, '0')}:02`;
  const peerIp = `10.200.${subnet}.2`;
  try {
    peer = TestNetns.create(prefix);
    host.veth('mvt-l0', 'mvt-p0', peer, { peerMac });
    peer.ip('addr', 'add', `${peerIp}/24`, 'dev', 'mvt-p0');
  } catch (e) {
    host.destroy();
    peer?.destroy();
    throw e;
  }
  const p = peer;
  return {
    host,
    peer: p,
    lower: 'mvt-l0',
    peerIf: 'mvt-p0',
    peerMac,
    peerIp,
    destroy() {
      host.destroy();
      p.destroy();
    },
  };
}
