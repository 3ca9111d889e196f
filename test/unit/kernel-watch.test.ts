// The kernel watcher survives its sources failing (issue 13, "agent and kernel faults"): a netlink
// socket error (ENOBUFS on a busy host) asks for a full check and listens on a fresh socket instead
// of crashing the agent (netlink's rtnetlink socket does not re-emit its socket's errors: without a
// listener an 'error' event throws); an `nft monitor` that exits or cannot start is started again
// and asks for a firewall check. The sources are fakes and a throwaway shell process.
import { describe, expect, it } from 'vitest';
import { EventEmitter } from 'node:events';
import { spawn } from 'node:child_process';
import { watchKernel, type RtEvents } from '../../agent/overlay/events.ts';
import { eventually } from '../support/apiserver.ts';
import { silentLogger } from '../../shared/log.ts';

class FakeSocket extends EventEmitter {
  readonly groups: string[] = [];
  readonly raw = Object.assign(new EventEmitter(), { closed: false, close(this: { closed: boolean }) { this.closed = true; } });
  get socket(): RtEvents['socket'] {
    return this.raw;
  }
  addMembership(g: string): void {
    this.groups.push(g);
  }
}

describe('watchKernel', () => {
  it('a netlink socket error asks for a full check and listens again on a fresh socket, never throwing', async () => {
    const sockets: FakeSocket[] = [];
    const changes: string[] = [];
    const w = watchKernel({ device: () => 'chorus-1', index: () => 7, onChange: (k) => changes.push(k), log: silentLogger(), firewall: false },
      { createSocket: () => { const s = new FakeSocket(); sockets.push(s); return s; }, spawnMonitor: () => spawn('true'), restartMs: 10 });
    expect(sockets[0]?.groups).toEqual(['LINK', 'NEIGH', 'IPV4_IFADDR', 'IPV4_ROUTE']);
    expect(() => sockets[0]?.raw.emit('error', Object.assign(new Error('recvmsg ENOBUFS'), { code: 'ENOBUFS' }))).not.toThrow();
    expect(changes).toEqual(['resync']);
    expect(sockets[0]?.raw.closed).toBe(true);
    await eventually('a fresh socket', () => (sockets.length === 2 ? true : undefined), 2_000);
    expect(sockets[1]?.groups).toEqual(['LINK', 'NEIGH', 'IPV4_IFADDR', 'IPV4_ROUTE']);
    // the fresh socket's events are heard
    sockets[1]?.emit('message', [{ kind: 'link', attrs: { ifname: 'chorus-1' }, data: { index: 7 } }]);
    expect(changes).toEqual(['resync', 'link']);
    w.close();
  });

  it('an nft monitor that exits, or cannot be started, is started again and asks for a firewall check', async () => {
    const changes: string[] = [];
    let spawned = 0;
    const w = watchKernel({ device: () => undefined, index: () => undefined, onChange: (k) => changes.push(k), log: silentLogger(), firewall: true, table: 'chorus-kube-router' },
      {
        createSocket: () => new FakeSocket(),
        restartMs: 10,
        spawnMonitor: () => {
          spawned++;
          // first: a monitor that reports our table deleted, then dies; then: a binary that does not exist; then one that stays
          if (spawned === 1) return spawn('sh', ['-c', 'echo "delete table inet chorus-kube-router"; echo "delete table inet chorus-kube-router-b"; exit 3'], { stdio: ['ignore', 'pipe', 'ignore'] });
          if (spawned === 2) return spawn('/nonexistent/nft', ['monitor'], { stdio: ['ignore', 'pipe', 'ignore'] });
          return spawn('sleep', ['30'], { stdio: ['ignore', 'pipe', 'ignore'] });
        },
      });
    await eventually('the third monitor running', () => (spawned === 3 ? true : undefined), 5_000);
    // our table's line (not instance b's), then one check after each restart
    await eventually('three firewall checks', () => (changes.length === 3 ? true : undefined), 5_000);
    expect(changes).toEqual(['firewall', 'firewall', 'firewall']);
    w.close();
  });
});
