/**
 * Reads or sets devices' features over ethtool netlink (agent/ethtool-netlink.ts) from inside a
 * network namespace (run with `ip netns exec`): the socket works in the namespace its process
 * runs in. Input (stdin, JSON): a list of { dev, set?: [name, on][] }, done in order on one
 * socket. Output: for each, the features on after it ({ on: names }) or { error }.
 */
import { readFileSync } from 'node:fs';
import { ethtoolNetlink } from '../../agent/ethtool-netlink.ts';

const requests = JSON.parse(readFileSync(0, 'utf8')) as { dev: string; set?: [string, boolean][] }[];
const features = ethtoolNetlink(5_000);
const results: ({ on: string[] } | { error: string })[] = [];
for (const { dev, set } of requests) {
  try {
    if (set) await features.set(dev, new Map(set));
    results.push({ on: [...(await features.get(dev))].filter(([, on]) => on).map(([name]) => name).sort() });
  } catch (err) {
    results.push({ error: err instanceof Error ? `${err.constructor.name}: ${err.message}` : String(err) });
  }
}
features.close();
console.log(JSON.stringify(results));
