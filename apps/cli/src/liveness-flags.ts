// fedclr coordinator's liveness flags, which were --config only: how long a round waits for
// stragglers once its quorum is in, and how long a silent socket.io link counts as alive (hosts
// running many agents, or agents on a loaded machine, answer pings late).
import type { CoordinatorConfig } from '@fedclr/coordinator';
import { intOption } from './common.js';

export const LIVENESS_FLAG_OPTIONS = {
  'straggler-grace-ms': { type: 'string' },
  'ping-timeout-ms': { type: 'string' },
} as const;

export const LIVENESS_FLAGS_HELP = `  --straggler-grace-ms MS       once the quorum's updates are in, wait at most MS more for the rest (default: wait
                                for every agent or the deadline); "stragglerGraceMs" in --config
  --ping-timeout-ms MS          socket.io ping timeout: a link silent this long after a ping is dropped (default
                                20000, at least 1000); raise it when agents' event loops stall; "pingTimeoutMs" in --config`;

/** The liveness settings the flags give (absent flags: nothing, so --config or the defaults hold). */
export function livenessFromFlags(values: Record<string, unknown>): Pick<CoordinatorConfig, 'stragglerGraceMs' | 'pingTimeoutMs'> {
  return {
    ...(values['straggler-grace-ms'] === undefined ? {} : { stragglerGraceMs: intOption(values, 'straggler-grace-ms', 0, 0) }),
    ...(values['ping-timeout-ms'] === undefined ? {} : { pingTimeoutMs: intOption(values, 'ping-timeout-ms', 20_000, 1000) }),
  };
}
