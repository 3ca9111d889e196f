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
const FENCE = Symbol('chorus.writeFence');

/** What an undici interceptor sees of a request, and how it fails one (undici's dispatch handler). */
interface DispatchOptions { readonly method?: string; readonly path?: string }
interface RequestController { abort(reason: Error): void }
interface DispatchHandler { onRequestStart?: (controller: RequestController, context: unknown) => void }
type Dispatch = (opts: DispatchOptions, handler: DispatchHandler) => boolean;
interface ComposableDispatcher { compose(interceptor: (dispatch: Dispatch) => Dispatch): unknown }

/** A write to the API refused before it was sent: this replica is no longer the leader. */
export class FencedApiWriteError extends Error {}

/**
 * @kubernetes/client-node 2.x builds a new undici Agent for every request whenever a TLS option
 * is set (a CA file, as in every pod, or skip-verify), and each Agent keeps its sockets open: a
 * coordinator annotating 5,000 nodes held 10,000 sockets and hundreds of MB. Share one dispatcher
 * per cluster for the life of the KubeConfig (TLS material does not change while we run; bearer
 * tokens, which do, travel in headers).
 */
export function shareDispatcher(config: KubeConfig): KubeConfig {
  const target = config as unknown as { createDispatcher: (cluster: { name?: string; server?: string } | null, agentOptions: unknown) => unknown; [SHARED]?: boolean; [FENCE]?: () => void };
  if (target[SHARED]) return config;
  const original = target.createDispatcher.bind(config);
  const cache = new Map<string, unknown>();
  // the write fence (fenceApiWrites) is checked in onRequestStart, which undici calls on a
  // connected socket right before it writes the request (a request that waited for a connection,
  // or for a TLS handshake, is checked when it is about to go out, not when it was queued)
  const fenced = (dispatch: Dispatch): Dispatch => (opts, handler) => {
    const write = opts.method !== undefined && opts.method !== 'GET' && opts.method !== 'HEAD';
    if (!write || (opts.path ?? '').startsWith('/apis/coordination.k8s.io/')) return dispatch(opts, handler);
    const checked = new Proxy(handler, {
      get(h, prop) {
        if (prop === 'onRequestStart') {
          return (controller: RequestController, context: unknown) => {
            try {
              target[FENCE]?.();
            } catch (err) {
              controller.abort(err instanceof Error ? err : new FencedApiWriteError(String(err)));
              return;
            }
            h.onRequestStart?.(controller, context);
          };
        }
        const v: unknown = Reflect.get(h, prop, h);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(h) : v;
      },
    });
    return dispatch(opts, checked);
  };
  target.createDispatcher = (cluster, agentOptions) => {
    const key = `${cluster?.name ?? ''}|${cluster?.server ?? ''}`;
    if (!cache.has(key)) {
      const d = original(cluster, agentOptions) as ComposableDispatcher | undefined;
      cache.set(key, d && typeof d.compose === 'function' ? d.compose(fenced) : d);
    }
    return cache.get(key);
  };
  target[SHARED] = true;
  return config;
}

/**
 * From now on every write this KubeConfig's clients make (not a read, not a Lease request: those
 * are how leadership is kept) passes `fence` first, at the moment it is handed to a connection;
 * `fence` throws when this replica may no longer write. A request already handed over when the
 * process froze still goes out when it thaws: that window is the time to hand over one request.
 */
export function fenceApiWrites(config: KubeConfig, fence: () => void): void {
  shareDispatcher(config);
  (config as unknown as { [FENCE]?: () => void })[FENCE] = fence;
}

const DEADLINE = Symbol('chorus.requestDeadline');

/** Every API request's deadline, answer included (watches are not requests of this kind). */
export const API_REQUEST_DEADLINE_MS = 30_000;

interface SignalContext { getSignal(): AbortSignal | undefined; setSignal(signal: AbortSignal): void }

/**
 * client-node sends a request with no deadline at all: an API server (or a proxy before it) that
 * accepts the connection and never answers would stall a reconcile forever. Give every request
 * made through this KubeConfig's API clients a total deadline; the watch streams are apart
 * (informer.ts restarts them).
 */
export function boundRequests(config: KubeConfig, deadlineMs = API_REQUEST_DEADLINE_MS): KubeConfig {
  const target = config as unknown as { applySecurityAuthentication: (context: SignalContext) => Promise<void>; [DEADLINE]?: boolean };
  if (target[DEADLINE]) return config;
  const original = target.applySecurityAuthentication.bind(config);
  target.applySecurityAuthentication = async (context) => {
    await original(context);
    if (!context.getSignal()) context.setSignal(AbortSignal.timeout(deadlineMs));
  };
  target[DEADLINE] = true;
  return config;
}

/**
 * A KubeConfig of its own over the same clusters, users and contexts (tokens, files and exec
 * plugins as loaded): per-client settings such as the write fence stay with their owner when
 * several components share one loaded configuration (as tests and the lab do).
 */
export function ownKubeConfig(config: KubeConfig): KubeConfig {
  const copy = new KubeConfig();
  copy.loadFromOptions({ clusters: config.clusters, users: config.users, contexts: config.contexts, currentContext: config.currentContext });
  return copy;
}

export function makeClients(config: KubeConfig): KubeClients {
  shareDispatcher(config);
  boundRequests(config);
  return { config, core: config.makeApiClient(CoreV1Api), coordination: config.makeApiClient(CoordinationV1Api) };
}

/** Request options that send a body as an RFC 7386 JSON merge patch. */
export function mergePatch(): ConfigurationOptions<ObservableMiddleware> {
  return setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
}
