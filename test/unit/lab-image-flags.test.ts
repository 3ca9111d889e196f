// The lab runs each role with the Node flags of the image that ships it (read from the
// Dockerfiles' ENTRYPOINT), so what `make bench` and `make run` measure is what a cluster runs.
import { describe, expect, it } from 'vitest';
import { BUNDLE_PATH, CLI_PATH, cliArgs, imageEntrypoint, imageNodeFlags } from '../lab/processes.ts';

describe('lab processes run as their images do', () => {
  it('the agent image bounds the young generation (not the old generation\'s growth: that slowed its start); the lab reads that from Dockerfile.agent', () => {
    expect(imageEntrypoint('Dockerfile.agent')).toContain('--max-semi-space-size=1');
    expect(imageEntrypoint('Dockerfile.agent')).not.toContain('--heap-growing-percent=25');
    expect(imageNodeFlags('Dockerfile.agent')).toEqual(imageEntrypoint('Dockerfile.agent').filter((a) => a.startsWith('--')));
  });

  it('so does the coordinator image (the first sync of a large cluster peaks lower), and the lab runs the coordinator so', () => {
    expect(imageEntrypoint('Dockerfile.coordinator')).toContain('--max-semi-space-size=1');
    expect(imageEntrypoint('Dockerfile.coordinator')).toContain('--heap-growing-percent=25');
    expect(cliArgs(['coordinator'], 'bundle')).toContain('--max-semi-space-size=1');
    expect(cliArgs(['coordinator'], 'bundle')).toContain('--heap-growing-percent=25');
  });

  it('agent, gateway, doctor and status run with the agent image\'s flags, the coordinator with its own, lab tools with none', () => {
    for (const role of ['agent', 'gateway', 'doctor', 'status']) {
      expect(cliArgs([role, '--x'], 'bundle')).toEqual(['--disable-warning=ExperimentalWarning', ...imageNodeFlags('Dockerfile.agent'), BUNDLE_PATH, role, '--x']);
      expect(cliArgs([role], 'sources')).toContain('--max-semi-space-size=1');
    }
    expect(cliArgs(['coordinator'], 'sources')).toEqual(['--disable-warning=ExperimentalWarning', ...imageNodeFlags('Dockerfile.coordinator'), CLI_PATH, 'coordinator']);
    expect(cliArgs(['apiserver'], 'bundle')).toEqual(['--disable-warning=ExperimentalWarning', CLI_PATH, 'apiserver']);
  });
});
