/**
 * Lab processes supervised the way kubelet runs pods: each runs `chorus-kube-router <role>` inside
 * its namespace, logs to a file, and is started again when it dies: after about a second, with
 * exponential backoff (up to 30 s) while it keeps dying soon after start.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../shared/log.ts';

export const CLI_PATH = fileURLToPath(new URL('../../bin/cli.ts', import.meta.url));
/** The CLI built ahead of time (`make bundle`), as the images run it. */
export const BUNDLE_PATH = fileURLToPath(new URL('../../dist/chorus-kube-router.js', import.meta.url));
/** Where the product's roles run from in a lab: TypeScript sources (tests) or the bundle (images, `make run`). */
export type LabComponents = 'sources' | 'bundle';
/** The commands the bundle carries; everything else (the lab's API server, emulators) runs from sources. */
const BUNDLED_COMMANDS = new Set(['coordinator', 'agent', 'gateway', 'status', 'doctor']);

export type ImageDockerfile = 'Dockerfile.agent' | 'Dockerfile.coordinator';

/** An image's ENTRYPOINT, as its Dockerfile's exec form lists it. */
export function imageEntrypoint(dockerfile: ImageDockerfile): string[] {
  const path = fileURLToPath(new URL(`../../${dockerfile}`, import.meta.url));
  const line = readFileSync(path, 'utf8').split('\n').find((l) => l.startsWith('ENTRYPOINT '));
  const entry = line ? (JSON.parse(line.slice('ENTRYPOINT '.length)) as unknown) : undefined;
  if (!Array.isArray(entry) || entry[0] !== 'node') throw new Error(`${path}: expected an exec-form ENTRYPOINT ["node", flags..., script]`);
  return entry as string[];
}

const nodeFlagsCache = new Map<ImageDockerfile, string[]>();

/**
 * The Node flags an image's ENTRYPOINT runs the product with (what stands between `node` and the
 * script): the lab runs each role as its image does (the agent image's smaller young generation,
 * docs/benchmarks.md).
 */
export function imageNodeFlags(dockerfile: ImageDockerfile): string[] {
  let flags = nodeFlagsCache.get(dockerfile);
  if (!flags) {
    flags = imageEntrypoint(dockerfile).slice(1).filter((a) => a.startsWith('--'));
    nodeFlagsCache.set(dockerfile, flags);
  }
  return flags;
}

/** Node's arguments to run the CLI with `args`, from sources or from the bundle, with its image's Node flags. */
export function cliArgs(args: readonly string[], components: LabComponents = 'sources'): string[] {
  const role = args[0] ?? '';
  const entry = components === 'bundle' && BUNDLED_COMMANDS.has(role) ? BUNDLE_PATH : CLI_PATH;
  const flags = !BUNDLED_COMMANDS.has(role) ? [] : imageNodeFlags(role === 'coordinator' ? 'Dockerfile.coordinator' : 'Dockerfile.agent');
  return ['--disable-warning=ExperimentalWarning', ...flags, entry, ...args];
}

export interface ProcessSpec {
  readonly name: string;
  readonly netns: string;
  readonly args: readonly string[];
  readonly logFile: string;
  /** Run as a pod with this ServiceAccount: in-cluster configuration, as the kubelet provides it. */
  readonly serviceAccount?: PodServiceAccount;
  /** More environment (a pod's env: NODE_NAME and the like). */
  readonly env?: Readonly<Record<string, string>>;
  /** Run from sources (default) or from the bundle. */
  readonly components?: LabComponents;
}

/** What the kubelet gives a pod to reach the API: the mounted token, CA and namespace, and the service address. */
export interface PodServiceAccount {
  /** Directory holding `token`, `ca.crt` and `namespace`, mounted where pods find them. */
  readonly dir: string;
  readonly host: string;
  readonly port: number;
}

export const SERVICE_ACCOUNT_MOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * The command that starts a lab process in its network namespace; with a ServiceAccount, also in
 * a private mount namespace where a fresh tmpfs covers /run (nothing of the host's /run is
 * touched or created) and the account's directory is bind-mounted at the path every pod reads,
 * with KUBERNETES_SERVICE_HOST/PORT set, so @kubernetes/client-node's in-cluster loading is the
 * path taken, as in a real pod.
 */
export function podCommand(spec: ProcessSpec, node: string, nodeArgs: readonly string[]): { command: string; args: string[]; env: NodeJS.ProcessEnv } {
  const env: NodeJS.ProcessEnv = { ...process.env, ...spec.env };
  const sa = spec.serviceAccount;
  if (!sa) return { command: 'ip', args: ['netns', 'exec', spec.netns, node, ...nodeArgs], env };
  delete env.KUBECONFIG;
  env.KUBERNETES_SERVICE_HOST = sa.host;
  env.KUBERNETES_SERVICE_PORT = String(sa.port);
  const script = `mount -t tmpfs -o mode=0755,size=1m chorus-lab-pod /run && mkdir -p ${SERVICE_ACCOUNT_MOUNT} && mount --bind -o ro "$0" ${SERVICE_ACCOUNT_MOUNT} && exec "$@"`;
  return { command: 'ip', args: ['netns', 'exec', spec.netns, 'unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', script, sa.dir, node, ...nodeArgs], env };
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
    const { command, args, env } = podCommand(this.spec, process.execPath, cliArgs(this.spec.args, this.spec.components));
    const child = spawn(command, args, { stdio: ['ignore', fd, fd], detached: true, env });
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
