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

export function makeClients(config: KubeConfig): KubeClients {
  return { config, core: config.makeApiClient(CoreV1Api), coordination: config.makeApiClient(CoordinationV1Api) };
}

/** Request options that send a body as an RFC 7386 JSON merge patch. */
export function mergePatch(): ConfigurationOptions<ObservableMiddleware> {
  return setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
}
