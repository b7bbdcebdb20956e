/**
 * A private Open vSwitch for the `tap+ovs` topology: the harness's own `ovsdb-server` and `ovs-vswitchd` with every
 * file (database, sockets, pidfiles, logs) in a temporary run directory, never the system's OVS service. The switch
 * daemon runs inside the namespace whose links it switches. Daemons are stopped with `ovs-appctl … exit`, then by pid
 * (SIGTERM, SIGKILL) if they linger, and are killed by pid on SIGINT/SIGTERM of the harness.
 *
 * The kernel datapath (`system`) is used when the `openvswitch` module is present, else the userspace `netdev`
 * datapath (experimental and slow per the OVS docs); the result is labelled with the one really used.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { trackCleanup, trackPid } from './cleanup.js';

/** OVS's own tools this harness runs. */
const TOOLS = ['ovsdb-tool', 'ovsdb-server', 'ovs-vswitchd', 'ovs-vsctl', 'ovs-appctl', 'ovs-ofctl'] as const;
/** Where Debian's openvswitch-common puts the schema. */
const SCHEMA_PATHS = ['/usr/share/openvswitch/vswitch.ovsschema', '/usr/local/share/openvswitch/vswitch.ovsschema'];
/** Debian puts the daemons in sbin, which a non-login root shell may not have on PATH. */
const SEARCH = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/sbin', '/usr/bin', '/sbin', '/usr/local/sbin', '/usr/local/bin'];

/**
 * Prefix of every instance's run directory in the temporary directory: `mvt-bench-ovs-<pid>-XXXXXX`. The daemons'
 * command lines name that directory, so a test can find a run's daemons by the harness's pid.
 */
export const OVS_DIR_PREFIX = 'mvt-bench-ovs';

/** How to get OVS on Debian, printed in the row when it is missing. */
export const OVS_INSTALL_HINT = 'apt-get install openvswitch-switch (the harness starts its own daemons; the service need not run)';

/** What {@link detectOvs} found. */
export type OvsAvailability =
  | { available: true; version: string; datapath: 'system' | 'netdev'; tools: Record<(typeof TOOLS)[number], string>; schema: string }
  | { available: false; reason: string };

function which(tool: string): string | null {
  for (const dir of SEARCH) {
    const p = join(dir, tool);
    if (existsSync(p)) return p;
  }
  return null;
}

/** The kernel datapath needs the `openvswitch` module (built in or loaded); this kernel has no module loading. */
export function kernelDatapathAvailable(): boolean {
  if (existsSync('/sys/module/openvswitch')) return true;
  // A distribution kernel has it as a module that is not loaded yet (/sys/module appears only once it is): ask
  // modprobe, quietly. On a kernel without modules or without the module this fails and the netdev datapath is used.
  spawnSync('modprobe', ['-q', 'openvswitch'], { stdio: 'ignore', timeout: 10_000 });
  return existsSync('/sys/module/openvswitch');
}

/** Finds OVS's tools and schema, its version and the datapath it can use here. */
export function detectOvs(): OvsAvailability {
  const tools = {} as Record<(typeof TOOLS)[number], string>;
  const missing: string[] = [];
  for (const t of TOOLS) {
    const p = which(t);
    if (p) tools[t] = p;
    else missing.push(t);
  }
  if (missing.length) return { available: false, reason: `Open vSwitch not installed (${missing.join(', ')} not found): ${OVS_INSTALL_HINT}` };
  const schema = SCHEMA_PATHS.find((p) => existsSync(p));
  if (!schema) return { available: false, reason: `Open vSwitch schema vswitch.ovsschema not found: ${OVS_INSTALL_HINT}` };
  const v = spawnSync(tools['ovs-vswitchd'], ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const version = (v.stdout || '').split('\n')[0]?.replace(/^ovs-vswitchd \(Open vSwitch\)\s*/, '').trim() || 'unknown';
  return { available: true, version, datapath: kernelDatapathAvailable() ? 'system' : 'netdev', tools, schema };
}

/**
 * Runs one OVS tool, bounded by `timeoutMs` (then SIGKILL). Resolves with its stdout once it exited and its pipes
 * closed — but a `--detach`ed daemon's child inherits those pipes, and one that hangs would hold them open for
 * ever: 2 s after the exit the pipes are let go and the exit status decides.
 */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => void (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => void (stderr += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    let settled = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stdout.destroy();
      child.stderr.destroy();
      if (code === 0) return resolve(stdout);
      const why = timedOut ? `no exit within ${timeoutMs / 1000} s (killed)` : signal ? `killed by ${signal}` : `exit ${code}`;
      reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || why}`));
    };
    child.on('error', (e) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`${cmd}: ${e.message}`));
    });
    child.on('close', finish);
    child.on('exit', (code, signal) => void setTimeout(() => finish(code, signal), 2_000).unref());
  });
}

function readPid(file: string): number | null {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function cmdlineMentions(pid: number, text: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text);
  } catch {
    return false;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (!alive(pid)) return true;
    await sleep(20);
  }
  return !alive(pid);
}

/** One running private OVS instance. */
export class OvsInstance {
  /** The temporary run directory holding every OVS file of this instance. */
  readonly dir: string;
  /** OVS version string (`ovs-vswitchd --version`). */
  readonly version: string;
  /** The datapath type bridges get. */
  readonly datapath: 'system' | 'netdev';
  /** Pids of `ovsdb-server` and `ovs-vswitchd` (0 until started). */
  dbPid = 0;
  switchPid = 0;
  private readonly tools: Record<(typeof TOOLS)[number], string>;
  private readonly env: NodeJS.ProcessEnv;
  private untrack: (() => void)[] = [];
  private stopped = false;

  private constructor(found: Extract<OvsAvailability, { available: true }>, dir: string) {
    this.tools = found.tools;
    this.version = found.version;
    this.datapath = found.datapath;
    this.dir = dir;
    // Every default path OVS derives goes to the private directory too (bridge mgmt sockets, the db lock, …).
    this.env = { ...process.env, OVS_RUNDIR: dir, OVS_DBDIR: dir, OVS_LOGDIR: dir, OVS_SYSCONFDIR: dir };
  }

  private get sock(): string {
    return join(this.dir, 'db.sock');
  }

  /**
   * Starts `ovsdb-server` (in the caller's namespace: it only talks over its unix socket) and `ovs-vswitchd` inside
   * `netns` (a name from `ip netns add`), each `--detach`ed with a pidfile, both tracked for cleanup by pid.
   */
  static async start(found: Extract<OvsAvailability, { available: true }>, netns: string): Promise<OvsInstance> {
    // The pid in the name lets a test find this run's daemons by their command line (they all carry the directory).
    const dir = mkdtempSync(join(tmpdir(), `${OVS_DIR_PREFIX}-${process.pid}-`));
    const inst = new OvsInstance(found, dir);
    // Last resort on SIGINT/exit, also in the window between a daemon's start and our reading its pidfile: kill
    // whatever the pidfiles name (by pid), then remove the directory.
    inst.untrack.push(trackCleanup(() => {
      for (const f of ['ovs-vswitchd.pid', 'ovsdb-server.pid']) {
        const pid = readPid(join(dir, f));
        // Only a process that is still ours: its command line names this directory (a pid can be reused).
        if (pid && cmdlineMentions(pid, dir)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // Already gone.
          }
        }
      }
      rmSync(dir, { recursive: true, force: true });
    }));
    try {
      const t = inst.tools;
      const db = join(dir, 'conf.db');
      await run(t['ovsdb-tool'], ['create', db, found.schema], inst.env);
      await run(t['ovsdb-server'], [
        db, `--remote=punix:${inst.sock}`, `--pidfile=${join(dir, 'ovsdb-server.pid')}`, '--detach', '--no-chdir',
        `--log-file=${join(dir, 'ovsdb-server.log')}`, `--unixctl=${join(dir, 'ovsdb-server.ctl')}`,
      ], inst.env);
      inst.dbPid = readPid(join(dir, 'ovsdb-server.pid')) ?? 0;
      if (!inst.dbPid) throw new Error('ovsdb-server started but wrote no pidfile');
      inst.untrack.push(trackPid(inst.dbPid));
      await inst.vsctl(['--no-wait', 'init']);
      // `ip netns exec` (not a bare setns) also gives the daemon a /sys of that namespace, which OVS reads.
      await run('ip', [
        'netns', 'exec', netns, t['ovs-vswitchd'], `unix:${inst.sock}`, `--pidfile=${join(dir, 'ovs-vswitchd.pid')}`,
        '--detach', '--no-chdir', `--log-file=${join(dir, 'ovs-vswitchd.log')}`, `--unixctl=${join(dir, 'ovs-vswitchd.ctl')}`,
      ], inst.env);
      inst.switchPid = readPid(join(dir, 'ovs-vswitchd.pid')) ?? 0;
      if (!inst.switchPid) throw new Error('ovs-vswitchd started but wrote no pidfile');
      inst.untrack.push(trackPid(inst.switchPid));
    } catch (e) {
      await inst.stop();
      throw e;
    }
    return inst;
  }

  /** `ovs-vsctl --db=unix:SOCK --timeout=30 ARGS…` (bridge creation is slow under the userspace datapath). */
  vsctl(args: string[]): Promise<string> {
    return run(this.tools['ovs-vsctl'], [`--db=unix:${this.sock}`, '--timeout=30', ...args], this.env, 35_000);
  }

  /** Adds a bridge on this instance's datapath with the given ports (they must exist in the switch's namespace). */
  async addBridge(name: string, ports: string[]): Promise<void> {
    await this.vsctl(['add-br', name, '--', 'set', 'bridge', name, `datapath_type=${this.datapath}`]);
    for (const p of ports) await this.vsctl(['add-port', name, p]);
  }

  /** `ovs-ofctl ARGS…` against a bridge of this instance (its management socket is in the run directory). */
  ofctl(args: string[]): Promise<string> {
    return run(this.tools['ovs-ofctl'], args, this.env);
  }

  /**
   * Replaces every flow of `bridge` by `flows` (`ovs-ofctl add-flows` syntax, one per line) in one batch: the text goes
   * to a file in the run directory, then `del-flows` and `add-flows FILE` (the default NORMAL flow goes with the rest).
   */
  async replaceFlows(bridge: string, flows: string): Promise<void> {
    const file = join(this.dir, `${bridge}.flows`);
    writeFileSync(file, flows);
    await this.ofctl(['del-flows', bridge]);
    await this.ofctl(['add-flows', bridge, file]);
  }

  /** `ovs-ofctl dump-flows BRIDGE`, one flow per line (the reply header left out). */
  async dumpFlows(bridge: string): Promise<string[]> {
    const out = await this.ofctl(['dump-flows', bridge]);
    return out.split('\n').filter((l) => l.includes('actions='));
  }

  /** Daemon pids still running (for checks after {@link stop}). */
  livePids(): number[] {
    return [this.switchPid, this.dbPid].filter((p) => p > 0 && alive(p));
  }

  /** Stops both daemons (`ovs-appctl exit`, then SIGTERM/SIGKILL by pid), removes the run directory. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // A daemon whose start failed half-way may have written its pidfile without our reading it: take it from there,
    // if it is still ours (its command line names our directory).
    const pidOf = (known: number, file: string): number => {
      if (known) return known;
      const pid = readPid(join(this.dir, file));
      return pid && cmdlineMentions(pid, this.dir) ? pid : 0;
    };
    const daemons: [number, string][] = [
      [pidOf(this.switchPid, 'ovs-vswitchd.pid'), 'ovs-vswitchd.ctl'], [pidOf(this.dbPid, 'ovsdb-server.pid'), 'ovsdb-server.ctl'],
    ];
    for (const [pid, ctl] of daemons) {
      if (!pid) continue;
      await run(this.tools['ovs-appctl'], ['-t', join(this.dir, ctl), 'exit'], this.env, 5_000).catch(() => undefined);
      if (await waitGone(pid, 3_000)) continue;
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // Gone meanwhile.
      }
      if (await waitGone(pid, 2_000)) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
      await waitGone(pid, 1_000);
    }
    rmSync(this.dir, { recursive: true, force: true });
    for (const u of this.untrack.splice(0)) u();
  }
}
