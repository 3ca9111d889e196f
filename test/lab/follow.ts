/**
 * `lab run`'s follow mode: prints a fresh reachability table whenever the cluster's nodes change.
 * Its own module: only `lab run` loads the Kubernetes client for it.
 */
import { KubeConfig, CoreV1Api, type V1Node } from '@kubernetes/client-node';
import { createLogger } from '../../shared/log.ts';
import { errorMessage } from '../../shared/errors.ts';
import { startCache } from '../../shared/kube/informer.ts';
import type { Lab } from './lab.ts';
import { reachabilityTable } from './report.ts';

/** Prints a fresh table whenever the cluster's nodes change. */
export function followNodes(lab: Lab): void {
  const kc = new KubeConfig();
  kc.loadFromFile(lab.kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  let timer: NodeJS.Timeout | undefined;
  let known = '';
  startCache<V1Node>({
    kubeConfig: kc, path: '/api/v1/nodes', log: createLogger({ component: 'lab', level: process.env.CHORUS_LOG_LEVEL ?? 'warn' }), list: () => core.listNode(),
    onChange: () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        void lab.waitConverged(() => undefined, 30_000).then(({ doc, rtt }) => {
          const key = JSON.stringify(doc.nodes.map((n) => [n.name, n.overlayIP]));
          if (key === known) return;
          if (known !== '') process.stdout.write(`\n${new Date().toISOString()} nodes changed\n${reachabilityTable(doc, rtt)}\n`);
          known = key;
        }, (err: unknown) => process.stderr.write(`lab: ${errorMessage(err)}\n`));
      }, 500);
    },
  });
}

