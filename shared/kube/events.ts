/**
 * Records Kubernetes Events about an object (as kubelet does for Nodes: in the "default"
 * namespace). Each distinct (reason, message) is recorded once per change, so a problem that
 * persists does not flood the API; a changed message is a new Event.
 */
import type { CoreV1Api, V1ObjectReference } from '@kubernetes/client-node';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import { PRODUCT } from '../keys.ts';

export interface EventRecorder {
  warning(reason: string, message: string): void;
  normal(reason: string, message: string): void;
}

/** `product`: the instance's product name (InstanceNames.product), the Events' source. */
export function nodeEventRecorder(core: CoreV1Api, nodeName: string, component: string, log: Logger, product: string = PRODUCT): EventRecorder {
  let last = '';
  const involved: V1ObjectReference = { kind: 'Node', apiVersion: 'v1', name: nodeName, uid: nodeName };
  const record = (type: 'Warning' | 'Normal', reason: string, message: string): void => {
    const key = `${type}|${reason}|${message}`;
    if (key === last) return;
    last = key;
    const now = new Date();
    core.createNamespacedEvent({
      namespace: 'default',
      body: {
        metadata: { generateName: `${nodeName}.${product}.` },
        involvedObject: involved, reason, message, type, count: 1,
        firstTimestamp: now, lastTimestamp: now,
        source: { component: `${product}-${component}`, host: nodeName },
        reportingComponent: `${product}-${component}`, reportingInstance: nodeName,
      },
    }).catch((err: unknown) => log.warn({ err: errorMessage(err), reason }, 'could not record a Kubernetes Event'));
  };
  return {
    warning: (reason, message) => record('Warning', reason, message),
    normal: (reason, message) => record('Normal', reason, message),
  };
}
