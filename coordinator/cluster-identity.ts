/**
 * This cluster's identity on a shared device: every object a driver makes carries it in its
 * ownership marker (F5: description; Citrix: a claim in a policy string map), so several clusters
 * can share one device and none ever changes or removes another's objects.
 *
 * `--cluster-id` when given; otherwise the UID of the `kube-system` namespace, which Kubernetes
 * gives each cluster once and never changes (the same choice as Cilium's and Istio's cluster
 * identities). Reading it is retried with backoff while the API server is unreachable; a refusal
 * (403) is not retried and names the fix.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { CoreV1Api } from '@kubernetes/client-node';
import { ConfigError } from '../shared/cli-args.ts';
import { exponentialBackoff, sleep } from '../shared/backoff.ts';
import type { Logger } from '../shared/log.ts';
import type { InstanceNames } from '../shared/keys.ts';

export const CLUSTER_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

const FIX = "set --cluster-id (CHORUS_CLUSTER_ID), for example to the output of `kubectl get namespace kube-system -o jsonpath='{.metadata.uid}'`";

const statusOf = (err: unknown): number | undefined => {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'number' ? code : undefined;
};

export interface ClusterIdentityOptions {
  readonly kubeConfig: KubeConfig;
  readonly log: Logger;
  /** How long to keep trying while the API server does not answer (default 120 s; then the process exits and is restarted). */
  readonly giveUpAfterMs?: number;
  readonly signal?: AbortSignal;
}

/** The kube-system namespace's UID, read through the API. */
export async function clusterIdFromApi(o: ClusterIdentityOptions): Promise<string> {
  const core = o.kubeConfig.makeApiClient(CoreV1Api);
  const backoff = exponentialBackoff(500, 4_000);
  const deadline = performance.now() + (o.giveUpAfterMs ?? 120_000);
  for (;;) {
    try {
      const ns = await core.readNamespace({ name: 'kube-system' });
      const uid = ns.metadata?.uid;
      if (!uid) throw new ConfigError(`the kube-system namespace has no UID to derive this cluster's identity from; ${FIX}`);
      return uid;
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      const status = statusOf(err);
      const why = err instanceof Error ? err.message.split('\n')[0] ?? '' : String(err);
      if (status !== undefined && status >= 400 && status < 500) {
        throw new ConfigError(`cannot read the kube-system namespace to derive this cluster's identity (HTTP ${status}: grant get on namespaces/kube-system as deploy/base/rbac.yaml does, or ${FIX})`);
      }
      if (performance.now() > deadline || o.signal?.aborted) throw new Error(`cannot read the kube-system namespace to derive this cluster's identity: ${why}; ${FIX}`);
      const delay = backoff.next();
      o.log.warn({ err: why, retryInMs: delay }, 'reading the kube-system namespace (cluster identity) failed; retrying');
      await sleep(delay, o.signal);
    }
  }
}

/** The identity to use: the setting when given, else the kube-system namespace's UID. */
export async function resolveClusterId(setting: string | undefined, o: ClusterIdentityOptions): Promise<string> {
  if (setting !== undefined) return setting;
  return clusterIdFromApi(o);
}

/**
 * The owner written into device markers: the cluster identity, and the instance when there is
 * one (`<cluster>/<instance>`), so two instances of one cluster on one device are told apart too.
 */
export function deviceOwner(clusterId: string, names: InstanceNames): string {
  return names.instance ? `${clusterId}/${names.instance}` : clusterId;
}
