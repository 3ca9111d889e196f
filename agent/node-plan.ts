/**
 * What a node's agent should program, from its inputs, pure. Two steps, because the facts the
 * second needs (MTU, the host's networks) depend on the first's answer (the underlay IP):
 *   resolveNodeInputs: hub ConfigMap + own Node -> hub info, overlay IP, underlay IP, pod CIDRs
 *   planNode:          resolved inputs + host facts -> overlay device state + firewall table
 * A problem is 'waiting' (normal while the cluster converges: no allocation yet) or 'invalid'
 * (bad or conflicting input: the agent keeps its last good state and records an Event).
 */
import type { V1Node } from '@kubernetes/client-node';
import { cidrsOverlap, parseCidr } from '../shared/ipv4.ts';
import { allocatedOverlayIP, internalIPv4, podCIDRsOf } from '../shared/node-facts.ts';
import { ANNOTATION_OVERLAY_IP, vxlanDeviceName } from '../shared/keys.ts';
import { decodeHubInfo, type ConfigMapData, type HubInfo } from '../shared/tables.ts';
import { errorMessage } from '../shared/errors.ts';
import { planNodeOverlay } from './overlay/plan.ts';
import { interfaceOfAddress, otherNetworks, type HostInterface } from './overlay/observe.ts';
import type { DesiredOverlay } from './overlay/state.ts';
import type { EndpointPlan, Problem } from './plan-types.ts';

export interface ResolvedInputs {
  readonly hub: HubInfo;
  readonly overlayIP: string;
  readonly underlayIP: string;
  readonly podCIDRs: readonly string[];
}

export function resolveNodeInputs(nodeName: string, node: V1Node | undefined, hubData: ConfigMapData | undefined, hubName: string, underlayOverride?: string): ResolvedInputs | Problem {
  if (!node) return { kind: 'waiting', reason: `Node ${nodeName} not found in the API` };
  if (!hubData) return { kind: 'waiting', reason: `waiting for hub info (ConfigMap ${hubName})` };
  let hub: HubInfo;
  try {
    hub = decodeHubInfo(hubData);
  } catch (err) {
    return { kind: 'invalid', reason: errorMessage(err) };
  }
  const raw = node.metadata?.annotations?.[ANNOTATION_OVERLAY_IP];
  const overlayIP = allocatedOverlayIP(node);
  if (raw !== undefined && overlayIP === undefined) return { kind: 'invalid', reason: `annotation ${ANNOTATION_OVERLAY_IP}=${JSON.stringify(raw)} is not an IPv4 address` };
  if (!overlayIP) return { kind: 'waiting', reason: 'waiting for the coordinator to allocate this node an overlay IP' };
  const underlayIP = underlayOverride ?? internalIPv4(node);
  if (!underlayIP) return { kind: 'invalid', reason: `Node ${nodeName} has no IPv4 InternalIP and no --underlay-ip was given` };
  return { hub, overlayIP, underlayIP, podCIDRs: podCIDRsOf(node) };
}

export interface HostFacts {
  /** MTU of the interface holding the underlay IP; undefined when no interface has it. */
  readonly underlayMtu: number | undefined;
  /** Name of the interface holding the underlay IP (the firewall accepts our VXLAN only there). */
  readonly underlayDevice?: string | undefined;
  /** IPv4 networks on the host's other interfaces. */
  readonly networks: readonly { dev: string; cidr: string }[];
}

/** The host facts a node's plan needs, from its interfaces (the agent's and doctor's one way to read them). */
export function hostFactsOf(interfaces: readonly HostInterface[], inputs: ResolvedInputs): HostFacts {
  const underlay = interfaceOfAddress(interfaces, inputs.underlayIP);
  return { underlayMtu: underlay?.mtu, underlayDevice: underlay?.name, networks: otherNetworks(interfaces, vxlanDeviceName(inputs.hub.vni)) };
}

export function planNode(inputs: ResolvedInputs, facts: HostFacts): EndpointPlan | Problem {
  const { hub, overlayIP, underlayIP, podCIDRs } = inputs;
  if (facts.underlayMtu === undefined) return { kind: 'invalid', reason: `no interface on this host has the underlay IP ${underlayIP}` };
  const overlayNet = parseCidr(hub.overlayNetwork);
  for (const n of facts.networks) {
    if (cidrsOverlap(overlayNet, parseCidr(n.cidr, false))) {
      return { kind: 'invalid', reason: `overlay network ${hub.overlayNetwork} overlaps ${n.cidr} on this host's ${n.dev}; pick an overlay network no host uses` };
    }
  }
  for (const c of podCIDRs) {
    if (cidrsOverlap(overlayNet, parseCidr(c))) return { kind: 'invalid', reason: `overlay network ${hub.overlayNetwork} overlaps this node's pod CIDR ${c}` };
  }
  let overlay: DesiredOverlay;
  try {
    overlay = planNodeOverlay(hub, { underlayIP, underlayMtu: facts.underlayMtu }, overlayIP);
  } catch (err) {
    return { kind: 'invalid', reason: errorMessage(err) };
  }
  return {
    overlay,
    firewall: { vxlanDevice: overlay.vxlan.name, port: hub.port, vni: hub.vni, underlayDevice: facts.underlayDevice, allowedVTEPs: hub.deviceVTEPs, deviceOverlayIPs: hub.deviceOverlayIPs, podCIDRs },
  };
}
