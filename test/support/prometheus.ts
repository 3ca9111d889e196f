/** Debian's promtool and prometheus binaries (scripts/ensure-prometheus.sh, run by `make test`), and the shipped alert rules. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load } from 'js-yaml';

const BIN = new URL('../../.tools/prometheus/usr/bin/', import.meta.url).pathname;
export const RULE_FILE = new URL('../../deploy/monitoring/prometheus-rule.yaml', import.meta.url).pathname;

/** The path of a Prometheus binary; a clear error when the build has not fetched them. */
export function prometheusBinary(name: 'promtool' | 'prometheus'): string {
  const path = join(BIN, name);
  if (!existsSync(path)) throw new Error(`${path} is missing: run \`make test\` (or scripts/ensure-prometheus.sh), which fetches Debian's prometheus package into .tools/`);
  return path;
}

/** The PrometheusRule's spec.groups as a Prometheus rule file's content (`groups:`). */
export function ruleGroups(): { groups: { name: string; rules: Record<string, unknown>[] }[] } {
  const rule = load(readFileSync(RULE_FILE, 'utf8')) as { spec: { groups: { name: string; rules: Record<string, unknown>[] }[] } };
  return { groups: rule.spec.groups };
}
