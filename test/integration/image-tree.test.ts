// The images' file tree, built the way the Dockerfiles build it, runs the product:
// - build stage: only what Dockerfile.* copy (bin/cli.ts, scripts/bundle.ts, shared, agent,
//   coordinator; no test/) bundled by scripts/bundle.ts;
// - final stage: `npm ci --omit=dev` (from the npm cache), bin/chorus-kube-router and the bundle,
//   no TypeScript at all.
// From that tree, the manifests' command (deploy/base/coordinator.yaml: the image's ENTRYPOINT
// with args ["coordinator"]) serves a Node against the embedded API server, and `status` (which
// the docs tell operators to run in the agent's pod) prints it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { CoreV1Api } from '@kubernetes/client-node';
import { load } from 'js-yaml';
import { eventually, startTestApiServer, type TestApiServer } from '../support/apiserver.ts';
import { imageEntrypoint } from '../lab/processes.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
let work: string;
let app: string;
let api: TestApiServer;
let kubeconfig: string;
let coordinator: ChildProcess | undefined;

/** Every file under `dir`, relative to it. */
function files(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((e) => {
    const rel = join(prefix, e.name);
    return e.isDirectory() ? files(dir, rel) : [rel];
  });
}

/** Runs an ENTRYPOINT from the image tree: /app is `app`, `node` is this Node. */
function inImage(command: readonly string[]): { file: string; args: string[] } {
  const [bin, ...rest] = command.map((a) => a.replace(/^\/app\//, `${app}/`));
  return { file: bin === 'node' ? process.execPath : bin!, args: rest };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'chorus-image-'));
  // build stage: what the Dockerfiles copy into /src, with the dev dependencies (esbuild)
  const src = join(work, 'src');
  for (const dir of ['shared', 'agent', 'coordinator']) cpSync(join(REPO, dir), join(src, dir), { recursive: true });
  cpSync(join(REPO, 'bin', 'cli.ts'), join(src, 'bin', 'cli.ts'));
  cpSync(join(REPO, 'scripts', 'bundle.ts'), join(src, 'scripts', 'bundle.ts'));
  copyFileSync(join(REPO, 'package.json'), join(src, 'package.json'));
  symlinkSync(join(REPO, 'node_modules'), join(src, 'node_modules'));
  await execa(process.execPath, ['--disable-warning=ExperimentalWarning', join(src, 'scripts', 'bundle.ts'), join(src, 'dist')]);
  // final stage: production dependencies, the wrapper and the bundle
  app = join(work, 'app');
  cpSync(join(REPO, 'package.json'), join(app, 'package.json'));
  cpSync(join(REPO, 'package-lock.json'), join(app, 'package-lock.json'));
  await execa('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd: app });
  cpSync(join(REPO, 'bin', 'chorus-kube-router'), join(app, 'bin', 'chorus-kube-router'));
  cpSync(join(src, 'dist'), join(app, 'dist'), { recursive: true });

  api = await startTestApiServer();
  kubeconfig = join(work, 'kubeconfig');
  writeFileSync(kubeconfig, api.kubeconfigYaml(), { mode: 0o600 });
  const core = api.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'chorus-system' } } });
  await core.createNode({ body: { metadata: { name: 'node-1' }, spec: { podCIDRs: ['198.19.0.0/24'] }, status: { addresses: [{ type: 'InternalIP', address: '198.18.1.1' }] } } });
}, 180_000);

afterAll(async () => {
  coordinator?.kill('SIGKILL');
  await api?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the images\' file tree, built as the Dockerfiles build it', () => {
  it('holds plain JavaScript only: no TypeScript, no test code, and the dev dependencies left out', () => {
    const shipped = files(app).filter((f) => !f.startsWith('node_modules/'));
    expect(shipped.filter((f) => f.endsWith('.ts'))).toEqual([]);
    expect(shipped.some((f) => f.startsWith('dist/chunks/'))).toBe(true);
    for (const dev of ['esbuild', 'vitest', 'typescript']) expect(existsSync(join(app, 'node_modules', dev)), dev).toBe(false);
    const bundled = files(join(app, 'dist')).map((f) => readFileSync(join(app, 'dist', f), 'utf8')).join('\n');
    expect(bundled).not.toMatch(/EmbeddedApiServer|NitroEmulator/);
  });

  it('runs every role the manifests and the docs name; the lab says it is not there', async () => {
    for (const role of ['coordinator', 'agent', 'gateway', 'status', 'doctor']) {
      const r = await execa(join(app, 'bin', 'chorus-kube-router'), [role, '--help'], { reject: false });
      expect(r.exitCode, `${role} --help: ${r.stderr}`).toBe(0);
      expect(r.stdout).toContain(`chorus-kube-router ${role}`);
    }
    const lab = await execa(join(app, 'bin', 'chorus-kube-router'), ['lab', 'up'], { reject: false });
    expect(lab.exitCode).toBe(2);
    expect(lab.stderr).toContain('the lab is not part of this build');
  });

  it('the coordinator Deployment\'s command serves a node, and status prints it', async () => {
    const deployment = load(readFileSync(join(REPO, 'deploy', 'base', 'coordinator.yaml'), 'utf8').split(/^---$/m).find((d) => /kind: Deployment/.test(d)) ?? '') as
      { spec: { template: { spec: { containers: { name: string; args: string[] }[] } } } };
    const args = deployment.spec.template.spec.containers[0]!.args;
    expect(args).toEqual(['coordinator']);
    const { file, args: entry } = inImage(imageEntrypoint('Dockerfile.coordinator'));
    const log: string[] = [];
    coordinator = spawn(file, [...entry, ...args], {
      env: { PATH: process.env.PATH ?? '', KUBECONFIG: kubeconfig, CHORUS_OVERLAY_NETWORK: '198.18.16.0/20', CHORUS_DEVICE_VTEPS: '198.18.0.3', CHORUS_HEALTH_LISTEN: '127.0.0.1:0', CHORUS_POD_CIDR_SOURCE: 'node' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    coordinator.stdout?.on('data', (d: Buffer) => log.push(d.toString()));
    coordinator.stderr?.on('data', (d: Buffer) => log.push(d.toString()));
    const status = await eventually('status (run from the image tree) lists node-1 with its overlay address', async () => {
      const r = await execa(join(app, 'bin', 'chorus-kube-router'), ['status', '--json'], { env: { KUBECONFIG: kubeconfig }, reject: false });
      if (coordinator?.exitCode !== null) throw new Error(`the coordinator exited (${String(coordinator?.exitCode)}):\n${log.join('')}`);
      return r.exitCode === 0 && /node-1/.test(r.stdout) && /198\.18\.16\.\d+/.test(r.stdout) ? r.stdout : undefined;
    }, 30_000);
    expect(status).toContain('198.18.1.1');
  }, 60_000);
});
