/**
 * Debian packages fetched for guests and test kernels — kernels, busybox — with `apt-get download` and unpacked with
 * `dpkg -x`, never installed. Cached under `.cache/debs/` of the harness package (bench/ in a clone; git-ignored) by
 * exact package version, so a second run is offline and instant. Nothing fetched is committed.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from 'macvtap/internal';
import { run } from './command.js';

/** `.cache` of the harness package: the same cache whether this runs from the sources or from dist/. */
export const cacheDir = join(packageRoot(import.meta.url, 'macvtap-bench'), '.cache');

/** `.cache/debs` of the harness package. */
export const debCacheDir = join(cacheDir, 'debs');

const sh = (cmd: string, args: string[], cwd?: string): string => run(cmd, args, { cwd, timeoutMs: 300_000 });

let updated = false;
/** The candidate version apt would fetch; runs `apt-get update` once if apt knows no candidate yet. */
export function candidateVersion(pkg: string): string {
  const read = (): string | undefined => /Candidate:\s*(\S+)/.exec(sh('apt-cache', ['policy', pkg]))?.[1];
  let v = read();
  if ((!v || v === '(none)') && !updated) {
    sh('apt-get', ['update', '-qq']);
    updated = true;
    v = read();
  }
  if (!v || v === '(none)') throw new Error(`apt has no candidate for ${pkg} (is it in the configured Debian suites?)`);
  return v;
}

/**
 * The first package a meta-package depends on whose name matches `pattern` — e.g. the versioned kernel
 * `linux-image-6.1.0-NN-cloud-amd64` behind `linux-image-cloud-amd64`.
 */
export function dependencyMatching(meta: string, pattern: RegExp): string {
  candidateVersion(meta);
  const deps = sh('apt-cache', ['depends', meta]).split('\n').map((l) => /Depends:\s*(\S+)/.exec(l)?.[1]).filter((d): d is string => !!d);
  const hit = deps.find((d) => pattern.test(d));
  if (!hit) throw new Error(`${meta} depends on nothing matching ${pattern} (depends: ${deps.join(', ')})`);
  return hit;
}

/** Path of the package's `.deb` in the cache, downloading it (candidate version) when missing. */
export function fetchDeb(pkg: string): string {
  const version = candidateVersion(pkg);
  mkdirSync(debCacheDir, { recursive: true });
  // apt-get download names files PKG_VERSION_ARCH.deb with ':' in the version escaped as %3a.
  const prefix = `${pkg}_${version.replace(/:/g, '%3a')}_`;
  const have = readdirSync(debCacheDir).find((f) => f.startsWith(prefix) && f.endsWith('.deb'));
  if (have) return join(debCacheDir, have);
  const tmp = join(debCacheDir, `.download-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    sh('apt-get', ['download', '-qq', `${pkg}=${version}`], tmp);
    const got = readdirSync(tmp).find((f) => f.endsWith('.deb'));
    if (!got) throw new Error(`apt-get download ${pkg} produced no .deb`);
    renameSync(join(tmp, got), join(debCacheDir, got));
    return join(debCacheDir, got);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * The package unpacked (`dpkg -x`) into `<cache>/<pkg>_<version>/`, downloading first if needed. The directory is
 * complete or absent: unpacking goes to a temporary name that is renamed at the end.
 */
export function extractDeb(pkg: string): string {
  const deb = fetchDeb(pkg);
  const dir = deb.replace(/\.deb$/, '');
  if (existsSync(dir)) return dir;
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  sh('dpkg', ['-x', deb, tmp]);
  renameSync(tmp, dir);
  return dir;
}
