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
