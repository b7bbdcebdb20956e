/**
 * The anti-spoofing probe (`macvtap bench security`), run for real: the matrix matches what the kernel's drivers do
 * (drivers/net/macvlan.c delivers by destination MAC only and never checks a source; the Linux bridge and OVS NORMAL
 * learn source MACs and flood unknown unicast), one cell of each kind is cross-checked with tcpdump inside the
 * testbed's namespaces, the CLI prints the matrix and writes JSON that validates against its schema and an HTML page,
 * and nothing (namespaces, OVS daemons, run directories) is left afterwards — also after SIGINT mid-run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { detectOvs } from '../bench/testbed/ovs.js';
import type { AttachmentId, Topology } from '../bench/testbed/topology.js';
import { SILENT } from '../bench/report/progress.js';
import { FORGED, runSecurityProbe, SECURITY_DEFAULTS } from '../bench/security/run.js';
import { CASES, SecurityMatrixSchema, SecurityReportSchema, type AttachmentRow, type CaseId, type Cell, type SecurityMatrix } from '../bench/security/schema.js';
import { benchNamespaces, ovsDaemons, ovsDirs, reapBenchChildren, startBench } from './helpers/benchchild.js';
import { cleanupStack, describeNeeding, describePrivileged } from './helpers/suite.js';

const ovs = detectOvs();
const tcpdumpMissing = spawnSync('tcpdump', ['--version'], { stdio: 'ignore' }).status === 0 ? null : 'tcpdump not installed (apt-get install tcpdump)';
const defer = cleanupStack();

/** tcpdump children, killed by pid after each test. */
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  reapBenchChildren();
});

function cell(row: AttachmentRow | undefined, id: CaseId): Cell {
  const c = row?.cases.find((x) => x.case === id);
  if (!c) throw new Error(`no ${id} in ${row?.label}`);
  return c.cell;
}

/** tcpdump inside a namespace, printing link-level headers, until stopped; resolves its output. */
async function tcpdump(netns: string, dev: string, filter: string[]): Promise<{ stop: () => Promise<string> }> {
  const child = spawn('ip', ['netns', 'exec', netns, 'tcpdump', '-i', dev, '-n', '-e', '-l', '-p', ...filter], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  // Bounded wait for "listening on DEV": only then is the capture armed.
  const until = Date.now() + 10_000;
  while (!err.includes('listening on') && child.exitCode === null && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  if (!err.includes('listening on')) throw new Error(`tcpdump in ${netns} did not start: ${err}`);
  return {
    async stop() {
      child.kill('SIGINT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      return out;
    },
  };
}

describePrivileged('bench security: the probe against the kernel drivers', () => {
  let matrix: SecurityMatrix;

  it('runs every attachment and the matrix says what macvlan, the bridge and OVS NORMAL do', async () => {
    matrix = await runSecurityProbe(SECURITY_DEFAULTS, SILENT);
    expect(SecurityMatrixSchema.safeParse(matrix).success).toBe(true);
    const row = (a: string): AttachmentRow | undefined => matrix.rows.find((r) => r.attachment === a);
    for (const a of ['macvtap-bridge', 'macvtap-vepa', 'macvtap-private'] as const) {
      const r = row(a);
      // macvlan_queue_xmit never looks at the source MAC: forged and stolen sources leave; their replies are for MACs
      // no macvtap on the port has (or B's), so macvlan_handle_frame's lookup by destination never hands them to A.
      expect(cell(r, 'forged-mac'), a).toBe('delivered');
      expect(cell(r, 'stolen-mac'), a).toBe('delivered');
      // Nothing checks IPs at layer 2.
      expect(cell(r, 'forged-ip'), a).toBe('reply back');
      // Frames for other MACs never reach A, promiscuous or not (lookup by destination; no passthru).
      for (const c of ['snoop-guest', 'snoop-unknown', 'promisc-guest', 'promisc-unknown'] as const) expect(cell(r, c), `${a} ${c}`).toBe('dropped');
      // Unicast to B: locally (bridge) or through the hairpinning switch (vepa, and private: its filter is for
      // multicast only, by source MAC in macvlan_handle_frame's broadcast path).
      expect(cell(r, 'to-guest'), a).toBe('reply back');
    }
    expect(cell(row('macvtap-bridge'), 'guest-bcast')).toBe('delivered');
    expect(cell(row('macvtap-vepa'), 'guest-bcast')).toBe('delivered');
    expect(cell(row('macvtap-private'), 'guest-bcast')).toBe('dropped');
    // Learning switches: a forged or stolen source MAC is learned on A's port, so the replies come to A; unknown
    // unicast is flooded to every port, A's too; a known guest's unicast is not.
    const switches = ovs.available ? ['tap+linuxbridge', 'tap+ovs'] : ['tap+linuxbridge'];
    for (const a of switches) {
      const r = row(a);
      for (const c of ['forged-mac', 'forged-ip', 'stolen-mac', 'to-guest'] as const) expect(cell(r, c), `${a} ${c}`).toBe('reply back');
      expect(cell(r, 'guest-bcast'), a).toBe('delivered');
      expect(cell(r, 'snoop-unknown'), a).toBe('delivered');
      expect(cell(r, 'promisc-unknown'), a).toBe('delivered');
      expect(cell(r, 'snoop-guest'), a).toBe('dropped');
      expect(cell(r, 'promisc-guest'), a).toBe('dropped');
    }
    if (!ovs.available) expect(row('tap+ovs')!.unavailable).toMatch(/Open vSwitch/);
    else expect(row('tap+ovs')!.label).toBe(`ovs-${ovs.datapath}`);
    // Every case ran once per attachment, in the matrix's column order.
    for (const r of matrix.rows.filter((x) => !x.unavailable)) expect(r.cases.map((c) => c.case)).toEqual([...CASES]);
    expect(benchNamespaces(process.pid)).toEqual([]);
    expect(ovsDaemons(process.pid)).toEqual([]);
    expect(ovsDirs(process.pid)).toEqual([]);
  }, 120_000);
});

describeNeeding('bench security: cells cross-checked with tcpdump', tcpdumpMissing, () => {
  it("macvtap-bridge: the forged source MAC is on the peer's wire; macvtap-private: B's device gets A's unicast", async () => {
    const dumps: { what: string; dump: { stop: () => Promise<string> } }[] = [];
    defer(async () => {
      for (const d of dumps) await d.dump.stop();
    });
    let a = '';
    let b = '';
    const matrix = await runSecurityProbe({ ...SECURITY_DEFAULTS, attachments: ['macvtap-bridge', 'macvtap-private'] }, SILENT, {
      async onBuilt(t: Topology<AttachmentId>) {
        if (t.id === 'macvtap-bridge') {
          dumps.push({ what: 'bridge', dump: await tcpdump(t.peerNs.name, t.peerWire, ['ether', 'src', FORGED.mac]) });
        } else {
          a = t.guest.kind === 'tap' ? t.guest.mac : '';
          b = t.guest2?.kind === 'tap' ? t.guest2.mac : '';
          dumps.push({ what: 'private', dump: await tcpdump(t.guestNs.name, t.guestDevices[1]!, ['ether', 'src', a, 'and', 'ether', 'dst', b]) });
        }
      },
      async onProbed(t) {
        // Stop while the namespace still exists (the testbed is torn down right after this hook).
        const d = dumps.find((x) => x.what === (t.id === 'macvtap-bridge' ? 'bridge' : 'private'))!;
        const out = await d.dump.stop();
        if (t.id === 'macvtap-bridge') {
          // tcpdump -e prints "SRC > DST": the forged MAC as source, the peer's MAC as destination.
          const lines = out.split('\n').filter((l) => l.includes(`${FORGED.mac} > ${t.peer.mac}`));
          expect(lines.length, out).toBeGreaterThanOrEqual(SECURITY_DEFAULTS.attempts);
        } else {
          const lines = out.split('\n').filter((l) => l.includes(`${a} > ${b}`));
          expect(lines.length, out).toBeGreaterThanOrEqual(SECURITY_DEFAULTS.attempts);
        }
      },
    });
    const byId = (id: string): AttachmentRow => matrix.rows.find((r) => r.attachment === id)!;
    expect(cell(byId('macvtap-bridge'), 'forged-mac')).toBe('delivered');
    expect(cell(byId('macvtap-private'), 'to-guest')).toBe('reply back');
    expect(benchNamespaces(process.pid)).toEqual([]);
  }, 60_000);
});

describePrivileged('bench security: the CLI', () => {
  const start = (args: string[]) => startBench(['security', ...args]);

  it('prints the matrix and writes JSON (valid against its schema) and HTML with the matrix chart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mvt-sec-'));
    defer(() => rmSync(dir, { recursive: true, force: true }));
    const run = start(['--attachments', 'macvtap-private,tap+linuxbridge', '--attempts', '2', '--json', join(dir, 'r.json'), '--html', join(dir, 'r.html')]);
    const { code } = await run.done;
    expect(code, run.stderr()).toBe(0);
    const lines = run.stdout().split('\n');
    expect(lines.find((l) => l.startsWith('attachment'))).toMatch(/forged-mac\s+forged-ip\s+stolen-mac/);
    expect(lines.find((l) => l.startsWith('macvtap-private'))).toMatch(/^macvtap-private\s+delivered\s+reply back\s+delivered\s+reply back\s+dropped/);
    expect(lines.find((l) => l.startsWith('tap+linuxbridge'))).toMatch(/^tap\+linuxbridge\s+reply back\s+reply back\s+reply back/);
    expect(run.stdout()).toContain('Legend:');
    const report = SecurityReportSchema.parse(JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8')));
    expect(report.rows.map((r) => r.attachment)).toEqual(['macvtap-private', 'tap+linuxbridge']);
    expect(report.options.attempts).toBe(2);
    for (const r of report.rows) for (const c of r.cases) expect(c.sent).toBe(2);
    const html = readFileSync(join(dir, 'r.html'), 'utf8');
    expect(html).toMatch(/<figure data-chart="security-matrix">[\s\S]*<svg/);
    expect(html).toContain('macvtap-private');
    expect(benchNamespaces(run.child.pid!)).toEqual([]);
  }, 60_000);

  it('rejects a bad option with the usage (exit 2)', async () => {
    const run = start(['--attachments', 'veth-direct']);
    const { code } = await run.done;
    expect(code).toBe(2);
    expect(run.stderr()).toContain('--attachments takes a subset of');
    expect(run.stderr()).toContain('Usage: macvtap bench security');
  });

  it('SIGINT mid-run leaves no namespace, OVS daemon or run directory', async () => {
    const run = start(['--attachments', ovs.available ? 'macvtap-bridge,tap+ovs' : 'macvtap-bridge,macvtap-vepa']);
    const pid = run.child.pid!;
    const until = Date.now() + 20_000;
    while (benchNamespaces(pid).length === 0 && run.child.exitCode === null && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(benchNamespaces(pid).length).toBeGreaterThan(0);
    run.child.kill('SIGINT');
    const { signal } = await run.done;
    expect(signal).toBe('SIGINT');
    expect(benchNamespaces(pid)).toEqual([]);
    expect(ovsDaemons(pid)).toEqual([]);
    expect(ovsDirs(pid)).toEqual([]);
  }, 60_000);
});
