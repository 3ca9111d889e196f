/** What a planner hands the endpoint programmer, or why it cannot. */
import type { DesiredOverlay } from './overlay/state.ts';
import type { FirewallSpec } from './firewall/ruleset.ts';

export interface EndpointPlan {
  readonly overlay: DesiredOverlay;
  readonly firewall: FirewallSpec;
}

/**
 * 'waiting': normal while the cluster converges (no allocation yet, no hub info).
 * 'invalid': bad or conflicting input; the last good plan stays programmed and an Event says why.
 */
export interface Problem { readonly kind: 'waiting' | 'invalid'; readonly reason: string }

export function isProblem(x: EndpointPlan | Problem | object): x is Problem {
  return 'reason' in x && 'kind' in x;
}
