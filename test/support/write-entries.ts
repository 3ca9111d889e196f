/**
 * Run inside a network namespace (`ip netns exec NS node write-entries.ts`): applies the ops
 * read as JSON from stdin with apply.ts and the netlink writer, as the agent and gateway do
 * (links and addresses through `ip`, FDB entries, neighbours and routes over rtnetlink), and
 * prints the refused ones as JSON, for test/e2e/netlink-writer.test.ts. Netlink writes the
 * namespace the process is in, so it cannot be driven from the test process itself.
 */
import { readFileSync } from 'node:fs';
import { ipRoute } from '../../shared/iproute.ts';
import { applyOps } from '../../agent/overlay/apply.ts';
import { netlinkWriter } from '../../agent/overlay/netlink-writer.ts';
import type { Op } from '../../agent/overlay/state.ts';

const ops = JSON.parse(readFileSync(0, 'utf8')) as Op[];
const writer = netlinkWriter();
try {
  await applyOps(ipRoute(), ops, writer);
  console.log(JSON.stringify({ ok: true }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: err instanceof Error ? err.message : String(err) }));
} finally {
  writer.close();
}
