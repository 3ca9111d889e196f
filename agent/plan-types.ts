/** What a planner hands the endpoint programmer, or why it cannot. */
import type { DesiredOverlay } from './overlay/state.ts';
import type { DirectFirewallSpec, FirewallSpec } from './firewall/ruleset.ts';

export interface EndpointPlan {
  readonly overlay: DesiredOverlay;
  readonly firewall: FirewallSpec;
}

/**
 * A node the device routes to directly (its Node's path annotation says `direct`): no VXLAN
 * device; the device sends to the pods via the node's underlay address. The firewall table holds
 * only the return path: pods and the device keep their addresses between each other.
 */
export interface DirectPlan {
  readonly direct: {
    /** The device's underlay address(es): the node must reach them without a router. */
    readonly deviceVTEPs: readonly string[];
    readonly underlayIP: string;
    readonly podCIDRs: readonly string[];
  };
  readonly firewall: DirectFirewallSpec;
}

export function isDirect(x: EndpointPlan | DirectPlan | Problem): x is DirectPlan {
  return 'direct' in x;
}

/**
 * 'waiting': normal while the cluster converges (no allocation yet, no hub info).
 * 'invalid': bad or conflicting input; the last good plan stays programmed and an Event says why.
 */
export interface Problem { readonly kind: 'waiting' | 'invalid'; readonly reason: string }

export function isProblem(x: EndpointPlan | DirectPlan | Problem | object): x is Problem {
  return 'reason' in x && 'kind' in x;
}
