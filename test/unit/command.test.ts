// runCommand: a command that hangs is killed at its deadline and named in the error; a failing
// command's exit code and output come back to the caller.
import { describe, expect, it } from 'vitest';
import { CommandTimeoutError, runCommand } from '../../shared/command.ts';

describe('runCommand', () => {
  it('kills a command at its deadline and says which', async () => {
    const started = performance.now();
    const err = await runCommand('sleep', ['30'], { deadlineMs: 150 }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(CommandTimeoutError);
    expect((err as Error).message).toBe('sleep 30 did not finish within 0.15 s: killed');
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('returns a failing command\'s exit code, stdout and stderr, and feeds it its input', async () => {
    const r = await runCommand('sh', ['-c', 'cat; echo oops >&2; exit 3'], { input: 'in' });
    expect(r).toEqual({ exitCode: 3, stdout: 'in', stderr: 'oops' });
  });
});
