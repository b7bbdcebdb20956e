/**
 * Throwaway network namespaces for privileged tests, in the spirit of vishvananda/netlink's `setUpNetlinkTest`.
 *
 * Every namespace is named `mvt-<pid>-<n>` and made with `ip netns add` (an independent tool, so fixtures never depend
 * on the code under test). Lower devices are veth pairs (this kernel has no `dummy`). Everything made here is removed
 * by `destroy()`/`destroyAll()`, and as a last resort synchronously on process exit and on SIGINT/SIGTERM.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { afterEach, describe } from 'vitest';

/** True when the suite may create namespaces and links. */
export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

let warned = false;
/**
 * `describe` for suites that need root. When not root the suite is skipped loudly (a warning naming the suite and
 * why); in CI (`CI=true`) not being root is an error, so privileged suites can never be skipped there silently.
 */
export function describePrivileged(name: string, fn: () => void): void {
  if (!isRoot) {
    if (process.env.CI === 'true') throw new Error(`${name}: privileged suite needs root, and CI must run it`);
    if (!warned) {
      warned = true;
      process.stderr.write(`\n*** SKIPPING privileged suites: not root (they create network namespaces and links) ***\n`);
    }
    describe.skip(`${name} [SKIPPED: needs root]`, fn);
    return;
  }
  describe(name, fn);
}

/**
 * {@link describePrivileged} for suites that also need a tool (QEMU, libvirtd, …): `missing` is why it is not there,
 * or `null`. Without it the suite is skipped loudly, and under `CI=true` that is an error: CI installs every tool.
 */
export function describeNeeding(name: string, missing: string | null, fn: () => void): void {
  if (missing) {
    if (process.env.CI === 'true') throw new Error(`${name}: ${missing}, and CI must run it`);
    process.stderr.write(`\n*** SKIPPING ${name}: ${missing} ***\n`);
    describe.skip(`${name} [SKIPPED: ${missing}]`, fn);
    return;
  }
  describePrivileged(name, fn);
}

/**
 * A per-test stack of cleanup steps, undone in reverse order after each test (also when it failed); a failing step is
 * reported and the others still run. Call once at the top level of a test file; push steps with the returned function.
 */
export function cleanupStack(): (step: () => unknown) => void {
  let undo: Array<() => unknown> = [];
  afterEach(async () => {
    const steps = undo.reverse();
    undo = [];
    for (const step of steps) {
      try {
        await step();
      } catch (e) {
        process.stderr.write(`cleanup step failed: ${String(e)}\n`);
      }
    }
  });
  return (step) => {
    undo.push(step);
  };
}

const live = new Set<string>();
let counter = 0;

function cleanupSync(): void {
  for (const name of live) spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  live.clear();
}
process.once('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    cleanupSync();
    process.kill(process.pid, sig);
  });
}

/** Runs a command, returns stdout; throws with stderr in the message on failure. */
export function run(cmd: string, args: string[], input?: string): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${err.stderr?.trim() || err.message}`);
  }
}

/** One throwaway network namespace. */
export class TestNetns {
  readonly name: string;
  /** `/run/netns/<name>`: what the package's `netns` option takes. */
  readonly path: string;
  private destroyed = false;

  private constructor(name: string) {
    this.name = name;
    this.path = `/run/netns/${name}`;
  }

  /** Makes a fresh namespace with `lo` up. */
  static create(): TestNetns {
    const name = `mvt-${process.pid}-${counter++}`;
    run('ip', ['netns', 'add', name]);
    live.add(name);
    const ns = new TestNetns(name);
    ns.ip('link', 'set', 'lo', 'up');
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
    return run('ip', ['netns', 'exec', this.name, cmd, ...args], input);
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
    live.delete(this.name);
    spawnSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
  }
}

let vlanProbe: string | null | undefined;
/**
 * `null` when this kernel makes 802.1Q VLANs, else why not (`'kernel lacks 802.1Q (…ip's refusal…)'`, or
 * `'not root'`). Kernels differ: 6.18 here has no 802.1Q, Debian's 6.1 (test/vm) loads `8021q` on demand. Probed once
 * with `ip` in a throwaway namespace, independent of the code under test.
 */
export function vlanUnsupported(): string | null {
  if (vlanProbe !== undefined) return vlanProbe;
  if (!isRoot) return (vlanProbe = 'not root');
  const ns = TestNetns.create();
  try {
    ns.ip('link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'p1');
    const r = spawnSync('ip', ['-n', ns.name, 'link', 'add', 'link', 'p0', 'name', 'p0.2', 'type', 'vlan', 'id', '2'], { encoding: 'utf8' });
    return (vlanProbe = r.status === 0 ? null : `kernel lacks 802.1Q (${r.stderr.trim()})`);
  } finally {
    ns.destroy();
  }
}

/** Deletes every namespace this process made and has not deleted yet (for `afterAll`). */
export function destroyAll(): void {
  cleanupSync();
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
 * A namespace pair for datapath tests: `host` holds the veth end `lower` (the macvtap's lower device), `peer` holds
 * the other end `peerIf` with `peerIp`/24, so a frame sent on a macvtap over `lower` arrives at a socket in `peer`.
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

/** Makes a {@link Testbed}. Addresses are in 10.200.x.0/24, only ever inside these namespaces. */
export function makeTestbed(subnet = 1): Testbed {
  const host = TestNetns.create();
  const peer = TestNetns.create();
  const peerMac = `02:00:00:00:${subnet.toString(16).padStart(2, '0')}:02`;
  const peerIp = `10.200.${subnet}.2`;
  host.veth('mvt-l0', 'mvt-p0', peer, { peerMac });
  peer.ip('addr', 'add', `${peerIp}/24`, 'dev', 'mvt-p0');
  return {
    host,
    peer,
    lower: 'mvt-l0',
    peerIf: 'mvt-p0',
    peerMac,
    peerIp,
    destroy() {
      host.destroy();
      peer.destroy();
    },
  };
}
