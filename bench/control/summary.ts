/**
 * Turns raw repetitions into the summary rows (median, spread, interval, ratio to `ip -batch` per repetition pair)
 * and judges the control-plane targets on them.
 */
import { CONFIG_IDS } from './driver.js';
import type { Target } from '../report/schema.js';
import { pairedByRep, summarize, type Summary } from '../report/stats.js';
import type { ControlOptions, RawRow, SummaryRow } from './schema.js';

/** Phases whose natural unit is the whole operation (one group delete), not per device. */
const WHOLE_PHASES = new Set<RawRow['phase']>(['delete-group', 'delete-rest-group']);

function key(r: Pick<RawRow, 'scenario' | 'phase' | 'n' | 'devices'>): string {
  return `${r.scenario}|${r.phase}|${r.n}|${r.devices ?? ''}`;
}

/** The value a row contributes: µs per operation, or ms for the whole phase (`ip -batch`: net of start-up). */
export function rowValue(r: RawRow): number {
  return WHOLE_PHASES.has(r.phase) ? (r.netMs ?? r.totalMs) : r.perOpUs;
}

/** Values by repetition index, for pairing. */
function byRep(rows: RawRow[]): Map<number, number> {
  return new Map(rows.map((r) => [r.rep, rowValue(r)]));
}

/** Summary rows, in report order (scenario, phase, size; configurations in interleave order). `create-fill` is omitted. */
export function summarizeControl(rows: RawRow[]): SummaryRow[] {
  const groups = new Map<string, Map<string, RawRow[]>>();
  for (const r of rows) {
    if (r.phase === 'create-fill') continue;
    const k = key(r);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = new Map()));
    let list = g.get(r.config);
    if (!list) g.set(r.config, (list = []));
    list.push(r);
  }
  const out: SummaryRow[] = [];
  for (const g of groups.values()) {
    const batch = g.get('ip-batch');
    for (const id of CONFIG_IDS) {
      const list = g.get(id);
      if (!list || list.length === 0) continue;
      const first = list[0]!;
      const ratios = id !== 'ip-batch' && batch ? pairedByRep(byRep(list), byRep(batch)) : [];
      const s: SummaryRow = {
        scenario: first.scenario,
        phase: first.phase,
        config: id,
        n: first.n,
        unit: WHOLE_PHASES.has(first.phase) ? 'ms' : 'us',
        stats: summarize(list.map(rowValue)),
        vsBatch: ratios.length > 0 ? summarize(ratios) : null,
      };
      if (first.devices !== undefined) s.devices = first.devices;
      out.push(s);
    }
  }
  return out;
}

function find(rows: RawRow[], config: string, scenario: RawRow['scenario'], phase: RawRow['phase'], n?: number, devices?: number): Map<number, number> {
  return byRep(rows.filter((r) => r.config === config && r.scenario === scenario && r.phase === phase
    && (n === undefined || r.n === n) && (devices === undefined || r.devices === devices)));
}

const fmt = (x: number, digits = 2): string => x.toFixed(digits);
const range = (s: Summary, d = 2): string => `median ${fmt(s.median, d)} [${fmt(s.min, d)}–${fmt(s.max, d)}]`;

/** The control-plane targets, judged on this run's medians; `met: null` when the run lacks the data. */
export function checkControlTargets(rows: RawRow[], opts: ControlOptions): Target[] {
  const out: Target[] = [];
  const bigN = Math.max(...opts.sizes);

  const ours = find(rows, 'macvtap', 'lifecycle', 'create', bigN);
  const batch = find(rows, 'ip-batch', 'lifecycle', 'create', bigN);
  const ip = find(rows, 'ip', 'lifecycle', 'create', bigN);

  const r1 = pairedByRep(ours, batch);
  out.push({
    name: `create+up per device, N=${bigN}, vs ip -batch`,
    target: '≤ 1.1×',
    value: r1.length ? `${range(summarize(r1))}×` : 'no data',
    met: r1.length ? summarize(r1).median <= 1.1 : null,
  });
  const r2 = pairedByRep(ip, ours);
  out.push({
    name: `create+up per device, N=${bigN}: ip (1 process/command) ÷ macvtap`,
    target: '≥ 20×',
    value: r2.length ? `${range(summarize(r2), 1)}×` : 'no data',
    met: r2.length ? summarize(r2).median >= 20 : null,
  });

  const td = [...find(rows, 'macvtap', 'teardown', 'delete-group', opts.groupSize).values()];
  out.push({
    name: `teardown of ${opts.groupSize} macvtaps by group`,
    target: opts.groupSize === 1000 ? '≤ 400 ms' : '≤ 400 ms (target is for 1000 devices)',
    value: td.length ? `${range(summarize(td), 0)} ms` : 'no data',
    met: td.length && opts.groupSize === 1000 ? summarize(td).median <= 400 : null,
  });

  // The native call overhead: the blocking getLinkSync minus the same request timed in C, paired by repetition.
  const sync = find(rows, 'macvtap', 'getlink', 'getlink-sync');
  const raw = find(rows, 'macvtap', 'getlink', 'getlink-raw');
  const over = [...sync.keys()].filter((k) => raw.has(k)).map((k) => sync.get(k)! - raw.get(k)!);
  out.push({
    name: "native call overhead: getLinkSync('lo', { netns }) − the same RTM_GETLINK in a C loop, per call",
    target: '≤ 5 µs',
    value: over.length ? `${range(summarize(over), 1)} µs` : 'no data',
    met: over.length ? summarize(over).median <= 5 : null,
  });
  const gl = [...find(rows, 'macvtap', 'getlink', 'getlink').values()];
  out.push({
    name: "getLink('lo', { netns }) as a Promise, in sequence, per call (adds libuv's thread-pool hop)",
    target: '≤ 5 µs',
    value: gl.length ? `${range(summarize(gl), 1)} µs` : 'no data',
    met: gl.length ? summarize(gl).median <= 5 : null,
  });

  // Userspace cost: this process's user-mode CPU per create in the window below the first and the last checkpoint
  // (kernel work is system time and stays out), paired by repetition.
  const lo = opts.scale[0]!;
  const hi = opts.scale[opts.scale.length - 1]!;
  const userAt = (c: number): Map<number, number> => new Map(rows
    .filter((r) => r.config === 'macvtap' && r.scenario === 'scaling' && r.phase === 'create-window' && r.devices === c && r.userCpuUs !== undefined)
    .map((r) => [r.rep, r.userCpuUs!]));
  const uLo = userAt(lo);
  const uHi = userAt(hi);
  const growth = pairedByRep(uHi, uLo);
  const windowLo = rows.find((r) => r.config === 'macvtap' && r.phase === 'create-window' && r.devices === lo)?.n ?? 0;
  if (growth.length) {
    out.push({
      name: `userspace cost per create (this process's user CPU) flat from ${lo} to ${hi} devices`,
      target: 'grows ≤ 25%',
      value: `${fmt(summarize([...uLo.values()]).median, 1)} µs at ${lo} → ${fmt(summarize([...uHi.values()]).median, 1)} µs at ${hi} (×${range(summarize(growth), 2)})`,
      // getrusage's user share is sampled per tick: windows of fewer than 200 creates are reported, not judged.
      met: windowLo >= 200 ? summarize(growth).median <= 1.25 : null,
    });
  } else {
    out.push({ name: 'userspace cost per create flat as N grows', target: 'grows ≤ 25%', value: 'no data', met: null });
  }
  return out;
}
