// The shipped alerts (deploy/monitoring/prometheus-rule.yaml), checked by Debian's promtool: the
// rules parse, and each fires for its fault after its `for` and not for the healthy case
// (test/fixtures/alerts.test.yaml). The same rules are evaluated by a real Prometheus scraping the
// lab in test/e2e/instances.test.ts.
import { describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { runCommand } from '../../shared/command.ts';
import { prometheusBinary, ruleGroups } from '../support/prometheus.ts';

const FIXTURE = new URL('../fixtures/alerts.test.yaml', import.meta.url).pathname;

function withRules<T>(rules: unknown, run: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'alerts-'));
  writeFileSync(join(dir, 'rules.yaml'), dump(rules));
  copyFileSync(FIXTURE, join(dir, 'alerts.test.yaml'));
  return run(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

describe('alert rules (promtool)', () => {
  it('parse and check clean', async () => {
    await withRules(ruleGroups(), async (dir) => {
      const r = await runCommand(prometheusBinary('promtool'), ['check', 'rules', join(dir, 'rules.yaml')], { deadlineMs: 60_000 });
      expect(r.exitCode, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/SUCCESS: 9 rules found/);
    });
  });

  it('each alert fires for its fault after its `for`, and not for the healthy case beside it', async () => {
    await withRules(ruleGroups(), async (dir) => {
      const r = await runCommand(prometheusBinary('promtool'), ['test', 'rules', join(dir, 'alerts.test.yaml')], { deadlineMs: 60_000 });
      expect(r.exitCode, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain('SUCCESS');
    });
  });

  it('the tests can fail: with an alert\'s `for` halved, promtool reports it firing early', async () => {
    const rules = ruleGroups();
    const noLeader = rules.groups[0]?.rules.find((x) => x.alert === 'ChorusNoLeader');
    if (noLeader) noLeader.for = '30s';
    await withRules(rules, async (dir) => {
      const r = await runCommand(prometheusBinary('promtool'), ['test', 'rules', join(dir, 'alerts.test.yaml')], { deadlineMs: 60_000 });
      expect(r.exitCode).not.toBe(0);
      expect(r.stdout + r.stderr).toMatch(/ChorusNoLeader/);
    });
  });
});
