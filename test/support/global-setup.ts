/**
 * Vitest global setup: gives the e2e suites one directory for this run (each test file makes its
 * own lab directory inside it, test/support/lab.ts), and on teardown removes every lab still in
 * any of them (a failed or interrupted test must not leave namespaces behind), plus leftover lab
 * namespaces of earlier runs that were killed.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { TestProject } from 'vitest/node';

const CLI = fileURLToPath(new URL('../../bin/chorus-kube-router', import.meta.url));

declare module 'vitest' {
  export interface ProvidedContext { labDir: string }
}

async function downAll(labDir: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const r = await execa(CLI, ['lab', 'down', '--all'], { env: { CHORUS_LAB_DIR: labDir }, reject: false });
  if (r.exitCode !== 0) console.warn(`lab cleanup: ${String(r.stderr)}`);
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const labDir = mkdtempSync(join(tmpdir(), 'chorus-e2e-'));
  project.provide('labDir', labDir);
  await downAll(labDir);
  return async () => {
    for (const d of readdirSync(labDir, { withFileTypes: true })) if (d.isDirectory()) await downAll(join(labDir, d.name));
    rmSync(labDir, { recursive: true, force: true });
  };
}
