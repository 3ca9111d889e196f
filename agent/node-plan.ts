/**
 * What a node's agent should program, from its inputs, pure. Two steps, because the facts the
 * second needs (MTU, the host's networks) depend on the first's answer (the underlay IP):
 *   resolveNodeInputs: hub ConfigMap + own Node -> hub info, overlay IP, underlay IP, pod CIDRs
 *   planNode:          resolved inputs + host facts -> overlay device state + firewall table
 * A problem is 'waiting' (normal while the cluster converges: no allocation yet) or 'invalid'
 * (bad or conflicting input: the agent keeps its last good state and records an Event).
 */
import { refusedNodes } from '../shared/pod-cidrs.ts';
import type { V1Node } from '@kubernetes/client-node';
import { cidrsOverlap, parseCidr } from '../shared/ipv4.ts';
import { cidrsByFamily, twinAddress } from '../shared/ip.ts';
import { allocatedOverlayIP, internalIP, podCIDRsOf, underlayFamilyOf } from '../shared/node-facts.ts';
import { DEFAULT_NAMES, type InstanceNames } from '../shared/keys.ts';
import { decodeHubInfo, type ConfigMapData, type HubInfo, type PeerPath } from '../shared/tables.ts';
import { errorMessage } from '../shared/errors.ts';
import { planNodeOverlay } from './overlay/plan.ts';
import { foreignVxlans, interfaceOfAddress, otherNetworks, type HostInterface } from './overlay/observe.ts';
import type { DesiredOverlay } from './overlay/state.ts';
import type { DirectPlan, EndpointPlan, Problem } from './plan-types.ts';

export interface ResolvedInputs {
  readonly hub: HubInfo;
  readonly overlayIP: string;
  readonly underlayIP: string;
  /** IPv4 pod CIDRs. */
  readonly podCIDRs: readonly string[];
  /** In a dual-stack overlay (the hub has an IPv6 network): this node's IPv6 overlay address and IPv6 pod CIDRs. */
  readonly ipv6?: { readonly overlayIP: string; readonly podCIDRs: readonly string[] };
  /** The instance the agent serves (its annotation keys, device and table names). */
  readonly names: InstanceNames;
  /** How the device reaches this node's pods (its Node's path annotation; absent: vxlan). */
  readonly path: PeerPath;
}

export function resolveNodeInputs(nodeName: string, node: V1Node | undefined, hubData: ConfigMapData | undefined, hubName: string, underlayOverride?: string, names: InstanceNames = DEFAULT_NAMES): ResolvedInputs | Problem {
  if (!node) return { kind: 'waiting', reason: `Node ${nodeName} not found in the API` };
  if (!hubData) return { kind: 'waiting', reason: `waiting for hub info (ConfigMap ${hubName})` };
  let hub: HubInfo;
  try {
    hub = decodeHubInfo(hubData);
  } catch (err) {
    return { kind: 'invalid', reason: errorMessage(err) };
  }
  const raw = node.metadata?.annotations?.[names.annotationOverlayIP];
  const overlayIP = allocatedOverlayIP(node, names.annotationOverlayIP);
  if (raw !== undefined && overlayIP === undefined) return { kind: 'invalid', reason: `annotation ${names.annotationOverlayIP}=${JSON.stringify(raw)} is not an IPv4 address` };
  if (!overlayIP) return { kind: 'waiting', reason: 'waiting for the coordinator to allocate this node an overlay IP' };
  const underlayIP = underlayAddress(node, nodeName, hub, underlayOverride);
  if (typeof underlayIP !== 'string') return underlayIP;
  const path = node.metadata?.annotations?.[names.annotationPath];
  if (path !== undefined && path !== 'direct') return { kind: 'invalid', reason: `annotation ${names.annotationPath}=${JSON.stringify(path)} is not "direct" (the coordinator writes "direct" or nothing)` };
  const { v4, v6 } = cidrsByFamily(podCIDRsOf(node));
  let ipv6: ResolvedInputs['ipv6'];
  if (hub.overlayNetworkIPv6 !== undefined) {
    try {
      ipv6 = { overlayIP: twinAddress(hub.overlayNetwork, hub.overlayNetworkIPv6, overlayIP), podCIDRs: v6 };
    } catch (err) {
      return { kind: 'invalid', reason: `no IPv6 overlay address for ${overlayIP}: ${errorMessage(err)}` };
    }
  }
  return { hub, overlayIP, underlayIP, podCIDRs: v4, ...(ipv6 ? { ipv6 } : {}), names, path: path ?? 'vxlan' };
}

export interface HostFacts {
  /** MTU of the interface holding the underlay IP; undefined when no interface has it. */
  readonly underlayMtu: number | undefined;
  /** Name of the interface holding the underlay IP (the firewall accepts our VXLAN only there). */
  readonly underlayDevice?: string | undefined;
  /** VXLAN devices on the host that are not ours (a CNI's), with their VNI and port. */
  readonly foreignVxlans?: readonly { dev: string; vni: number; port: number }[];
  /** IPv4 networks on the host's other interfaces. */
  readonly networks: readonly { dev: string; cidr: string }[];
}

/**
 * A VXLAN device that is not ours with our VNI on our port: Linux keeps one device per VNI on a
 * port, so ours cannot be made; nothing is touched and the fix is named. (Another VNI on the same
 * port is fine: the firewall checks our VNI only.)
 */
export function vxlanClash(facts: HostFacts, vni: number, port: number, names: InstanceNames = DEFAULT_NAMES): string | undefined {
  const c = (facts.foreignVxlans ?? []).find((f) => f.vni === vni && f.port === port);
  if (!c) return undefined;
  return `VXLAN device ${c.dev} (not chorus-kube-router's; a CNI's?) already uses VNI ${vni} on UDP port ${port}, and a VNI can be used once per port, so ${names.vxlanDevice(vni)} is not created: give chorus-kube-router another VNI (the coordinator's --vni / CHORUS_VNI, e.g. ${vni === 16777215 ? vni - 1 : vni + 1}) or another port (--port / CHORUS_VXLAN_PORT)`;
}

/** This node's VTEP: --underlay-ip, or its InternalIP of the underlay's family (the device VTEPs'); a Problem when there is none of that family. */
function underlayAddress(node: V1Node, nodeName: string, hub: HubInfo, override: string | undefined): string | Problem {
  const family = underlayFamilyOf(hub.deviceVTEPs);
  const ip = override ?? internalIP(node, family);
  if (!ip) return { kind: 'invalid', reason: `Node ${nodeName} has no IPv${family} InternalIP and no --underlay-ip was given${family === 6 ? ' (the underlay is IPv6: the device VTEPs are)' : ''}` };
  if (ip.includes(':') !== (family === 6)) return { kind: 'invalid', reason: `--underlay-ip ${ip} is not IPv${family}, and the device VTEPs (${hub.deviceVTEPs.join(', ')}) are: a mixed underlay is not supported` };
  return ip;
}

/** The host facts a node's plan needs, from its interfaces (the agent's and doctor's one way to read them). */
export function hostFactsOf(interfaces: readonly HostInterface[], inputs: ResolvedInputs): HostFacts {
  const underlay = interfaceOfAddress(interfaces, inputs.underlayIP);
  return { underlayMtu: underlay?.mtu, underlayDevice: underlay?.name, networks: otherNetworks(interfaces, inputs.names.vxlanDevice(inputs.hub.vni)), foreignVxlans: foreignVxlans(interfaces, inputs.names.ownsDevice) };
}

export function planNode(inputs: ResolvedInputs, facts: HostFacts): EndpointPlan | DirectPlan | Problem {
  const { hub, overlayIP, underlayIP, podCIDRs } = inputs;
  if (facts.underlayMtu === undefined) return { kind: 'invalid', reason: `no interface on this host has the underlay IP ${underlayIP}` };
  // routed directly: nothing of the overlay on this node (the coordinator checked the pod CIDRs)
  if (inputs.path === 'direct') {
    return { direct: { deviceVTEPs: hub.deviceVTEPs, underlayIP, podCIDRs }, firewall: { table: inputs.names.firewallTable, deviceAddresses: hub.deviceVTEPs, podCIDRs } };
  }
  const clash = vxlanClash(facts, hub.vni, hub.port, inputs.names);
  if (clash) return { kind: 'invalid', reason: clash };
  const overlayNet = parseCidr(hub.overlayNetwork);
  for (const n of facts.networks) {
    if (cidrsOverlap(overlayNet, parseCidr(n.cidr, false))) {
      return { kind: 'invalid', reason: `overlay network ${hub.overlayNetwork} overlaps ${n.cidr} on this host's ${n.dev}; pick an overlay network no host uses` };
    }
  }
  // the coordinator's check of this node (shared/pod-cidrs.ts): it left the node out for the same reason
  const refused = refusedNodes([{ node: 'this node', underlayIP, podCIDRs: [...podCIDRs, ...(inputs.ipv6?.podCIDRs ?? [])] }], { overlayNetwork: hub.overlayNetwork, overlayNetworkIPv6: hub.overlayNetworkIPv6, deviceVTEPs: hub.deviceVTEPs }).get('this node');
  if (refused !== undefined) return { kind: 'invalid', reason: `this node is left out of the overlay: ${refused}` };
  let overlay: DesiredOverlay;
  try {
    overlay = planNodeOverlay(hub, { underlayIP, underlayMtu: facts.underlayMtu, names: inputs.names }, overlayIP, inputs.ipv6?.overlayIP);
  } catch (err) {
    return { kind: 'invalid', reason: errorMessage(err) };
  }
  return {
    overlay,
    firewall: {
      table: inputs.names.firewallTable, vxlanDevice: overlay.vxlan.name, port: hub.port, vni: hub.vni, underlayDevice: facts.underlayDevice, allowedVTEPs: hub.deviceVTEPs, underlayFamily: underlayFamilyOf(hub.deviceVTEPs), deviceOverlayIPs: hub.deviceOverlayIPs, podCIDRs,
      ...(inputs.ipv6 ? { deviceOverlayIPv6s: hub.deviceOverlayIPv6s ?? [], podCIDRsIPv6: inputs.ipv6.podCIDRs } : {}),
    },
  };
}
