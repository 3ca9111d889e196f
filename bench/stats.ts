/** Small statistics and reporting helpers shared by the benchmarks. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, release, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? NaN;
}

export function summary(values: readonly number[]): { n: number; p50: number; p95: number; p99: number; max: number } {
  return { n: values.length, p50: percentile(values, 50), p95: percentile(values, 95), p99: percentile(values, 99), max: Math.max(...values) };
}

export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}

export const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));

/** Saves a suite's results as bench/results/<suite>-<timestamp>.json and <suite>-latest.json. */
export function saveResults(suite: string, data: Record<string, unknown>): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const body = JSON.stringify({ suite, at: new Date().toISOString(), machine: machine(), ...data }, null, 2);
  const file = join(RESULTS_DIR, `${suite}-${stamp}.json`);
  writeFileSync(file, body);
  writeFileSync(join(RESULTS_DIR, `${suite}-latest.json`), body);
  return file;
}

/** The machine the figures were measured on. */
export function machine(): Record<string, unknown> {
  return { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), kernel: release(), node: process.version, platform: `${process.platform}/${process.arch}` };
}

export function ms(v: number): string {
  return Number.isFinite(v) ? `${v.toFixed(1)} ms` : '-';
}
