/** The manifests under deploy/ as parsed objects (every YAML document of every file but kustomizations). */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { loadAll } from 'js-yaml';

export const DEPLOY_DIR = new URL('../../deploy/', import.meta.url).pathname;

export interface Manifest {
  readonly file: string;
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  readonly [field: string]: unknown;
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return yamlFiles(p);
    return p.endsWith('.yaml') && !f.startsWith('kustomization') ? [p] : [];
  });
}

export function loadManifests(dir = DEPLOY_DIR): Manifest[] {
  return yamlFiles(dir).flatMap((path) =>
    loadAll(readFileSync(path, 'utf8'))
      .filter((d): d is Record<string, unknown> => typeof d === 'object' && d !== null)
      .map((d) => ({ ...d, file: relative(dir, path) }) as Manifest));
}

/**
 * The manifests `kubectl apply -k <dir>` applies, for a kustomization that only lists resources
 * (files, or directories with their own such kustomization), in order. Overlays with patches
 * (deploy/instance-b/) are rendered by the real kustomize in the tests that need them.
 */
export function installManifests(dir = DEPLOY_DIR): Manifest[] {
  const k = loadAll(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'))[0] as { resources: string[] };
  const all = loadManifests();
  return k.resources.flatMap((r) => {
    const path = join(dir, r);
    if (statSync(path).isDirectory()) return installManifests(path);
    return all.filter((m) => m.file === relative(DEPLOY_DIR, path));
  });
}

/** An overlay (deploy/instance-b) as `kubectl kustomize` renders it: the real kustomize applies its renames and patches. */
export function renderedManifests(dir: string): Manifest[] {
  const out = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
  return loadAll(out)
    .filter((d): d is Record<string, unknown> => typeof d === 'object' && d !== null)
    .map((d) => ({ ...d, file: relative(DEPLOY_DIR, dir) }) as Manifest);
}
