/**
 * Publishes whether each node is programmed on the device, in the ConfigMap
 * chorus-kube-router-device (`<node>: programmed` or `<node>: failed: <reason>`, plus `_device`:
 * the device type), for `chorus-kube-router status`. The coordinator writes it for devices it
 * programs (and creates it); the Linux gateway writes it for itself (patch only, by name).
 * Writes are coalesced (at most one per interval) and only the difference is sent.
 */
import type { CoreV1Api } from '@kubernetes/client-node';
import { DEVICE_STATUS_CONFIGMAP, PRODUCT } from '../keys.ts';
import { dataPatch, type ConfigMapData } from '../tables.ts';
import type { Logger } from '../log.ts';
import { errorMessage } from '../errors.ts';
import { mergePatch } from './client.ts';

export interface DeviceStatusOptions {
  readonly core: CoreV1Api;
  readonly namespace: string;
  /** The ConfigMap's name (InstanceNames.deviceStatusConfigMap; default: the default instance's). */
  readonly name?: string;
  /** The instance's product name, for the managed-by label. */
  readonly product?: string;
  readonly log: Logger;
  /** May create the ConfigMap when it is missing (the coordinator); otherwise only patch it. */
  readonly create: boolean;
  /** Removes keys that are not published (the writer owns every key); false: only sets its keys. */
  readonly prune: boolean;
  /** Checked right before each write (the coordinator: only while it leads). */
  readonly canWrite?: () => boolean;
  /**
   * Least time between two writes (default 5 s): the status is for people, and at 5,000 nodes
   * each write of the ~150 KiB object costs the writer tens of milliseconds.
   */
  readonly minIntervalMs?: number;
}

const isNotFound = (err: unknown): boolean => typeof err === 'object' && err !== null && (err as { code?: number }).code === 404;

export class DeviceStatusPublisher {
  private readonly o: DeviceStatusOptions;
  private want: ConfigMapData | undefined;
  private known: ConfigMapData | undefined;
  private writing = false;
  private timer: NodeJS.Timeout | undefined;
  private lastWrite = 0;
  private stopped = false;

  private readonly name: string;

  constructor(o: DeviceStatusOptions) {
    this.o = o;
    this.name = o.name ?? DEVICE_STATUS_CONFIGMAP;
  }

  /** The full content the ConfigMap should have; written soon. */
  publish(data: ConfigMapData): void {
    this.want = data;
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(delayMs = Math.max(0, this.lastWrite + (this.o.minIntervalMs ?? 5_000) - Date.now())): void {
    if (this.stopped || this.writing || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.write();
    }, delayMs);
    this.timer.unref();
  }

  private async write(): Promise<void> {
    const want = this.want;
    if (!want || this.stopped || this.o.canWrite?.() === false) return;
    this.writing = true;
    let failed = false;
    const { core, namespace } = this.o;
    try {
      if (!this.known) this.known = await this.read();
      if (!this.known) {
        if (!this.o.create) return; // not there yet: whoever creates it will, and we retry on the next publish
        await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: this.name, namespace, labels: { 'app.kubernetes.io/managed-by': this.o.product ?? PRODUCT } }, data: want } });
      } else {
        const patch = dataPatch(this.known, this.o.prune ? want : { ...this.known, ...want });
        if (patch) await core.patchNamespacedConfigMap({ name: this.name, namespace, body: { data: patch } }, mergePatch());
      }
      this.known = this.o.prune ? want : { ...this.known, ...want };
      this.lastWrite = Date.now();
    } catch (err) {
      this.known = undefined;
      failed = true;
      this.o.log.warn({ err: errorMessage(err), configMap: this.name }, 'could not publish the device programming status; retrying');
      this.lastWrite = Date.now() + 4_000; // back off a little
    } finally {
      this.writing = false;
    }
    if (failed || this.want !== want) this.schedule();
  }

  private async read(): Promise<ConfigMapData | undefined> {
    try {
      return (await this.o.core.readNamespacedConfigMap({ name: this.name, namespace: this.o.namespace })).data ?? {};
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }
}
