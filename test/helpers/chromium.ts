/**
 * Opening the benchmarks' HTML reports in headless Chromium (Debian's `chromium`): run it with a private profile,
 * pick a chart's `<figure>` out of the dumped DOM, read the texts of its SVG, and check that it really drew something.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';

/** The Chromium binary, or undefined when none is installed (tests that need it skip). */
export const chromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

/** Runs headless Chromium with a private profile made under `dir` (removed with it); returns its output and status. */
export function runChromium(dir: string, args: string[]): { stdout: string; status: number | null; stderr: string } {
  if (!chromium) throw new Error('no chromium installed');
  const profile = mkdtempSync(join(dir, 'chromium-'));
  const r = spawnSync(chromium, [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', `--user-data-dir=${profile}`, ...args,
  ], { encoding: 'utf8', timeout: 90_000, maxBuffer: 64 << 20 });
  return { stdout: r.stdout, status: r.status, stderr: r.stderr };
}

/** The inside of `<figure data-chart="id">…</figure>` in a dumped DOM ('' when absent). */
export function figure(dom: string, id: string): string {
  const m = new RegExp(`<figure data-chart="${id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}">([\\s\\S]*?)</figure>`).exec(dom);
  return m?.[1] ?? '';
}

/** Texts of the SVG `<text>` elements (legend entries, axis labels). */
export function texts(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!.replace(/&gt;/g, '>').replace(/&lt;/g, '<').replace(/&amp;/g, '&'));
}

/** Asserts that chart `id` of a dumped DOM is an inline SVG of real size with marks drawn, not an empty frame. */
export function expectDrawnChart(dom: string, id: string): void {
  const fig = figure(dom, id);
  expect(fig, `chart ${id} missing`).toContain('<svg');
  const size = /<svg[^>]*width="(\d+(?:\.\d+)?)"[^>]*height="(\d+(?:\.\d+)?)"/.exec(fig);
  expect(Number(size?.[1]), id).toBeGreaterThan(50);
  expect(Number(size?.[2]), id).toBeGreaterThan(50);
  // Paths with geometry: symbols, lines, bars.
  expect((fig.match(/<path[^>]* d="M[^"]+"/g) ?? []).length, id).toBeGreaterThan(5);
}
