import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { configurationReference } from '../../scripts/config-reference.ts';

describe('docs/configuration.md', () => {
  it('lists every flag, environment name and default the commands accept (regenerate with node scripts/config-reference.ts > docs/configuration.md)', () => {
    expect(readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8')).toBe(configurationReference());
  });
});

describe('deploy/settings.example.yaml', () => {
  it('comments every coordinator setting the ConfigMap can carry (regenerate with node scripts/settings-example.ts > deploy/settings.example.yaml)', async () => {
    const { settingsExample } = await import('../../scripts/settings-example.ts');
    expect(readFileSync(new URL('../../deploy/settings.example.yaml', import.meta.url), 'utf8')).toBe(settingsExample());
  });
});

describe('docs/metrics.md', () => {
  it('lists every metric the code registers', async () => {
    const fs = await import('node:fs');
    const path = await import('node:path');
    const readdirSync = (d: string): string[] => fs.readdirSync(d);
    const isDir = (p: string): boolean => fs.statSync(p).isDirectory();
    const join = (...parts: string[]): string => path.join(...parts);
    const root = new URL('../../', import.meta.url).pathname;
    const files = (dir: string): string[] => readdirSync(dir).flatMap((f) => (isDir(join(dir, f)) ? files(join(dir, f)) : f.endsWith('.ts') ? [join(dir, f)] : []));
    const source = ['agent', 'coordinator', 'shared'].flatMap((d) => files(join(root, d))).map((f) => readFileSync(f, 'utf8')).join('\n');
    const names = new Set<string>();
    for (const m of source.matchAll(/\.(?:counter|gauge|histogram)\(\s*['`]([a-z_${}.]+)['`]/g)) {
      const name = m[1] ?? '';
      if (name.includes('${p}')) names.add(name.replace('${p}', 'chorus_agent'));
      else names.add(name);
    }
    expect(names.size).toBeGreaterThan(15);
    const doc = readFileSync(join(root, 'docs/metrics.md'), 'utf8');
    for (const n of names) expect(doc, n).toContain(`\`${n}\``);
  });
});
