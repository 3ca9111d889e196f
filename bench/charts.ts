/**
 * The benchmark results as SVG charts for docs/benchmarks.md, drawn with Vega-Lite (rendered
 * headless by Vega, no browser or canvas): join latency distributions, ours beside the baseline;
 * the agent's RSS over its run; initial sync time against the node count. The spec builders are
 * pure (results in, Vega-Lite spec out); `renderCharts` writes the files.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

type J = Record<string, unknown>;
const get = (o: unknown, path: string): unknown => path.split('.').reduce<unknown>((a, k) => (a && typeof a === 'object' ? (a as J)[k] : undefined), o);
const numbers = (v: unknown): number[] => (Array.isArray(v) ? v.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)) : []);

export interface ChartInputs {
  readonly agent?: J;
  readonly scale?: J;
  readonly dataplane?: J;
}

export interface Chart {
  readonly file: string;
  readonly title: string;
  readonly spec: TopLevelSpec;
}

// labelLimit 0: series names are whole sentences, never cut short
const CONFIG = { font: 'sans-serif', axis: { labelFontSize: 11, titleFontSize: 12, labelLimit: 0 }, legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 0 } };

/** A chart: its file, the title shown in the docs, and the plotted values under the common frame. */
function chart(file: string, title: string, values: readonly object[], body: Record<string, unknown>): Chart {
  const spec = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', title, width: 560, height: 220, config: CONFIG, data: { values }, ...body } as TopLevelSpec;
  return { file, title, spec };
}

/** Node join latency, one dot per join, by cluster size: ours (join -> device programmed) and the CNC-like baseline, plus join -> first ping in the lab. */
export function joinLatencyChart(inputs: ChartInputs): Chart | undefined {
  const sizes = (get(inputs.scale, 'results') as J[] | undefined) ?? [];
  const values = sizes.flatMap((r) => {
    const n = `${String(r.n)} nodes`;
    return [
      ...numbers(get(r, 'ours.churn.joinSamplesMs')).map((ms) => ({ series: 'ours: join -> device programmed', group: n, ms })),
      ...numbers(get(r, 'baseline.churnNodeEventSamplesMs')).map((ms) => ({ series: 'baseline: device calls of a node event only', group: n, ms })),
    ];
  });
  values.push(...numbers(get(inputs.dataplane, 'joinSamplesMs')).map((ms) => ({ series: 'ours: join -> first ping (lab, real kernel)', group: 'lab, 1 node joining', ms })));
  values.push(...numbers(get(inputs.dataplane, 'directJoinSamplesMs')).map((ms) => ({ series: 'ours: join -> first ping, direct routing (lab)', group: 'lab, 1 node joining', ms })));
  if (values.length === 0) return undefined;
  return chart('join-latency.svg', 'Node join latency, every join (ms, log scale)', values, {
      layer: [
        { mark: { type: 'tick', thickness: 2, opacity: 0.6 }, encoding: { x: { field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: 'ms' }, y: { field: 'series', type: 'nominal', title: null }, color: { field: 'group', type: 'nominal', title: 'size' } } },
        { mark: { type: 'point', shape: 'diamond', size: 90, filled: true, color: 'black' }, encoding: { x: { aggregate: 'median', field: 'ms', type: 'quantitative' }, y: { field: 'series', type: 'nominal' }, detail: { field: 'group' } } },
      ],
  });
}

/** The agent's RSS over its bench run: idle, then drift repairs. */
export function agentRssChart(inputs: ChartInputs): Chart | undefined {
  const series = (get(inputs.agent, 'rssSeries') as { seconds: number; phase: string; repairs: number; rssMiB: number }[] | undefined) ?? [];
  if (series.length === 0) return undefined;
  return chart('agent-rss.svg', 'Agent RSS over the bench run (MiB): idle, then drift repairs', series, {
      layer: [
        { mark: { type: 'line', point: true }, encoding: { x: { field: 'seconds', type: 'quantitative', title: 'seconds since the agent was idle' }, y: { field: 'rssMiB', type: 'quantitative', title: 'RSS (MiB)', scale: { zero: true } }, color: { field: 'phase', type: 'nominal', title: 'phase' }, tooltip: [{ field: 'repairs' }] } },
        // one goal line and one label (their own single datum, not one per sample)
        { data: { values: [{}] }, mark: { type: 'rule', strokeDash: [4, 4], color: 'gray' }, encoding: { y: { datum: 60 } } },
        { data: { values: [{}] }, mark: { type: 'text', align: 'left', dx: 4, dy: -6, color: 'gray' }, encoding: { x: { datum: 0 }, y: { datum: 60 }, text: { value: 'goal idle: 60 MiB' } } },
      ],
  });
}

/** Initial sync to the device against the node count, ours and the baseline. */
export function initialSyncChart(inputs: ChartInputs): Chart | undefined {
  const sizes = (get(inputs.scale, 'results') as J[] | undefined) ?? [];
  const values = sizes.flatMap((r) => [
    { nodes: r.n, who: 'ours', seconds: Number(get(r, 'ours.syncMs')) / 1000 },
    { nodes: r.n, who: 'baseline (one call per object)', seconds: Number(get(r, 'baseline.syncMs')) / 1000 },
  ]).filter((v) => Number.isFinite(v.seconds));
  if (values.length === 0) return undefined;
  return chart('initial-sync.svg', 'Initial sync to the device (s) against the node count', values, {
    mark: { type: 'line', point: true },
    encoding: { x: { field: 'nodes', type: 'quantitative', title: 'nodes' }, y: { field: 'seconds', type: 'quantitative', title: 'seconds' }, color: { field: 'who', type: 'nominal', title: null } },
  });
}

export function charts(inputs: ChartInputs): Chart[] {
  return [joinLatencyChart(inputs), agentRssChart(inputs), initialSyncChart(inputs)].filter((c): c is Chart => c !== undefined);
}

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Writes each chart into `dir` (and removes a chart the results no longer allow); returns the charts written. */
export async function renderCharts(inputs: ChartInputs, dir: string): Promise<Chart[]> {
  const list = charts(inputs);
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(dir)) if (f.endsWith('.svg') && !list.some((c) => c.file === f)) rmSync(join(dir, f));
  for (const c of list) writeFileSync(join(dir, c.file), await renderSvg(c.spec));
  return list;
}
