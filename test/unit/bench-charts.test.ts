// make bench's charts (bench/charts.ts): which charts the results allow, what data they plot,
// and that Vega renders them to SVG carrying their titles, axes and series.
import { describe, expect, it } from 'vitest';
import { agentRssChart, charts, initialSyncChart, joinLatencyChart, renderSvg } from '../../bench/charts.ts';

const scale = {
  results: [
    { n: 1000, ours: { syncMs: 1300, churn: { joinSamplesMs: [20, 25, 60] } }, baseline: { syncMs: 1500, churnNodeEventSamplesMs: [2.5, 3] } },
    { n: 5000, ours: { syncMs: 1800, churn: { joinSamplesMs: [70, 100] } }, baseline: { syncMs: 8700, churnNodeEventSamplesMs: [2.6] } },
  ],
};
const agent = { rssSeries: [{ seconds: 0, phase: 'idle', repairs: 0, rssMiB: 98 }, { seconds: 70, phase: 'repairs', repairs: 10, rssMiB: 120 }] };
const dataplane = { joinSamplesMs: [900, 1100], directJoinSamplesMs: [180, 300] };

function plotted(spec: unknown): unknown[] {
  return (spec as { data: { values: unknown[] } }).data.values;
}

describe('bench charts', () => {
  it('draws no chart from results without samples (older results, a suite not run)', () => {
    expect(charts({})).toEqual([]);
    expect(charts({ scale: { results: [{ n: 1000, ours: { churn: { join: { p50: 3 } } } }] } }).map((c) => c.file)).toEqual([]);
  });

  it('plots every join sample, ours and the baseline by cluster size, and the lab joins in both routing modes', () => {
    const values = plotted(joinLatencyChart({ scale, dataplane })?.spec);
    expect(values).toHaveLength(3 + 2 + 2 + 1 + 2 + 2);
    expect(values).toContainEqual({ series: 'ours: join -> first ping, direct routing (lab)', group: 'lab, 1 node joining', ms: 300 });
    expect(values).toContainEqual({ series: 'ours: join -> device programmed', group: '5000 nodes', ms: 100 });
    expect(values).toContainEqual({ series: 'baseline: device calls of a node event only', group: '1000 nodes', ms: 2.5 });
    expect(values).toContainEqual({ series: 'ours: join -> first ping (lab, real kernel)', group: 'lab, 1 node joining', ms: 1100 });
  });

  it('plots initial sync in seconds per size, and the agent RSS series as measured', () => {
    expect(plotted(initialSyncChart({ scale })?.spec)).toEqual([
      { nodes: 1000, who: 'ours', seconds: 1.3 }, { nodes: 1000, who: 'baseline (one call per object)', seconds: 1.5 },
      { nodes: 5000, who: 'ours', seconds: 1.8 }, { nodes: 5000, who: 'baseline (one call per object)', seconds: 8.7 },
    ]);
    expect(plotted(agentRssChart({ agent })?.spec)).toEqual(agent.rssSeries);
  });

  it('renders each chart to an SVG with its title, axis titles and series names', async () => {
    const all = charts({ scale, agent, dataplane });
    expect(all.map((c) => c.file)).toEqual(['join-latency.svg', 'agent-rss.svg', 'initial-sync.svg']);
    const svgs = await Promise.all(all.map((c) => renderSvg(c.spec)));
    for (const svg of svgs) expect(svg).toMatch(/^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(svgs[0]).toContain('Node join latency, every join');
    expect(svgs[0]).toContain('baseline: device calls of a node event only');
    expect(svgs[1]).toContain('RSS (MiB)');
    expect(svgs[1]?.split('goal idle: 60 MiB')).toHaveLength(2); // one label, not one per sample
    expect(svgs[0]).toContain('join -&gt; first ping, direct routing');
    expect(svgs[0]).not.toContain('…'); // no series name cut short
    expect(svgs[2]).toContain('baseline (one call per object)');
  });
});
