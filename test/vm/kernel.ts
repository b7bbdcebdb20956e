/**
 * The second kernel: Debian's generic `linux-image-<ver>-amd64`, fetched with `apt-get download` and unpacked with
 * `dpkg -x` into the ignored `.cache/debs/` (bench/testbed/debpkg.ts), its module tree indexed with `depmod -b` so
 * `modprobe` (and the kernel's own module autoloading: `8021q`, `dummy`, `openvswitch`, `macvtap`, `veth`) works in
 * the guest, and its bzImage unpacked to the plain `vmlinux` QEMU boots through the PVH entry — decompressing the
 * kernel inside the guest costs ≈6 s under TCG, extracting it once here costs ≈1 s and is cached.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { dependencyMatching, extractDeb } from '../../bench/testbed/debpkg.js';

/** `<repo>/.cache/vm`: extracted vmlinux and initramfs per kernel version (git-ignored). */
export const vmCacheDir = resolve(import.meta.dirname, '..', '..', '.cache', 'vm');

/** Debian's meta-package whose versioned dependency is the current generic 6.1 LTS kernel. */
export const defaultKernelMeta = 'linux-image-amd64';

/** A kernel ready to boot. */
export interface PreparedKernel {
  /** Debian package name, e.g. `linux-image-6.1.0-56-amd64`. */
  pkg: string;
  /** `uname -r` of the guest, e.g. `6.1.0-56-amd64`. */
  version: string;
  /** The uncompressed ELF kernel (PVH entry). */
  vmlinux: string;
  /** `<tree>/lib/modules/<version>`, depmod'ed: bind-mounted at `/usr/lib/modules/<version>` in the guest. */
  modules: string;
}

/**
 * The versioned kernel package to use: `pkg` when given (a `linux-image-*` name), else the one `linux-image-amd64`
 * depends on. Only the generic flavour: the cloud kernel has no 9p, and `-unsigned`/`-dbg` are other packages.
 */
export function kernelPackage(pkg?: string): string {
  if (pkg) return pkg;
  return dependencyMatching(defaultKernelMeta, /^linux-image-\d+\.\d+\.\d+-\d+-amd64$/);
}

/** Fetches (cached), unpacks, depmods and extracts `vmlinux`. Throws with the failing step in the message. */
export function prepareKernel(pkg: string): PreparedKernel {
  const tree = extractDeb(pkg);
  const modRoot = join(tree, 'lib', 'modules');
  const versions = existsSync(modRoot) ? readdirSync(modRoot) : [];
  if (versions.length !== 1) throw new Error(`${pkg}: expected one module tree under ${modRoot}, found ${versions.length}`);
  const version = versions[0]!;
  const modules = join(modRoot, version);
  // depmod writes modules.dep (and friends) into the tree itself; the tree is ours, in the cache.
  if (!existsSync(join(modules, 'modules.dep'))) {
    execFileSync('depmod', ['-b', tree, version], { stdio: ['ignore', 'ignore', 'pipe'] });
  }
  const dir = join(vmCacheDir, version);
  const vmlinux = join(dir, 'vmlinux');
  if (!existsSync(vmlinux)) {
    mkdirSync(dir, { recursive: true });
    const elf = extractVmlinux(readFileSync(join(tree, 'boot', `vmlinuz-${version}`)));
    const tmp = `${vmlinux}.tmp-${process.pid}`;
    writeFileSync(tmp, elf);
    renameSync(tmp, vmlinux);
  }
  return { pkg, version, vmlinux, modules };
}

/** Compressed payloads the x86 boot protocol allows, by their leading magic. */
const formats: { name: string; magic: number[]; decompress: (payload: Buffer) => Buffer }[] = [
  { name: 'gzip', magic: [0x1f, 0x8b], decompress: (p) => gunzipSync(p) },
  // The build appends the uncompressed size (4 bytes) after xz/zstd/lz4/lzma/bzip2 streams; tools that read one
  // stream stop before it, zstd/lz4 are given the stream without it.
  { name: 'xz', magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], decompress: (p) => tool('xz', ['-dc', '--single-stream'], p) },
  { name: 'zstd', magic: [0x28, 0xb5, 0x2f, 0xfd], decompress: (p) => tool('zstd', ['-dcq'], p.subarray(0, p.length - 4)) },
  { name: 'lz4', magic: [0x02, 0x21, 0x4c, 0x18], decompress: (p) => tool('lz4', ['-dcq'], p.subarray(0, p.length - 4)) },
  { name: 'lzma', magic: [0x5d, 0x00, 0x00], decompress: (p) => tool('xz', ['--format=lzma', '-dc', '--single-stream'], p) },
  { name: 'bzip2', magic: [0x42, 0x5a, 0x68], decompress: (p) => tool('bzip2', ['-dc'], p) },
];

/** Runs a (de)compressor on `input`, returns its stdout; the tool's stderr is the error message. */
export function tool(cmd: string, args: string[], input: Buffer): Buffer {
  try {
    return execFileSync(cmd, args, { input, maxBuffer: 1 << 30, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${err.stderr?.toString().trim() || err.message}`);
  }
}

/**
 * The ELF `vmlinux` inside a bzImage. The setup header (Documentation/arch/x86/boot.rst) says where the compressed
 * payload is: protected-mode code starts after `(setup_sects + 1) × 512` bytes (`setup_sects` 0 means 4), and
 * `payload_offset`/`payload_length` (boot protocol ≥ 2.08) locate the stream within it. The stream's format is told
 * by its magic, and the result must be an ELF file — anything else is an error, never a guess.
 */
export function extractVmlinux(bz: Buffer): Buffer {
  if (bz.length < 0x250 || bz.toString('latin1', 0x202, 0x206) !== 'HdrS') throw new Error('not a bzImage (no HdrS signature)');
  const protocol = bz.readUInt16LE(0x206);
  if (protocol < 0x208) throw new Error(`boot protocol ${protocol.toString(16)} has no payload_offset (need ≥ 2.08)`);
  const setupSects = bz[0x1f1] || 4;
  const start = (setupSects + 1) * 512 + bz.readUInt32LE(0x248);
  const payload = bz.subarray(start, start + bz.readUInt32LE(0x24c));
  const fmt = formats.find((f) => f.magic.every((b, i) => payload[i] === b));
  if (!fmt) throw new Error(`bzImage payload has an unknown format (starts ${payload.subarray(0, 6).toString('hex')})`);
  const elf = fmt.decompress(payload);
  if (elf.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${fmt.name} payload did not decompress to an ELF file`);
  return elf;
}

/**
 * The `.ko` files (paths relative to the module tree) to `insmod`, in an order that satisfies their dependencies:
 * each wanted module after everything `modules.dep` says it needs. Modules built into the kernel (absent from
 * `modules.dep`, present in `modules.builtin`) are left out; a module that is neither is an error.
 */
export function moduleLoadOrder(modules: string, wanted: string[]): string[] {
  const deps = new Map<string, string[]>();
  for (const line of readFileSync(join(modules, 'modules.dep'), 'utf8').split('\n')) {
    const [mod, rest] = line.split(':');
    if (mod && rest !== undefined) deps.set(mod, rest.trim().split(/\s+/).filter(Boolean));
  }
  const byName = new Map<string, string>();
  for (const path of deps.keys()) byName.set(moduleName(path), path);
  const builtin = new Set(readFileSync(join(modules, 'modules.builtin'), 'utf8').split('\n').filter(Boolean).map(moduleName));
  const order: string[] = [];
  const visit = (path: string): void => {
    if (order.includes(path)) return;
    for (const d of deps.get(path) ?? []) visit(d);
    order.push(path);
  };
  for (const name of wanted) {
    const path = byName.get(name);
    if (path) visit(path);
    else if (!builtin.has(name)) throw new Error(`kernel module ${name} is neither in modules.dep nor built in`);
  }
  return order;
}

/** `kernel/net/9p/9pnet_virtio.ko(.xz)` → `9pnet_virtio` (the kernel treats `-` and `_` alike). */
function moduleName(path: string): string {
  return (path.split('/').pop() ?? path).replace(/\.ko(\.\w+)?$/, '').replace(/-/g, '_');
}
