/**
 * iproute2 as a port: `ip`/`bridge` with JSON output for reading, `-batch` for writing, so a
 * reconcile costs a handful of processes however many entries change (one process is ~1.6 ms).
 * A netns name runs the command in that namespace (`ip -n`), for the lab and tests; the agent
 * and gateway themselves run inside their namespace and pass none.
 */
import { runCommand } from './command.ts';

export type IpTool = 'ip' | 'bridge';

export interface IpRoute {
  /** Runs one command and returns its parsed JSON output (`-j`). */
  json(tool: IpTool, args: readonly string[]): Promise<unknown>;
  /** Runs one command for its effect. */
  run(tool: IpTool, args: readonly string[]): Promise<void>;
  /** Runs many commands in one process (`-batch -`, continuing past errors with `-force`). */
  batch(tool: IpTool, lines: readonly string[]): Promise<void>;
}

export class IpRouteError extends Error {}

function netnsArgs(netns: string | undefined): string[] {
  return netns ? ['-n', netns] : [];
}

/** `deadlineMs`: each command's deadline (shared/command.ts), after which it is killed and the call fails. */
export function ipRoute(netns?: string, deadlineMs?: number): IpRoute {
  const base = netnsArgs(netns);
  const where = netns ? ` (netns ${netns})` : '';
  const deadline = deadlineMs !== undefined ? { deadlineMs } : {};
  return {
    async json(tool, args) {
      const r = await runCommand(tool, [...base, '-j', ...args], deadline);
      if (r.exitCode !== 0) throw new IpRouteError(`${tool} ${args.join(' ')}${where} failed: ${r.stderr.trim() || `exit ${String(r.exitCode)}`}`);
      const out = r.stdout.trim();
      return out === '' ? [] : (JSON.parse(out) as unknown);
    },
    async run(tool, args) {
      const r = await runCommand(tool, [...base, ...args], deadline);
      if (r.exitCode !== 0) throw new IpRouteError(`${tool} ${args.join(' ')}${where} failed: ${r.stderr.trim() || `exit ${String(r.exitCode)}`}`);
    },
    async batch(tool, lines) {
      if (lines.length === 0) return;
      const r = await runCommand(tool, [...base, '-force', '-batch', '-'], { input: lines.join('\n') + '\n', ...deadline });
      if (r.exitCode !== 0) {
        throw new IpRouteError(`${tool} -batch${where}: ${lines.length} commands, some failed:\n${r.stderr.trim()}`);
      }
    },
  };
}
