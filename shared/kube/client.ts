/**
 * The one place that builds Kubernetes clients. Reads a kubeconfig path when given, else the
 * in-cluster service account, else the default loading rules ($KUBECONFIG, ~/.kube/config).
 */
import {
  CoordinationV1Api, CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions,
  type ConfigurationOptions, type ObservableMiddleware,
} from '@kubernetes/client-node';

export interface KubeClients {
  readonly config: KubeConfig;
  readonly core: CoreV1Api;
  readonly coordination: CoordinationV1Api;
}

export function loadKubeConfig(kubeconfigPath?: string): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfigPath) kc.loadFromFile(kubeconfigPath);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) throw new Error(`kubeconfig ${kubeconfigPath ?? '(default)'} has no current cluster`);
  return kc;
}

const SHARED = Symbol('chorus.sharedDispatcher');

/**
 * @kubernetes/client-node 2.x builds a new undici Agent for every request whenever a TLS option
 * is set (a CA file, as in every pod, or skip-verify), and each Agent keeps its sockets open: a
 * coordinator annotating 5,000 nodes held 10,000 sockets and hundreds of MB. Share one dispatcher
 * per cluster for the life of the KubeConfig (TLS material does not change while we run; bearer
 * tokens, which do, travel in headers).
 */
export function shareDispatcher(config: KubeConfig): KubeConfig {
  const target = config as unknown as { createDispatcher: (cluster: { name?: string; server?: string } | null, agentOptions: unknown) => unknown; [SHARED]?: boolean };
  if (target[SHARED]) return config;
  const original = target.createDispatcher.bind(config);
  const cache = new Map<string, unknown>();
  target.createDispatcher = (cluster, agentOptions) => {
    const key = `${cluster?.name ?? ''}|${cluster?.server ?? ''}`;
    if (!cache.has(key)) cache.set(key, original(cluster, agentOptions));
    return cache.get(key);
  };
  target[SHARED] = true;
  return config;
}

export function makeClients(config: KubeConfig): KubeClients {
  shareDispatcher(config);
  return { config, core: config.makeApiClient(CoreV1Api), coordination: config.makeApiClient(CoordinationV1Api) };
}

/** Request options that send a body as an RFC 7386 JSON merge patch. */
export function mergePatch(): ConfigurationOptions<ObservableMiddleware> {
  return setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
}
