/**
 * A private libvirt daemon for end-to-end tests: `libvirtd` (libvirt 9.0, Debian 12 has no virtqemud) started by the
 * test inside one of its network namespaces and a private mount namespace, with tmpfs on every state directory
 * (`/run/libvirt`, `/var/lib/libvirt`, `/var/log/libvirt`, `/etc/libvirt`) and our `qemu.conf` (root user, no
 * security driver, file stdio handler), so it neither sees nor touches the machine's own libvirt state. It is reached
 * with `virsh -c qemu:///system` run through `nsenter` into its namespaces, and stopped by PID.
 *
 * Why libvirtd and not `virt-qemu-run`: with libvirt 9.0 `virt-qemu-run` segfaults when a `type='direct'` guest stops
 * and never exits for `type='ethernet' managed='no'`; the daemon handles both forms cleanly, and a real daemon is what
 * Nova drives.
 *
 * QEMU processes libvirt starts are daemonized (not our children): their PIDs are read from libvirt's pid files
 * (through `/proc/<libvirtd>/root`, i.e. inside its mount namespace) so they can be killed by PID when a test fails.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { kernelCmdline, type GuestImage, type GuestTask } from '../../bench/testbed/guest-image.js';
import { SerialLog } from '../../bench/testbed/qemu.js';
import { appendElement, readXml, writeXml, type XmlElement } from '../../lib/vif/xml.js';

/** Why a private libvirtd cannot run here (a tool is missing), or `null`. */
export function libvirtdUnavailable(): string | null {
  const need: Array<[string, string]> = [
    ['libvirtd', 'libvirt-daemon libvirt-daemon-driver-qemu'],
    ['virsh', 'libvirt-clients'],
    ['qemu-system-x86_64', 'qemu-system-x86'],
    ['nsenter', 'util-linux'],
    ['unshare', 'util-linux'],
    ['useradd', 'passwd'],
  ];
  for (const [tool, pkg] of need) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0) return `${tool} is not installed (apt-get install ${pkg})`;
  }
  return null;
}

/**
 * libvirt's QEMU driver refuses to initialize unless its compiled-in default user `libvirt-qemu` exists, even when
 * qemu.conf says `user = "root"`. Debian's `libvirt-daemon-system` creates it; with only the daemon and driver
 * packages installed it is missing. Creates it (system user, own group, no home, no shell) if absent.
 */
export function ensureLibvirtQemuUser(): void {
  if (spawnSync('id', ['libvirt-qemu'], { stdio: 'ignore' }).status === 0) return;
  const r = spawnSync('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/var/lib/libvirt', '--shell', '/usr/sbin/nologin', 'libvirt-qemu'], { encoding: 'utf8' });
  // Status 9: created meanwhile by someone else, which is just as good.
  if (r.status !== 0 && r.status !== 9) throw new Error(`useradd libvirt-qemu failed (${r.status}): ${r.stderr}`);
}

const QEMU_CONF = `# Written by the macvtap test suite for a private libvirtd.
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
stdio_handler = "file"
security_driver = "none"
`;

/**
 * QEMU capability probing costs ≈8 s per daemon start; its cache is kept in `<repo>/.cache/libvirt-caps` (bind-mounted
 * on `/var/cache/libvirt`) so only the first run pays.
 */
const capsCacheDir = resolve(import.meta.dirname, '..', '..', '.cache', 'libvirt-caps');

// Run by `ip netns exec NS unshare -m --propagation private sh -c SCRIPT sh DIR CACHE`: new mount namespace, tmpfs
// state, our config, then exec so the PID we hold is libvirtd's.
const START_SCRIPT = `set -e
for d in /run/libvirt /var/lib/libvirt /var/log/libvirt /etc/libvirt; do
  mkdir -p "$d"; mount -t tmpfs -o mode=0755 tmpfs "$d"
done
mkdir -p /var/cache/libvirt; mount --bind "$2" /var/cache/libvirt
cp "$1/qemu.conf" /etc/libvirt/qemu.conf
exec libvirtd
`;

const liveDaemons = new Set<Libvirtd>();
process.once('exit', () => {
  for (const d of liveDaemons) d.killSync();
});
// On a signal, 'exit' never fires: kill daemons and their guests by PID, then re-raise so the process still dies of it.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    for (const d of liveDaemons) d.killSync();
    process.kill(process.pid, sig);
  });
}

/** A private libvirtd inside a network namespace. */
export class Libvirtd {
  /** libvirtd's PID. */
  readonly pid: number;
  /** Host directory for this daemon's config and the guests' console files; removed by {@link stop}. */
  readonly dir: string;
  /** The network namespace (name under /run/netns) it runs in: where `type='direct'` macvtaps get created. */
  readonly netns: string;
  private readonly child: ChildProcess;
  private exited = false;
  private readonly domains = new Set<string>();
  private readonly qemuPids = new Set<number>();

  private constructor(child: ChildProcess, dir: string, netns: string) {
    this.child = child;
    this.pid = child.pid!;
    this.dir = dir;
    this.netns = netns;
    child.once('exit', () => {
      this.exited = true;
      liveDaemons.delete(this);
    });
    liveDaemons.add(this);
  }

  /** The daemon's output so far (last 16 kB of `<dir>/libvirtd.log`). */
  get log(): string {
    try {
      return readFileSync(join(this.dir, 'libvirtd.log'), 'utf8').slice(-16000);
    } catch {
      return '(no log)';
    }
  }

  /** Starts libvirtd in network namespace `netns` and waits (at most `timeoutMs`) until `virsh` gets an answer. */
  static async start(netns: string, timeoutMs = 60_000): Promise<Libvirtd> {
    ensureLibvirtQemuUser();
    const dir = mkdtempSync(join(tmpdir(), 'mvt-libvirtd-'));
    writeFileSync(join(dir, 'qemu.conf'), QEMU_CONF);
    mkdirSync(capsCacheDir, { recursive: true });
    // Its output goes to a file, not a pipe: virsh runs synchronously, and a pipe nobody drains meanwhile would
    // block the daemon in write() once full.
    const logFd = openSync(join(dir, 'libvirtd.log'), 'a');
    const child = spawn('ip', ['netns', 'exec', netns, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', START_SCRIPT, 'sh', dir, capsCacheDir], {
      stdio: ['ignore', logFd, logFd],
    });
    closeSync(logFd);
    if (child.pid === undefined) throw new Error('cannot spawn libvirtd');
    const d = new Libvirtd(child, dir, netns);
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      await new Promise((r) => setTimeout(r, 250));
      if (d.exited) {
        const log = d.log;
        rmSync(dir, { recursive: true, force: true });
        throw new Error(`libvirtd exited during start-up:\n${log.slice(-4000)}`);
      }
      const r = d.virshRaw(['version'], 30_000);
      if (r.status === 0) return d;
      if (performance.now() > deadline) {
        const log = d.log;
        await d.stop();
        throw new Error(`libvirtd not answering after ${timeoutMs} ms: ${r.stderr || `virsh status ${r.status}`}\n${log.slice(-4000)}`);
      }
    }
  }

  private virshRaw(args: string[], timeout = 60_000): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync('nsenter', ['-t', String(this.pid), '-m', '-n', 'virsh', '-c', 'qemu:///system', ...args], { encoding: 'utf8', timeout });
    return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
  }

  /** `virsh -c qemu:///system ARGS…` against this daemon; stdout, or throws with stderr and the daemon's log tail. */
  virsh(...args: string[]): string {
    const r = this.virshRaw(args);
    if (r.status !== 0) throw new Error(`virsh ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}\n--- libvirtd log ---\n${this.log.slice(-3000)}`);
    return r.stdout;
  }

  /**
   * `virsh create` of a transient domain from `xml` (written to a file in {@link dir}). Remembers the domain and its
   * QEMU PID so {@link stop} can end both. Returns the QEMU PID.
   */
  createDomain(name: string, xml: string): number {
    const file = join(this.dir, `${name}.xml`);
    writeFileSync(file, xml);
    this.domains.add(name);
    this.virsh('create', file);
    const pid = this.domainPid(name);
    if (pid === null) throw new Error(`libvirt started ${name} but wrote no pid file`);
    this.qemuPids.add(pid);
    return pid;
  }

  /** The QEMU PID of a running domain, from libvirt's pid file inside the daemon's mount namespace; `null` if none. */
  domainPid(name: string): number | null {
    const f = `/proc/${this.pid}/root/run/libvirt/qemu/${name}.pid`;
    if (!existsSync(f)) return null;
    const pid = Number(readFileSync(f, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  }

  /** `virsh domstate NAME`, or `'gone'` once libvirt no longer knows the (transient) domain. */
  domainState(name: string): string {
    const r = this.virshRaw(['domstate', name]);
    return r.status === 0 ? r.stdout.trim() : 'gone';
  }

  /** `virsh destroy NAME` (hard stop), then waits (≤ 10 s) until libvirt has forgotten it. Idempotent. */
  async destroyDomain(name: string): Promise<void> {
    if (this.domainState(name) !== 'gone') this.virshRaw(['destroy', name]);
    for (let i = 0; i < 100 && this.domainState(name) !== 'gone'; i++) await new Promise((r) => setTimeout(r, 100));
    this.domains.delete(name);
  }

  /** Kills what is left synchronously, by PID (process exit path). */
  killSync(): void {
    for (const pid of [...this.qemuPids, this.pid]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * Destroys every domain created through this object, SIGKILLs any of their QEMU processes still alive, then stops
   * libvirtd by PID (SIGTERM, SIGKILL after 5 s) and removes {@link dir}. Idempotent; never throws.
   */
  async stop(): Promise<void> {
    if (!this.exited) for (const name of [...this.domains]) await this.destroyDomain(name).catch(() => undefined);
    for (const pid of this.qemuPids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Exited with its domain, as it should have.
      }
    }
    this.qemuPids.clear();
    if (!this.exited) {
      const done = new Promise((r) => this.child.once('exit', r));
      try {
        process.kill(this.pid, 'SIGTERM');
      } catch {
        // Gone.
      }
      const t = setTimeout(() => {
        try {
          process.kill(this.pid, 'SIGKILL');
        } catch {
          // Gone.
        }
      }, 5000);
      await done;
      clearTimeout(t);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Where a libvirt guest's serial console goes, and the follower for it. */
export interface GuestDomain {
  xml: string;
  serial: SerialLog;
}

/**
 * Turns a domain from `toDomainXml` into a bootable guest: direct kernel boot of {@link GuestImage} with the task's
 * command line, ACPI, every lifecycle event ending the domain (the guest ends with `reboot -f`), the serial console
 * to a file in `dir`, no memory balloon. The `<interface>` elements are left exactly as given.
 */
export function bootableDomain(domainXml: string, guest: GuestImage, task: GuestTask, dir: string): GuestDomain {
  const dom = readXml(domainXml);
  const child = (name: string): XmlElement | undefined => dom.children.find((n): n is XmlElement => 'name' in n && n.name === name);
  const nameText = child('name')?.children[0];
  const name = nameText && 'text' in nameText ? nameText.text : 'guest';
  const serialPath = join(dir, `${name}.console.log`);
  const os = child('os');
  if (!os) throw new Error('domain XML has no <os>');
  appendElement(os, 'kernel', {}, guest.kernel);
  appendElement(os, 'initrd', {}, guest.initrd);
  appendElement(os, 'cmdline', {}, kernelCmdline(task));
  appendElement(appendElement(dom, 'features'), 'acpi');
  for (const ev of ['on_poweroff', 'on_reboot', 'on_crash']) appendElement(dom, ev, {}, 'destroy');
  const devices = child('devices');
  if (!devices) throw new Error('domain XML has no <devices>');
  const serial = appendElement(devices, 'serial', { type: 'file' });
  appendElement(serial, 'source', { path: serialPath });
  appendElement(serial, 'target', { port: '0' });
  appendElement(devices, 'memballoon', { model: 'none' });
  return { xml: writeXml(dom), serial: new SerialLog(serialPath) };
}

/**
 * Advances namespace `netns`'s ifindex allocator (creating and deleting a throwaway veth pair, at most 200 times)
 * until the next index it hands out has no `/dev/tap<N>` node yet, and returns that index. libvirt opens
 * `/dev/tap<ifindex>` without checking whose device it is, so a macvtap libvirt creates or opens must not share its
 * ifindex with another namespace's macvtap (the cross-namespace hazard: README, "/dev/tapN across namespaces").
 */
export function freshTapIndex(netns: string): number {
  for (let i = 0; i < 200; i++) {
    execFileSync('ip', ['-n', netns, 'link', 'add', 'mvt-adv0', 'type', 'veth', 'peer', 'name', 'mvt-adv1']);
    const links = JSON.parse(execFileSync('ip', ['-n', netns, '-j', 'link', 'show'], { encoding: 'utf8' })) as Array<{ ifindex: number }>;
    execFileSync('ip', ['-n', netns, 'link', 'del', 'mvt-adv0']);
    // The allocator is cyclic: it continues after the highest index it handed out, not from the lowest free one.
    const next = Math.max(...links.map((l) => l.ifindex)) + 1;
    if (!existsSync(`/dev/tap${next}`)) return next;
  }
  throw new Error(`no ifindex without a /dev/tapN node found in ${netns} after 200 tries`);
}
