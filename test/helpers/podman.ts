/**
 * Debian 12's podman 4.3.1 running CNI plugins with no image and nothing of the machine's own configuration: a
 * private `containers.conf`/`storage.conf` (cni backend, private plugin and config dirs, cgroups disabled, file
 * events, fixed ulimits), a `busybox-static` root for `--rootfs`, and each podman command run in a private mount
 * namespace (the hybrid cgroup2 mount at /sys/fs/cgroup/unified unmounted: crun refuses hybrid mode) under
 * `nsenter --net` into a test namespace that plays the host. What podman leaves on the machine itself (its
 * `/run/netns/netns-*` files, libcni's cache under /var/lib/cni) is removed by {@link PodmanSandbox.destroy}.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmdirSync, rmSync, symlinkSync, copyFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BUSYBOX = '/bin/busybox';
const CNI_CACHE = '/var/lib/cni';
/** crun's default state root, made on its first run (empty again once its containers are gone). */
const CRUN_STATE = '/run/crun';

/** Why podman cannot run here, or `null`. */
export function podmanMissing(): string | null {
  for (const [file, pkg] of [['/usr/bin/podman', 'podman'], ['/usr/bin/crun', 'crun'], ['/usr/bin/conmon', 'conmon'], [BUSYBOX, 'busybox-static'], ['/usr/lib/cni/tuning', 'containernetworking-plugins']]) {
    if (!existsSync(file as string)) return `${file} is missing (apt-get install ${pkg})`;
  }
  const r = spawnSync(BUSYBOX, ['--list'], { encoding: 'utf8' });
  if (r.status !== 0 || !r.stdout.split('\n').includes('ping')) return `${BUSYBOX} has no ping applet (it must be busybox-static)`;
  return null;
}

/** One podman command's outcome. */
export interface PodmanRun { status: number | null; stdout: string; stderr: string }

/** A private podman setup in a temporary directory. */
export class PodmanSandbox {
  readonly dir: string;
  readonly rootfs: string;
  readonly pluginDir: string;
  readonly configDir: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly netnsBefore: Set<string>;
  private readonly cacheExisted: boolean;
  private readonly crunExisted: boolean;
  private readonly networks: string[] = [];

  /** `plugins`: name → executable, the only plugins podman will see. */
  constructor(plugins: Record<string, string>) {
    this.netnsBefore = new Set(existsSync('/run/netns') ? readdirSync('/run/netns') : []);
    this.cacheExisted = existsSync(CNI_CACHE);
    this.crunExisted = existsSync(CRUN_STATE);
    this.dir = mkdtempSync(join(tmpdir(), 'mvt-podman-'));
    this.rootfs = join(this.dir, 'rootfs');
    this.pluginDir = join(this.dir, 'plugins');
    this.configDir = join(this.dir, 'net.d');
    for (const d of ['rootfs/bin', 'rootfs/proc', 'rootfs/sys', 'rootfs/dev', 'rootfs/etc', 'rootfs/tmp', 'plugins', 'net.d', 'storage', 'run', 'tmp']) {
      mkdirSync(join(this.dir, d), { recursive: true });
    }
    copyFileSync(BUSYBOX, join(this.rootfs, 'bin/busybox'));
    // Relative links: `busybox --install -s` would write this machine's absolute path into them.
    const applets = spawnSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter((a) => a !== '' && a !== 'busybox');
    for (const a of applets) symlinkSync('busybox', join(this.rootfs, 'bin', a));
    for (const [name, file] of Object.entries(plugins)) symlinkSync(file, join(this.pluginDir, name));
    writeFileSync(join(this.dir, 'containers.conf'), [
      '[containers]', 'cgroups="disabled"', 'default_ulimits=["nofile=4096:4096","nproc=4096:4096"]',
      '[engine]', 'cgroup_manager="cgroupfs"', 'events_logger="file"', `events_logfile_path="${this.dir}/events.log"`, `tmp_dir="${this.dir}/tmp"`,
      '[network]', 'network_backend="cni"', `cni_plugin_dirs=["${this.pluginDir}"]`, `network_config_dir="${this.configDir}"`, '',
    ].join('\n'));
    writeFileSync(join(this.dir, 'storage.conf'), ['[storage]', 'driver="vfs"', `graphroot="${this.dir}/storage"`, `runroot="${this.dir}/run"`, ''].join('\n'));
    this.env = { ...process.env, CONTAINERS_CONF: join(this.dir, 'containers.conf'), CONTAINERS_STORAGE_CONF: join(this.dir, 'storage.conf') };
  }

  /** Writes a conflist for network `name`. */
  network(name: string, plugins: Array<Record<string, unknown>>): void {
    this.networks.push(name);
    writeFileSync(join(this.configDir, `${name}.conflist`), JSON.stringify({ cniVersion: '1.0.0', name, plugins }));
  }

  /** `podman ARGS…` with `hostNs` (a /run/netns path) as its host namespace. Bounded: 120 s. */
  podman(hostNs: string, args: string[]): PodmanRun {
    const quoted = args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const script = `umount /sys/fs/cgroup/unified 2>/dev/null; exec nsenter --net=${hostNs} podman ${quoted}`;
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { env: this.env, encoding: 'utf8', timeout: 120_000, killSignal: 'SIGKILL' });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** `/run/netns` entries podman made since this sandbox was set up (its `netns-<uuid>` files). */
  newNetns(): string[] {
    return (existsSync('/run/netns') ? readdirSync('/run/netns') : []).filter((n) => n.startsWith('netns-') && !this.netnsBefore.has(n));
  }

  /** libcni's cached results of this sandbox's networks. */
  cachedResults(): string[] {
    const dir = join(CNI_CACHE, 'results');
    return existsSync(dir) ? readdirSync(dir).filter((f) => this.networks.some((n) => f.startsWith(`${n}-`))) : [];
  }

  /** Removes containers, podman's namespaces, libcni's cache entries of our networks, the (empty) directories libcni and crun
   * made on this machine when they were not there before, and the sandbox's directory. */
  destroy(hostNs: string): void {
    if (existsSync(this.dir)) this.podman(hostNs, ['rm', '--all', '--force']);
    for (const n of this.newNetns()) {
      spawnSync('umount', [`/run/netns/${n}`], { stdio: 'ignore' });
      rmSync(`/run/netns/${n}`, { force: true });
    }
    for (const f of this.cachedResults()) rmSync(join(CNI_CACHE, 'results', f), { force: true });
    const made = [...(this.cacheExisted ? [] : [join(CNI_CACHE, 'results'), CNI_CACHE]), ...(this.crunExisted ? [] : [CRUN_STATE])];
    {
      for (const d of made) {
        try {
          rmdirSync(d);
        } catch {
          // not empty (someone else's entries) or already gone
        }
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
