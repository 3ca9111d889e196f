/**
 * Lab processes supervised the way kubelet runs pods: each runs `chorus-kube-router <role>` inside
 * its namespace, logs to a file, and is started again when it dies: after about a second, with
 * exponential backoff (up to 30 s) while it keeps dying soon after start.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../shared/log.ts';

export const CLI_PATH = fileURLToPath(new URL('../../bin/cli.ts', import.meta.url));

export interface ProcessSpec {
  readonly name: string;
  readonly netns: string;
  readonly args: readonly string[];
  readonly logFile: string;
}

const HEALTHY_AFTER_MS = 3_000;
const FIRST_RESTART_MS = 1_000;
const MAX_RESTART_MS = 30_000;

export class SupervisedProcess {
  readonly spec: ProcessSpec;
  private child: ChildProcess | undefined;
  private stopping = false;
  private startedAt = 0;
  private delay = FIRST_RESTART_MS;
  private timer: NodeJS.Timeout | undefined;
  restarts = 0;
  private readonly log: Logger;
  private readonly onRestart: () => void;

  constructor(spec: ProcessSpec, log: Logger, onRestart: () => void) {
    this.spec = spec;
    this.log = log.child({ process: spec.name });
    this.onRestart = onRestart;
  }

  get pid(): number | undefined {
    return this.child?.exitCode === null ? this.child.pid : undefined;
  }

  start(): void {
    const fd = openSync(this.spec.logFile, 'a');
    const child = spawn('ip', ['netns', 'exec', this.spec.netns, process.execPath, '--disable-warning=ExperimentalWarning', CLI_PATH, ...this.spec.args], {
      stdio: ['ignore', fd, fd],
      detached: true,
    });
    closeSync(fd);
    this.child = child;
    this.startedAt = Date.now();
    child.on('exit', (code, signal) => {
      if (this.stopping) return;
      const lived = Date.now() - this.startedAt;
      this.delay = lived > HEALTHY_AFTER_MS ? FIRST_RESTART_MS : Math.min(this.delay * 2, MAX_RESTART_MS);
      const wait = lived > HEALTHY_AFTER_MS ? FIRST_RESTART_MS : this.delay;
      this.log.warn({ code, signal, livedMs: lived, restartInMs: wait, logFile: this.spec.logFile }, 'lab process exited; restarting');
      this.timer = setTimeout(() => {
        if (this.stopping) return;
        this.restarts++;
        this.start();
        this.onRestart();
      }, wait);
    });
  }

  /** SIGTERM, then SIGKILL after graceMs; resolves once the process is gone. */
  async stop(graceMs = 5_000): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(kill);
  }
}

/** Whether a process id is alive (signal 0 probes without sending anything). */
export function isAlive(pid: number | undefined): boolean {
  if (pid === undefined || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
