/**
 * Every subprocess the components run (`ip`, `bridge`, `nft`, `ethtool`, `ping`) goes through
 * here, with a deadline: a command that hangs (a wedged netlink lock, an `nft` waiting on a busy
 * kernel) is killed with SIGKILL when its deadline passes and the caller gets an error that names
 * it, so a reconcile pass fails and is retried with backoff instead of waiting forever.
 */
import { execa } from 'execa';

export interface CommandResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A command killed at its deadline. */
export class CommandTimeoutError extends Error {}

/** Default deadline of one command (the agent's and gateway's --command-deadline). */
export const DEFAULT_COMMAND_DEADLINE_MS = 10_000;

export interface CommandOptions {
  /** Written to the command's standard input. */
  readonly input?: string;
  readonly deadlineMs?: number;
}

/** Runs `file args`; a non-zero exit is returned (exitCode), a deadline passed is thrown. */
export async function runCommand(file: string, args: readonly string[], opts: CommandOptions = {}): Promise<CommandResult> {
  const deadlineMs = opts.deadlineMs ?? DEFAULT_COMMAND_DEADLINE_MS;
  const r = await execa(file, [...args], {
    reject: false, timeout: deadlineMs, killSignal: 'SIGKILL',
    ...(opts.input !== undefined ? { input: opts.input } : {}),
  });
  if (r.timedOut) {
    throw new CommandTimeoutError(`${file} ${args.join(' ')} did not finish within ${deadlineMs / 1000} s: killed`);
  }
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
