/**
 * The "TCG guest" measurement (bench/guest/run.ts) end to end, at its smallest: one boot per path, five pings each way.
 * Checks the data is complete and consistent (not its values, which are TCG timings), and that nothing is left behind.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect, it } from 'vitest';
import { measureTcgGuest } from '../bench/guest/run.js';
import { TCG_GUEST_LABEL, type GuestPath } from '../bench/guest/schema.js';
import { parseDatapathArgs } from '../bench/datapath/index.js';
import { DatapathReportSchema } from '../bench/datapath/schema.js';
import { benchNamespaces } from './helpers/benchchild.js';
import { describeNeeding } from './helpers/suite.js';
import { qemuUnavailable } from '../bench/testbed/qemu.js';

const missing = qemuUnavailable();
const root = resolve(import.meta.dirname, '..');

/** The testbed namespaces this process holds (the guest benchmark's are `mvt-bench-<pid>-<n>`). */
const ourNamespaces = (): string[] => benchNamespaces(process.pid);

describeNeeding('bench/guest: boot-to-first-ping and RTT, macvtap vs tap+bridge, labelled TCG guest', missing, () => {
  it('measures both paths, alternating, and returns plain data', async () => {
    const seen: GuestPath[] = [];
    const r = await measureTcgGuest({ boots: 1, pings: 5, onBoot: (p) => seen.push(p) });
    expect(seen).toEqual(['macvtap', 'tap+bridge']);
    expect(r.label).toBe(TCG_GUEST_LABEL);
    expect(r.label).toBe('TCG guest');
    expect(r.guest.accel).toBe('tcg');
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
    expect(r.paths.map((p) => p.path)).toEqual(['macvtap', 'tap+bridge']);
    for (const p of r.paths) {
      expect(p.boots).toHaveLength(1);
      const b = p.boots[0]!;
      // Boot-to-first-ping covers QEMU start, kernel boot and the first reply: the guest's uptime is part of it.
      expect(b.bootToFirstPingMs).toBeGreaterThan(b.guestUptimeAtFirstPingS * 1000);
      expect(b.bootToFirstPingMs).toBeLessThan(90_000);
      expect(b.guestPing).toMatchObject({ sent: 5, received: 5 });
      expect(b.guestPing.minMs).not.toBeNull();
      expect(b.guestPing.minMs!).toBeLessThanOrEqual(b.guestPing.maxMs!);
      expect(b.peerSent).toBe(5);
      expect(b.peerRttMs).toHaveLength(5);
      for (const t of b.peerRttMs) expect(t).toBeGreaterThan(0);
      expect(p.summary.lost).toBe(0);
      expect(p.summary.bootToFirstPingMsMedian).toBe(b.bootToFirstPingMs);
      expect(p.summary.peerRttMsP50).toBeLessThanOrEqual(p.summary.peerRttMsP90);
    }
    expect(ourNamespaces()).toEqual([]);
  }, 240_000);

  it('refuses bad options before booting anything', async () => {
    await expect(measureTcgGuest({ boots: 0 })).rejects.toThrow(RangeError);
    await expect(measureTcgGuest({ pings: 1.5 })).rejects.toThrow(/integers/);
  });
});

describeNeeding('macvtap bench embeds the TCG guest row (a row of the benchmark report, labelled)', missing, () => {
  it('--guest: the datapath report carries the row in its text, its JSON (schema-valid) and its HTML', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mvt-bguest-report-'));
    try {
      const json = join(dir, 'r.json');
      const html = join(dir, 'r.html');
      const r = spawnSync(process.execPath, [
        join(root, 'dist/cli/macvtap.js'), 'bench', '--quick', '--guest', '--guest-boots', '1', '--no-security',
        '--topologies', 'macvtap-bridge', '--tests', 'rtt-64', '--placement', 'same-cpu', '--poll', 'block', '--quiet',
        '--json', json, '--html', html,
      ], { encoding: 'utf8', timeout: 300_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/TCG guest — a real guest under QEMU TCG[\s\S]*TCG guest: macvtap\s+1[\s\S]*TCG guest: tap\+bridge\s+1/);
      const report = DatapathReportSchema.parse(JSON.parse(readFileSync(json, 'utf8')));
      expect(report.tcgGuest?.label).toBe(TCG_GUEST_LABEL);
      expect(report.tcgGuest?.paths.map((p) => [p.path, p.boots.length])).toEqual([['macvtap', 1], ['tap+bridge', 1]]);
      expect(readFileSync(html, 'utf8')).toContain('TCG guest (QEMU software emulation, not KVM)');
      // --quick alone leaves it out (the VM's --quick run would emulate a guest inside an emulator).
      const q = parseDatapathArgs(['--quick']);
      expect(q.guest).toBe(false);
      expect(parseDatapathArgs([]).guest).toBe(true);
      expect(() => parseDatapathArgs(['--guest', '--no-guest'])).toThrow(/exclude/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 320_000);
});
