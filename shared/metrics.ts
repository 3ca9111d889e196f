/**
 * Each component's Prometheus registry (prom-client): counters, gauges and histograms, each with
 * its label names declared up front. A label set named at registration is exported at 0 from
 * the start, so `increase()` sees the first error (a series born at 1 has no increase) and every
 * documented metric is there before anything happens.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Labels = Record<string, string>;

/** Label name -> the values to export at 0 from the start (an empty list: declared, none exported). */
export type LabelValues = Readonly<Record<string, readonly string[]>>;

/** Every combination of the given values, one label set each. */
function combinations(labels: LabelValues): Labels[] {
  let out: Labels[] = [{}];
  for (const [name, values] of Object.entries(labels)) {
    if (values.length === 0) return [];
    out = out.flatMap((l) => values.map((v) => ({ ...l, [name]: v })));
  }
  return out;
}

/** Latency buckets in seconds, from a fast kernel pass (a few ms) to a slow device (a minute). */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class Metrics {
  readonly registry = new Registry();

  counter(name: string, help: string, labels: LabelValues = {}): (labels?: Labels, by?: number) => void {
    const c = new Counter({ name, help, labelNames: Object.keys(labels), registers: [this.registry] });
    if (Object.keys(labels).length === 0) c.inc(0);
    for (const l of combinations(labels)) c.inc(l, 0);
    return (l = {}, by = 1) => c.inc(l, by);
  }

  gauge(name: string, help: string, labels: LabelValues = {}): (value: number, labels?: Labels) => void {
    const g = new Gauge({ name, help, labelNames: Object.keys(labels), registers: [this.registry] });
    return (value, l = {}) => g.set(l, value);
  }

  /** A histogram of durations in seconds. */
  histogram(name: string, help: string, buckets: readonly number[] = DURATION_BUCKETS): (seconds: number) => void {
    const h = new Histogram({ name, help, buckets: [...buckets], registers: [this.registry] });
    return (seconds) => h.observe(seconds);
  }

  /** Current value of a series (tests, /status). */
  async value(name: string, labels: Labels = {}): Promise<number | undefined> {
    const m = this.registry.getSingleMetric(name);
    if (!m) return undefined;
    const want = JSON.stringify(Object.entries(labels).sort());
    return (await m.get()).values.find((v) => JSON.stringify(Object.entries(v.labels).sort()) === want)?.value;
  }

  /** Prometheus text exposition (format 0.0.4). */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

let processRegistry: Registry | undefined;

/**
 * The process's own series (prom-client's defaults: resident and V8 heap memory by space, CPU,
 * event-loop lag, GC pauses, open handles), one set per process, at the end of every component's
 * /metrics: what an operator watches to see an agent's memory on every node.
 */
export function processMetricsText(): Promise<string> {
  return processMetrics().metrics();
}

/** Starts collecting the process's series (event-loop lag and GC are observed from then on). */
export function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}
