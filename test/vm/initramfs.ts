/**
 * The guest's initramfs: busybox-static, the handful of kernel modules needed to reach the host's root over
 * virtio-9p (virtio PCI, virtio console, 9p, overlay — all modules in Debian's generic kernel), and `init.sh` as
 * `/init`. Written as a `newc` cpio archive directly (no `cpio` tool needed), uncompressed (the kernel unpacks it in
 * milliseconds; compressing it would only cost TCG time), and cached per kernel version and content.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { extractDeb } from '../../bench/testbed/debpkg.js';
import { type PreparedKernel, moduleLoadOrder, tool, vmCacheDir } from './kernel.js';

/** What `init.sh` needs loaded before it can mount anything: virtio PCI transport, hvc0, 9p, overlay. */
export const initramfsModules = ['virtio_pci', 'virtio_console', '9pnet_virtio', '9p', 'overlay'];

/** One member of a cpio archive. */
export type CpioEntry =
  | { type: 'dir'; name: string; mode?: number }
  | { type: 'file'; name: string; data: Buffer; mode?: number }
  | { type: 'char'; name: string; major: number; minor: number; mode?: number };

/**
 * A `newc` ("070701") cpio archive, the format the kernel's initramfs unpacker reads: a 110-byte ASCII header of
 * thirteen 8-digit hex fields, the NUL-terminated name padded to 4 bytes, the data padded to 4 bytes, and a
 * `TRAILER!!!` entry at the end. Owners are root, mtimes 0 (the archive is reproducible).
 */
export function cpioNewc(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  const push = (b: Buffer): void => {
    parts.push(b);
    size += b.length;
  };
  const pad = (): void => {
    if (size % 4) push(Buffer.alloc(4 - (size % 4)));
  };
  let ino = 1;
  const member = (name: string, mode: number, data: Buffer, rdev: [number, number] = [0, 0]): void => {
    const nameBytes = Buffer.from(`${name}\0`);
    const fields = [ino++, mode, 0, 0, 1, 0, data.length, 0, 0, rdev[0], rdev[1], nameBytes.length, 0];
    push(Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}`, 'latin1'));
    push(nameBytes);
    pad();
    push(data);
    pad();
  };
  for (const e of entries) {
    if (e.type === 'dir') member(e.name, 0o040000 | (e.mode ?? 0o755), Buffer.alloc(0));
    else if (e.type === 'file') member(e.name, 0o100000 | (e.mode ?? 0o644), e.data);
    else member(e.name, 0o020000 | (e.mode ?? 0o600), Buffer.alloc(0), [e.major, e.minor]);
  }
  member('TRAILER!!!', 0, Buffer.alloc(0));
  return Buffer.concat(parts, size);
}

/** Path of the initramfs for `kernel`, built when missing or when its inputs (init script, modules, busybox) changed. */
export function buildInitramfs(kernel: PreparedKernel): string {
  const busybox = join(extractDeb('busybox-static'), 'bin', 'busybox');
  const init = readFileSync(join(import.meta.dirname, 'init.sh'));
  const mods = moduleLoadOrder(kernel.modules, initramfsModules);
  const key = createHash('sha256').update(init).update(busybox).update(mods.join('\n')).digest('hex').slice(0, 16);
  const dir = join(vmCacheDir, kernel.version);
  const out = join(dir, `initramfs-${key}.cpio`);
  if (existsSync(out)) return out;

  const entries: CpioEntry[] = ['bin', 'sbin', 'usr', 'usr/bin', 'usr/sbin', 'dev', 'proc', 'sys', 'mnt', 'modules'].map(
    (name) => ({ type: 'dir', name }),
  );
  // The kernel opens /dev/console for init's stdio before init runs; devtmpfs is not mounted yet at that point.
  entries.push({ type: 'char', name: 'dev/console', major: 5, minor: 1 });
  entries.push({ type: 'file', name: 'bin/busybox', data: readFileSync(busybox), mode: 0o755 });
  entries.push({ type: 'file', name: 'init', data: init, mode: 0o755 });
  // Numbered names keep the dependency order in a plain glob.
  mods.forEach((rel, i) => {
    const raw = readFileSync(join(kernel.modules, rel));
    // busybox insmod takes plain ELF objects; newer Debian kernels ship their modules xz- or zstd-compressed.
    const data = rel.endsWith('.xz') ? tool('xz', ['-dc'], raw) : rel.endsWith('.zst') ? tool('zstd', ['-dcq'], raw) : raw;
    const base = (rel.split('/').pop() ?? rel).replace(/\.ko\.\w+$/, '.ko');
    entries.push({ type: 'file', name: `modules/${String(i).padStart(2, '0')}-${base}`, data });
  });
  mkdirSync(dir, { recursive: true });
  // Images built from older inputs are never used again.
  for (const f of readdirSync(dir)) if (/^initramfs-[0-9a-f]+\.cpio$/.test(f)) rmSync(join(dir, f));
  const tmp = `${out}.tmp-${process.pid}`;
  writeFileSync(tmp, cpioNewc(entries));
  renameSync(tmp, out);
  return out;
}
