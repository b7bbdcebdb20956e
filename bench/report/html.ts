/**
 * What every benchmark's HTML report shares: the page shell, vega-lite → Vega → SVG rendering in Node (no browser, no
 * script in the page, nothing fetched) and HTML escaping. Each benchmark only says which charts it draws
 * (html.ts of each benchmark's folder).
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** One chart of a report: its id (the `data-chart` attribute), title and vega-lite spec. */
export interface ChartSpec {
  id: string;
  title: string;
  spec: TopLevelSpec;
}

/** The vega-lite schema every spec names. */
export const VEGA_LITE_SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';

/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Renders one vega-lite spec to an SVG string (headless Vega view, no DOM). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** What a report page shows: its heading, header facts (term → text), charts and the printed report. */
export interface ReportPage {
  /** `<title>` and `<h1>`. */
  title: string;
  /** Lines shown first, right under the heading, before the facts and charts (the claims header); optional. */
  lead?: { title: string; lines: string[] };
  /** Header facts as term/description pairs; `code: true` sets the description in `<code>` (the command line). */
  facts: { term: string; text: string; code?: boolean }[];
  charts: ChartSpec[];
  /** The plain-text report, shown preformatted under the charts. */
  text: string;
}

/** The whole self-contained page: header facts, every chart as inline SVG in a `<figure data-chart>`, the text report. */
export async function renderPage(page: ReportPage): Promise<string> {
  const figures: string[] = [];
  // One at a time: each view holds its whole scene graph until finalized.
  for (const c of page.charts) {
    const svg = await renderSvg(c.spec);
    figures.push(`<figure data-chart="${escapeHtml(c.id)}"><figcaption>${escapeHtml(c.title)}</figcaption>${svg}</figure>`);
  }
  const facts = page.facts
    .map((f) => `<dt>${escapeHtml(f.term)}</dt><dd>${f.code ? `<code>${escapeHtml(f.text)}</code>` : escapeHtml(f.text)}</dd>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(page.title)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
figure{margin:24px 0;overflow-x:auto}figcaption{font-weight:600;margin-bottom:6px}
pre{font:12px/1.3 ui-monospace,monospace;background:#f6f6f6;padding:12px;overflow-x:auto}
dt{font-weight:600}dd{margin:0 0 6px 0}
</style></head><body>
<h1>${escapeHtml(page.title)}</h1>
${page.lead ? `<section data-claims><h2>${escapeHtml(page.lead.title)}</h2><ul>\n${page.lead.lines.map((l) => `<li>${escapeHtml(l)}</li>`).join('\n')}\n</ul></section>` : ''}
<dl>
${facts}
</dl>
${figures.join('\n')}
<h2>Report</h2>
<pre>${escapeHtml(page.text)}</pre>
</body></html>
`;
}
