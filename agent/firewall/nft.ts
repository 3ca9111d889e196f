/**
 * Applies and observes the agent's nftables table with the `nft` command. Drift is found by
 * comparing the table's stateless listing with the listing recorded right after our last apply.
 */
import { runCommand, type CommandResult } from '../../shared/command.ts';
import { FIREWALL_FAMILY, FIREWALL_TABLE, LEGACY_FIREWALL_FAMILY, replaceTableScript } from './ruleset.ts';

export class NftError extends Error {}

export interface Nft {
  /** The table's name. */
  readonly table: string;
  /** The table as `nft -s list table` prints it, or undefined when it does not exist. */
  list(): Promise<string | undefined>;
  /** Replaces the table atomically. */
  replace(ruleset: string): Promise<void>;
  /** Deletes the table if it exists; true when it did. */
  remove(): Promise<boolean>;
  /** Packets dropped by the VXLAN checks (interface, source, IPv6) so far. */
  droppedPackets(): Promise<number>;
}

/** `table`: the instance's table (InstanceNames.firewallTable); `deadlineMs`: each command's deadline. */
export function nftCommand(netns?: string, table: string = FIREWALL_TABLE, deadlineMs?: number): Nft {
  const run = (args: string[], input?: string): Promise<CommandResult> => {
    const cmd = netns ? ['ip', ['netns', 'exec', netns, 'nft', ...args]] as const : ['nft', args] as const;
    return runCommand(cmd[0], cmd[1], { ...(input !== undefined ? { input } : {}), ...(deadlineMs !== undefined ? { deadlineMs } : {}) });
  };
  return {
    table,
    async list() {
      const r = await run(['-s', 'list', 'table', FIREWALL_FAMILY, table]);
      if (r.exitCode !== 0) {
        if (/No such file or directory|does not exist/.test(r.stderr)) return undefined;
        throw new NftError(`nft list table ${table} failed: ${r.stderr.trim()}`);
      }
      return r.stdout.trim();
    },
    async replace(ruleset) {
      const r = await run(['-f', '-'], replaceTableScript(ruleset, table));
      if (r.exitCode !== 0) throw new NftError(`nft: replacing table ${table} failed: ${r.stderr.trim()}`);
    },
    async remove() {
      const r = await run(['delete', 'table', FIREWALL_FAMILY, table]);
      const legacy = await run(['delete', 'table', LEGACY_FIREWALL_FAMILY, table]);
      return r.exitCode === 0 || legacy.exitCode === 0;
    },
    async droppedPackets() {
      const r = await run(['list', 'chain', FIREWALL_FAMILY, table, 'input']);
      return [...r.stdout.matchAll(/counter packets (\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
    },
  };
}
