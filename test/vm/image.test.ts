/**
 * The second-kernel runner's own parts, on the host and without booting anything: its command line, the cpio
 * archive the kernel unpacks, the bzImage payload lookup, and the module load order. Booting is checked by running
 * the runner itself (`node test/vm/run.mjs …`), which the CI does.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { cpioNewc } from './initramfs.js';
import { extractVmlinux, moduleLoadOrder } from './kernel.js';
import { parseArgs } from './runner.js';

/** Reads a newc archive back: name, mode, rdev and data of each member, checking magic and 4-byte alignment. */
function readNewc(buf: Buffer): Array<{ name: string; mode: number; rdev: [number, number]; data: Buffer }> {
  const out: Array<{ name: string; mode: number; rdev: [number, number]; data: Buffer }> = [];
  let off = 0;
  for (;;) {
    expect(off % 4).toBe(0);
    expect(buf.toString('latin1', off, off + 6)).toBe('070701');
    const field = (i: number): number => parseInt(buf.toString('latin1', off + 6 + i * 8, off + 14 + i * 8), 16);
    const [mode, size, rmaj, rmin, namesize] = [field(1), field(6), field(9), field(10), field(11)];
    const name = buf.toString('latin1', off + 110, off + 110 + namesize - 1);
    expect(buf[off + 110 + namesize - 1]).toBe(0);
    const dataAt = Math.ceil((off + 110 + namesize) / 4) * 4;
    if (name === 'TRAILER!!!') {
      expect(buf.length).toBe(dataAt);
      return out;
    }
    out.push({ name, mode, rdev: [rmaj, rmin], data: buf.subarray(dataAt, dataAt + size) });
    off = Math.ceil((dataAt + size) / 4) * 4;
  }
}

describe('vm runner: command line', () => {
  it('defaults, own options, vitest arguments and --cmd', () => {
    expect(parseArgs([])).toEqual({ timeout: 1500, env: [], memoryMiB: 2048, cpus: 2, vitestArgs: [] });
    const o = parseArgs(['--timeout', '60', '--env', 'A=b c', 'test/links.test.ts', '--reporter=json', '--', '--timeout', '5']);
    expect(o).toMatchObject({ timeout: 60, env: ['A=b c'], vitestArgs: ['test/links.test.ts', '--reporter=json', '--timeout', '5'] });
    expect(parseArgs(['--cmd', 'node x.js', '--smp', '1', '--memory', '1024'])).toMatchObject({ cmd: 'node x.js', cpus: 1, memoryMiB: 1024 });
  });

  it('refuses what it cannot run', () => {
    expect(() => parseArgs(['--timeout', '0'])).toThrow(/--timeout needs an integer ≥ 1, got 0/);
    expect(() => parseArgs(['--timeout'])).toThrow(/--timeout needs a value/);
    expect(() => parseArgs(['--env', 'no-equals'])).toThrow(/--env needs KEY=VALUE/);
    expect(() => parseArgs(['--memory', '100'])).toThrow(/--memory needs an integer ≥ 512/);
    expect(() => parseArgs(['--cmd', 'true', 'test/a.test.ts'])).toThrow(/exclude each other/);
  });
});

describe('vm runner: initramfs archive', () => {
  it('writes newc members the kernel can unpack: dirs, files with modes, a char device, the trailer', () => {
    const init = Buffer.from('#!/bin/busybox sh\necho hi\n');
    const odd = Buffer.from('12345'); // not a multiple of 4: the next header must still be aligned
    const buf = cpioNewc([
      { type: 'dir', name: 'bin' },
      { type: 'file', name: 'init', data: init, mode: 0o755 },
      { type: 'file', name: 'bin/odd', data: odd },
      { type: 'char', name: 'dev/console', major: 5, minor: 1 },
    ]);
    const members = readNewc(buf);
    expect(members.map((m) => m.name)).toEqual(['bin', 'init', 'bin/odd', 'dev/console']);
    expect(members[0]!.mode).toBe(0o040755);
    expect(members[1]).toMatchObject({ mode: 0o100755 });
    expect(members[1]!.data.equals(init)).toBe(true);
    expect(members[2]!.data.equals(odd)).toBe(true);
    expect(members[3]).toMatchObject({ mode: 0o020600, rdev: [5, 1] });
  });
});

describe('vm runner: bzImage payload', () => {
  /** A minimal bzImage: setup header with HdrS, protocol 2.15, setup_sects, payload_offset/length, then the payload. */
  function bzImage(payload: Buffer, setupSects: number, declared = setupSects): Buffer {
    const pmStart = (setupSects + 1) * 512;
    const payloadOffset = 64;
    const bz = Buffer.alloc(pmStart + payloadOffset + payload.length + 16);
    bz[0x1f1] = declared;
    bz.write('HdrS', 0x202, 'latin1');
    bz.writeUInt16LE(0x020f, 0x206);
    bz.writeUInt32LE(payloadOffset, 0x248);
    bz.writeUInt32LE(payload.length, 0x24c);
    payload.copy(bz, pmStart + payloadOffset);
    return bz;
  }
  const elf = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]), Buffer.alloc(200, 7)]);

  it('finds the payload through the setup header and decompresses it to the ELF kernel', () => {
    expect(extractVmlinux(bzImage(gzipSync(elf), 30)).equals(elf)).toBe(true);
    // xz, as Debian builds it: the stream followed by the 4-byte uncompressed size.
    const size = Buffer.alloc(4);
    size.writeUInt32LE(elf.length);
    const xz = Buffer.concat([execFileSync('xz', ['--check=crc32', '-c'], { input: elf }), size]);
    expect(extractVmlinux(bzImage(xz, 30)).equals(elf)).toBe(true);
    // setup_sects 0 means 4 (boot protocol).
    expect(extractVmlinux(bzImage(gzipSync(elf), 4, 0)).equals(elf)).toBe(true);
  });

  it('refuses what is not a bzImage, an unknown payload, or a payload that is no ELF', () => {
    expect(() => extractVmlinux(Buffer.alloc(4096))).toThrow(/not a bzImage/);
    expect(() => extractVmlinux(bzImage(Buffer.from('plain text payload'), 4))).toThrow(/unknown format/);
    expect(() => extractVmlinux(bzImage(gzipSync(Buffer.from('not an elf')), 4))).toThrow(/did not decompress to an ELF/);
  });
});

describe('vm runner: module load order', () => {
  it('puts every module after what modules.dep says it needs, skips built-ins, refuses unknown ones', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mvt-moddep-'));
    try {
      writeFileSync(
        join(dir, 'modules.dep'),
        [
          'kernel/fs/9p/9p.ko: kernel/fs/netfs/netfs.ko kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko',
          'kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko',
          'kernel/fs/netfs/netfs.ko:',
          'kernel/net/9p/9pnet.ko:',
          'kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko',
          'kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko',
          'kernel/drivers/virtio/virtio_ring.ko:',
          'kernel/fs/overlayfs/overlay.ko.xz:',
          '',
        ].join('\n'),
      );
      writeFileSync(join(dir, 'modules.builtin'), 'kernel/drivers/virtio/virtio_pci.ko\n');
      const order = moduleLoadOrder(dir, ['9pnet_virtio', 'virtio_pci', '9p', 'overlay']);
      const at = (m: string): number => order.findIndex((p) => p.endsWith(`/${m}.ko`) || p.endsWith(`/${m}.ko.xz`));
      expect(order).toHaveLength(8);
      expect(new Set(order).size).toBe(order.length);
      expect(at('virtio_ring')).toBeLessThan(at('virtio'));
      expect(at('virtio')).toBeLessThan(at('9pnet_virtio'));
      expect(at('9pnet')).toBeLessThan(at('9pnet_virtio'));
      expect(at('netfs')).toBeLessThan(at('fscache'));
      expect(at('fscache')).toBeLessThan(at('9p'));
      expect(at('overlay')).toBeGreaterThanOrEqual(0);
      expect(() => moduleLoadOrder(dir, ['no_such_module'])).toThrow(/neither in modules.dep nor built in/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
