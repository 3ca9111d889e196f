/** Drives the lab through its CLI, as a user or a later test suite would. */
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { execa, type Result } from 'execa';
import type { LabDocument } from '../lab/lab.ts';

export const CLI = fileURLToPath(new URL('../../bin/chorus-kube-router', import.meta.url));
export const IS_ROOT = process.getuid?.() === 0;
export const E2E_SKIP_REASON = 'e2e skipped: building network namespaces needs root (run make test as root)';

/** A lab directory of this test run's own (global-setup.ts), so tests never touch a user's lab. */
export const LAB_DIR = inject('labDir');

export async function cli(args: string[], opts: { reject?: boolean; timeoutMs?: number } = {}): Promise<Result> {
  return execa(CLI, args, { env: { CHORUS_LAB_DIR: LAB_DIR }, reject: opts.reject ?? true, timeout: opts.timeoutMs ?? 180_000 });
}

export async function labUp(args: string[] = []): Promise<LabDocument> {
  const r = await cli(['lab', 'up', '--json', ...args]);
  return JSON.parse(String(r.stdout)) as LabDocument;
}

export async function labStatus(): Promise<LabDocument> {
  return JSON.parse(String((await cli(['lab', 'status', '--json'])).stdout)) as LabDocument;
}

export async function inNetns(netns: string, command: string[], reject = false): Promise<Result> {
  return execa('ip', ['netns', 'exec', netns, ...command], { reject });
}

export async function pingOnce(netns: string, ip: string): Promise<boolean> {
  return (await inNetns(netns, ['ping', '-c', '1', '-W', '1', '-n', '-q', ip])).exitCode === 0;
}

export async function labNamespaces(prefix: string): Promise<string[]> {
  const r = await execa('ip', ['netns', 'list'], { reject: false });
  return String(r.stdout).split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith(`${prefix}-`));
}

/** A client for the lab's API server, through the host-side kubeconfig. */
export function labKubeConfig(doc: LabDocument): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(doc.kubeconfig);
  return kc;
}

export function labCore(doc: LabDocument): CoreV1Api {
  return labKubeConfig(doc).makeApiClient(CoreV1Api);
}

/** Removes a lab a suite brought up (if it got that far). */
export async function labDown(doc: LabDocument | undefined): Promise<void> {
  if (doc) await cli(['lab', 'down', '--prefix', doc.prefix], { reject: false });
}
