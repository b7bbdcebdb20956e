/**
 * The HTML report of the datapath benchmark, opened in headless Chromium (Debian's `chromium`): the page loads, every
 * chart is an inline SVG with drawn marks, the latency chart has a series per topology that ran and the throughput
 * chart one per direction, and a screenshot is taken. The report comes from a real (small) run of the compiled CLI.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DatapathReportSchema, type DatapathReport } from '../bench/datapath/schema.js';
import { benchNamespaces, cliJs, ensureCompiled } from './helpers/benchchild.js';
import { chromium, expectDrawnChart, figure, runChromium, texts } from './helpers/chromium.js';
import { describePrivileged } from './helpers/suite.js';

const root = resolve(import.meta.dirname, '..');

let tmp = '';
let report: DatapathReport;
let htmlPath = '';

describePrivileged('datapath HTML report in headless Chromium', () => {
  beforeAll(async () => {
    ensureCompiled('dist/cli/macvtap.js', 'bench/dist/datapath/html.js');
    tmp = mkdtempSync(join(tmpdir(), 'mvt-bench-html-test-'));
    htmlPath = join(tmp, 'report.html');
    const jsonPath = join(tmp, 'report.json');
    const child = spawn(process.execPath, [
      cliJs, 'bench', '--quick', '--reps', '2', '--placement', 'same-cpu,cross-cpu', '--poll', 'block',
      '--tests', 'rtt-64,rtt-1400,g2p-64,p2g-64,g2p-1500', '--latency-ms', '60', '--throughput-ms', '60',
      '--html', htmlPath, '--json', jsonPath, '--quiet',
    ], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    expect(code, err).toBe(0);
    report = DatapathReportSchema.parse(JSON.parse(readFileSync(jsonPath, 'utf8')));
    expect(benchNamespaces(child.pid!)).toEqual([]);
  }, 150_000);

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it.skipIf(!chromium)('renders every chart as a non-empty SVG with the expected series, and screenshots', () => {
    const dom = runChromium(tmp, ['--dump-dom', `file://${htmlPath}`]);
    expect(dom.status, dom.stderr).toBe(0);
    expect(dom.stdout).toContain('<h1>macvtap datapath benchmark</h1>');
    // The page opens with the claims lines, before the facts and the charts: one per claim, each a ratio with its
    // interval and what it was measured against.
    const claims = /<section data-claims[^>]*>([\s\S]*?)<\/section>/.exec(dom.stdout);
    expect(claims, 'no claims section').not.toBeNull();
    expect(dom.stdout.indexOf('<section data-claims')).toBeLessThan(dom.stdout.indexOf('<dl>'));
    expect(dom.stdout.indexOf('<section data-claims')).toBeLessThan(dom.stdout.indexOf('<figure'));
    const items = [...claims![1]!.matchAll(/<li>([^<]*)<\/li>/g)].map((m) => m[1]!);
    expect(items).toHaveLength(4);
    expect(items.map((t) => t.split(' ')[0])).toEqual(['latency', 'throughput', 'CPU', 'security']);
    for (const [i, c] of report.claims!.entries()) {
      expect(c.ratio, c.text).not.toBeNull();
      // As printed: "… A ÷ B = 0.85× [0.80–0.90] — what, placement, poll; …" (HTML-escaped in the page).
      expect(items[i]).toContain(`÷ ${c.against} = ${c.ratio!.median.toFixed(2)}× [${c.ratio!.ci.lo.toFixed(2)}–${c.ratio!.ci.hi.toFixed(2)}]`);
    }

    const labels = [...new Set(report.rows.map((r) => r.label))];
    expect(labels.length).toBeGreaterThanOrEqual(4);
    for (const id of ['latency-rtt-64', 'latency-rtt-1400', 'latency-cdf', 'throughput-pps', 'throughput-gbps', 'cpu-per-packet', 'ratios']) {
      expectDrawnChart(dom.stdout, id);
    }
    // One series per topology in the latency charts (legend entries), one per direction in the packet-rate chart.
    for (const id of ['latency-rtt-64', 'latency-cdf']) {
      const t = texts(figure(dom.stdout, id));
      for (const l of labels) expect(t, `${id}: no series for ${l}`).toContain(l);
    }
    const pps = texts(figure(dom.stdout, 'throughput-pps'));
    expect(pps).toEqual(expect.arrayContaining(['guest→peer 64 B', 'peer→guest 64 B']));
    // Facets: one column per placement.
    expect(texts(figure(dom.stdout, 'latency-rtt-64'))).toEqual(expect.arrayContaining(['same-cpu, block', 'cross-cpu, block']));

    const png = join(tmp, 'report.png');
    const shot = runChromium(tmp, [`--screenshot=${png}`, '--window-size=1400,2400', `file://${htmlPath}`]);
    expect(shot.status, shot.stderr).toBe(0);
    expect(statSync(png).size).toBeGreaterThan(20_000);
    // A PNG, not an error page's bytes.
    expect(readFileSync(png).subarray(1, 4).toString('latin1')).toBe('PNG');
  }, 120_000);
});
