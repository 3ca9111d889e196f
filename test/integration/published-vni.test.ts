// Upgrading across the change of the default VNI (4096 -> 100000): a coordinator whose --vni is not
// set keeps the VNI its hub ConfigMap already publishes, so an install that relied on the old
// default is not moved to a second overlay; a VNI that is set always wins.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CoreV1Api } from '@kubernetes/client-node';
import { COORDINATOR_SPECS } from '../../coordinator/config.ts';
import { keepPublishedVni, publishedVni } from '../../coordinator/published-vni.ts';
import { readSettings, settingGiven } from '../../shared/cli-args.ts';
import { HUB_CONFIGMAP } from '../../shared/keys.ts';
import { startTestApiServer, type TestApiServer } from '../support/apiserver.ts';
import { capturingLogger } from '../support/nitro.ts';

let api: TestApiServer;
const REQUIRED = ['--overlay-network', '198.18.16.0/20', '--device-vtep', '198.18.0.3'];

beforeEach(async () => {
  api = await startTestApiServer();
  await api.kubeConfig.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: 'chorus-system' } } });
});
afterEach(async () => {
  await api.close();
});

describe('the VNI across an upgrade', () => {
  it('tells a VNI that was given (flag, environment, older alias, file) from the default', () => {
    const given = (argv: string[], env: NodeJS.ProcessEnv = {}, file = {}): boolean => settingGiven('vni', COORDINATOR_SPECS, [...REQUIRED, ...argv], env, file);
    expect(given([])).toBe(false);
    expect(given(['--vni', '7'])).toBe(true);
    expect(given(['--vni=7'])).toBe(true);
    expect(given([], { CHORUS_VNI: '7' })).toBe(true);
    expect(given([], { VNID: '7' })).toBe(true);
    expect(given([], {}, { vni: '7' })).toBe(true);
    expect(readSettings(REQUIRED, COORDINATOR_SPECS, {}).settings.vni).toBe('100000');
  });

  it('keeps the published VNI when none is given, and says so; a given VNI or a cluster without hub info keeps the setting', async () => {
    const core = api.kubeConfig.makeApiClient(CoreV1Api);
    const read = (): Promise<number | undefined> => publishedVni(api.kubeConfig, 'chorus-system');
    const defaults = readSettings(REQUIRED, COORDINATOR_SPECS, {}).settings;
    const logs = capturingLogger();
    // a fresh install: nothing published, the default stands
    expect(await read()).toBeUndefined();
    expect((await keepPublishedVni(defaults, false, read, logs.log)).vni).toBe('100000');
    // an install from before the change publishes 4096
    await core.createNamespacedConfigMap({ namespace: 'chorus-system', body: { metadata: { name: HUB_CONFIGMAP }, data: { schemaVersion: '1', vni: '4096', port: '4789' } } });
    expect((await keepPublishedVni(defaults, false, read, logs.log)).vni).toBe('4096');
    expect(logs.lines.join('')).toMatch(/"publishedVni":4096.*keeping the VNI this install already publishes/);
    // an operator who sets the VNI moves deliberately
    const chosen = readSettings([...REQUIRED, '--vni', '200'], COORDINATOR_SPECS, {}).settings;
    expect((await keepPublishedVni(chosen, true, read, logs.log)).vni).toBe('200');
    // an API that cannot be read leaves the setting, with a warning
    const failing = (): Promise<number | undefined> => Promise.reject(new Error('connect ECONNREFUSED'));
    expect((await keepPublishedVni(defaults, false, failing, logs.log)).vni).toBe('100000');
    expect(logs.lines.join('')).toContain('could not read the published hub info');
  });
});
