/**
 * The anti-spoofing probe (`macvtap bench security`), run for real: the matrix matches what the kernel's drivers do
 * (drivers/net/macvlan.c delivers by destination MAC only and never checks a source; the Linux bridge and OVS NORMAL
 * learn source MACs and flood unknown unicast) and what port security (lib/portsec) adds to each macvtap mode, one
 * cell of each kind — and every IPv6/ARP/ND case on an unsecured and a secured row — is cross-checked with tcpdump
 * inside the testbed's namespaces, the CLI prints the matrix and writes JSON that validates against its schema and an
 * HTML page, and nothing (namespaces, OVS daemons, run directories) is left afterwards — also after SIGINT mid-run.
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
import { IP6 } from '../bench/security/cases.js';
import {
  ATTACHMENTS, CASES, SecurityMatrixSchema, SecurityReportSchema, type AttachmentRow, type CaseId, type Cell, type SecurityMatrix,
} from '../bench/security/schema.js';
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

/** ARP and neighbour discovery cases: A → peer, no reply. */
const UNCHECKED_L2 = ['arp-legit', 'arp-forged-ip', 'arp-forged-mac', 'na-legit', 'na-forged-target', 'na-forged-lladdr', 'router-advert'] as const;

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
    expect(matrix.rows.map((r) => r.attachment)).toEqual([...ATTACHMENTS]);
    for (const a of ['macvtap-bridge', 'macvtap-vepa', 'macvtap-private'] as const) {
      const r = row(a);
      expect(r?.portSecurity, a).toBeNull();
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
      expect(cell(r, 'legitimate'), a).toBe('reply back');
      // IPv6 sources, ARP bodies and neighbour discovery are not looked at either: every forgery reaches the wire.
      for (const c of ['legitimate6', 'forged-ip6'] as const) expect(cell(r, c), `${a} ${c}`).toBe('reply back');
      for (const c of UNCHECKED_L2) expect(cell(r, c), `${a} ${c}`).toBe('delivered');
    }
    // Port security (nftables netdev egress chain on each guest's macvtap): every forgery A writes is dropped before
    // macvlan sees it, legitimate traffic, A's own ARP and neighbour advertisements and guest↔guest unicast pass.
    for (const base of ['macvtap-bridge', 'macvtap-vepa', 'macvtap-private'] as const) {
      const a = `${base}+portsec`;
      const r = row(a);
      expect(r?.unavailable, a).toBeNull();
      for (const c of ['forged-mac', 'forged-ip', 'stolen-mac', 'forged-ip6', 'arp-forged-ip', 'arp-forged-mac', 'na-forged-target', 'na-forged-lladdr', 'router-advert'] as const) {
        expect(cell(r, c), `${a} ${c}`).toBe('dropped');
      }
      for (const c of ['legitimate', 'to-guest', 'legitimate6'] as const) expect(cell(r, c), `${a} ${c}`).toBe('reply back');
      for (const c of ['arp-legit', 'na-legit'] as const) expect(cell(r, c), `${a} ${c}`).toBe('delivered');
      // What port security does not change: the mode's own delivery rules.
      for (const c of ['guest-bcast', 'snoop-guest', 'snoop-unknown', 'promisc-guest', 'promisc-unknown'] as const) {
        expect(cell(r, c), `${a} ${c}`).toBe(cell(row(base), c));
      }
      // nftables counted exactly the forged frames, by reason (nothing else guest A sent was dropped).
      const n = SECURITY_DEFAULTS.attempts;
      const packets = Object.fromEntries(Object.entries(r!.portSecurity!.dropped).filter(([, d]) => d.packets > 0).map(([k, d]) => [k, d.packets]));
      expect(packets, a).toEqual({
        'spoofed-mac': 2 * n, // forged-mac, stolen-mac
        'spoofed-ipv4': n, // forged-ip
        'spoofed-ipv6': n, // forged-ip6
        'spoofed-arp': 2 * n, // arp-forged-ip, arp-forged-mac
        'spoofed-nd': 2 * n, // na-forged-target, na-forged-lladdr
        'router-advert': n,
      });
      expect(r!.portSecurity!.policy).toEqual({ mac: r!.guestA!.mac, ips: [r!.guestA!.ip, IP6.a], rules: 'none' });
    }
    expect(cell(row('macvtap-bridge'), 'guest-bcast')).toBe('delivered');
    expect(cell(row('macvtap-vepa'), 'guest-bcast')).toBe('delivered');
    expect(cell(row('macvtap-private'), 'guest-bcast')).toBe('dropped');
    // Learning switches: a forged or stolen source MAC is learned on A's port, so the replies come to A; unknown
    // unicast is flooded to every port, A's too; a known guest's unicast is not.
    const switches = ovs.available ? ['tap+linuxbridge', 'tap+ovs'] : ['tap+linuxbridge'];
    for (const a of switches) {
      const r = row(a);
      for (const c of ['legitimate', 'forged-mac', 'forged-ip', 'stolen-mac', 'to-guest', 'legitimate6', 'forged-ip6'] as const) {
        expect(cell(r, c), `${a} ${c}`).toBe('reply back');
      }
      for (const c of UNCHECKED_L2) expect(cell(r, c), `${a} ${c}`).toBe('delivered');
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
  }, 180_000);
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

/** tcpdump -v output as one string per packet (continuation lines start with whitespace). */
function packets(out: string): string[] {
  const pk: string[] = [];
  for (const l of out.split('\n')) {
    if (l.trim() === '') continue;
    if (/^\s/.test(l) && pk.length > 0) pk[pk.length - 1] += `\n${l}`;
    else pk.push(l);
  }
  return pk;
}

describeNeeding('bench security: IPv6, ARP and ND cells cross-checked with tcpdump on the peer', tcpdumpMissing, () => {
  it('what tcpdump sees on the peer\'s wire agrees with every cell of macvtap-bridge and macvtap-bridge+portsec', async () => {
    const dumps = new Map<string, { stop: () => Promise<string> }>();
    defer(async () => {
      for (const d of dumps.values()) await d.stop();
    });
    const seen = new Map<string, string[]>();
    const matrix = await runSecurityProbe({ ...SECURITY_DEFAULTS, attachments: ['macvtap-bridge', 'macvtap-bridge+portsec'] }, SILENT, {
      async onBuilt(t, attachment) {
        const a = t.guest.kind === 'tap' ? t.guest.mac : '';
        const b = t.guest2?.kind === 'tap' ? t.guest2.mac : '';
        dumps.set(attachment, await tcpdump(t.peerNs.name, t.peerWire, ['-t', '-v', 'ether', 'src', a, 'or', 'ether', 'src', b, 'or', 'ether', 'src', FORGED.mac]));
      },
      async onProbed(t, row) {
        seen.set(row.attachment, packets(await dumps.get(row.attachment)!.stop()));
        dumps.delete(row.attachment);
      },
    });
    for (const row of matrix.rows) {
      const pk = seen.get(row.attachment)!;
      const a = row.guestA!;
      const b = row.guestB!;
      const peer = row.cases.find((c) => c.case === 'legitimate')!.frame.dstMac;
      // tcpdump's own decoding of each case's frame (-e: "SRC > DST"; -v: ND options, checksum verdicts).
      const signature: Partial<Record<CaseId, (p: string) => boolean>> = {
        'legitimate': (p) => p.startsWith(`${a.mac} > ${peer}`) && p.includes(`${a.ip}.7099 > `),
        'forged-mac': (p) => p.startsWith(`${FORGED.mac} > ${peer}`),
        'forged-ip': (p) => p.startsWith(`${a.mac} > ${peer}`) && p.includes(`${FORGED.ip}.7099 > `),
        'stolen-mac': (p) => p.startsWith(`${b.mac} > ${peer}`),
        'legitimate6': (p) => p.includes(`${IP6.a}.7099 > ${IP6.peer}.7099`),
        'forged-ip6': (p) => p.includes(`${FORGED.ip6}.7099 > ${IP6.peer}.7099`),
        'arp-legit': (p) => p.includes(`Reply ${a.ip} is-at ${a.mac}`),
        'arp-forged-ip': (p) => p.includes(`Reply ${row.cases.find((c) => c.case === 'arp-forged-ip')!.frame.srcIp} is-at ${a.mac}`),
        'arp-forged-mac': (p) => p.includes(`Reply ${a.ip} is-at ${FORGED.mac}`),
        'na-legit': (p) => p.includes(`tgt is ${IP6.a}`) && p.includes(`: ${a.mac}`),
        'na-forged-target': (p) => p.includes(`tgt is ${IP6.peer}`),
        'na-forged-lladdr': (p) => p.includes(`tgt is ${IP6.a}`) && p.includes(`: ${FORGED.mac}`),
        'router-advert': (p) => p.includes('router advertisement'),
      };
      for (const [id, match] of Object.entries(signature) as [CaseId, (p: string) => boolean][]) {
        const n = pk.filter(match).length;
        const c = cell(row, id);
        if (c === 'dropped') expect(n, `${row.label} ${id}: tcpdump saw ${n}\n${pk.join('\n')}`).toBe(0);
        else expect(n, `${row.label} ${id} (${c}): tcpdump saw ${n}\n${pk.join('\n')}`).toBeGreaterThanOrEqual(SECURITY_DEFAULTS.attempts);
      }
      // The hand-built ICMPv6 and UDP/IPv6 checksums are right (tcpdump -v verifies them).
      expect(pk.filter((p) => /sum (bad|wrong)|bad .*cksum/i.test(p)), row.label).toEqual([]);
      expect(pk.some((p) => p.includes('[icmp6 sum ok]')), row.label).toBe(true);
    }
    const unsecured = matrix.rows[0]!;
    for (const id of ['forged-ip6', 'arp-forged-ip', 'arp-forged-mac', 'na-forged-target', 'na-forged-lladdr', 'router-advert'] as const) {
      expect(cell(unsecured, id), id).toBe(id === 'forged-ip6' ? 'reply back' : 'delivered');
      expect(cell(matrix.rows[1], id), id).toBe('dropped');
    }
    expect(benchNamespaces(process.pid)).toEqual([]);
  }, 60_000);
});

describePrivileged('bench security: the CLI', () => {
  const start = (args: string[]) => startBench(['security', ...args]);

  it('prints the matrix and writes JSON (valid against its schema) and HTML with the matrix chart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mvt-sec-'));
    defer(() => rmSync(dir, { recursive: true, force: true }));
    const run = start(['--attachments', 'macvtap-private,macvtap-private+portsec,tap+linuxbridge', '--attempts', '2', '--json', join(dir, 'r.json'), '--html', join(dir, 'r.html')]);
    const { code } = await run.done;
    expect(code, run.stderr()).toBe(0);
    const lines = run.stdout().split('\n');
    // Two tables: IPv4/snooping cases, then IPv6/ARP/ND cases; each starts with a header line.
    const heads = lines.flatMap((l, i) => (l.startsWith('attachment') ? [i] : []));
    expect(heads).toHaveLength(2);
    expect(lines[heads[0]!]).toMatch(/legitimate\s+forged-mac\s+forged-ip\s+stolen-mac/);
    expect(lines[heads[1]!]).toMatch(/legitimate6\s+forged-ip6\s+arp-legit\s+arp-forged-ip\s+arp-forged-mac\s+na-legit\s+na-forged-target\s+na-forged-lladdr\s+router-advert/);
    const rowAfter = (head: number, label: string): string | undefined => lines.slice(head).find((l) => l.startsWith(`${label} `));
    expect(rowAfter(heads[0]!, 'macvtap-private')).toMatch(/^macvtap-private\s+reply back\s+delivered\s+reply back\s+delivered\s+reply back\s+dropped/);
    expect(rowAfter(heads[0]!, 'macvtap-private+portsec')).toMatch(/^macvtap-private\+portsec\s+reply back\s+dropped\s+dropped\s+dropped\s+reply back\s+dropped/);
    expect(rowAfter(heads[0]!, 'tap+linuxbridge')).toMatch(/^tap\+linuxbridge\s+reply back\s+reply back\s+reply back\s+reply back/);
    expect(rowAfter(heads[1]!, 'macvtap-private')).toMatch(/^macvtap-private\s+reply back\s+reply back(\s+delivered){7}\s*$/);
    expect(rowAfter(heads[1]!, 'macvtap-private+portsec')).toMatch(/^macvtap-private\+portsec\s+reply back\s+dropped\s+delivered\s+dropped\s+dropped\s+delivered(\s+dropped){3}\s*$/);
    expect(run.stdout()).toMatch(/^ {2}macvtap-private\+portsec\s+spoofed-mac 4, spoofed-arp 4, spoofed-ipv4 2, spoofed-ipv6 2, router-advert 2, spoofed-nd 4$/m);
    expect(run.stdout()).toContain('Legend:');
    const report = SecurityReportSchema.parse(JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8')));
    expect(report.schema).toBe('macvtap-bench-security/2');
    expect(report.rows.map((r) => r.attachment)).toEqual(['macvtap-private', 'macvtap-private+portsec', 'tap+linuxbridge']);
    expect(report.rows[1]!.portSecurity!.dropped['spoofed-nd']!.packets).toBe(4);
    expect(report.options.attempts).toBe(2);
    for (const r of report.rows) for (const c of r.cases) expect(c.sent).toBe(2);
    const html = readFileSync(join(dir, 'r.html'), 'utf8');
    expect(html).toMatch(/<figure data-chart="security-matrix">[\s\S]*<svg/);
    expect(html).toContain('macvtap-private+portsec');
    expect(html).toContain('na-forged-lladdr');
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
