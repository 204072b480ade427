// Neighbour graph over the cohort: complete, or a Harary graph H(k, n) (ring with chords to the
// k/2 nearest on each side) over a random ordering of the agents. The ordering comes from the
// coordinator's 32-byte seed, published in the signed session config before any agent key
// exists, so every party derives the same graph and nobody can pick keys to fit it.
import { ConfigError } from './errors.js';
import { hkdf } from './crypto.js';
import { seededRandomWords, uniformInt } from './prg.js';

export interface NeighbourGraph {
  readonly kind: 'complete' | 'harary';
  /** Agents in canonical (sorted) order. */
  readonly agents: readonly string[];
  /** Neighbours of each agent, sorted; symmetric, no self loops. */
  neighbours(agent: string): readonly string[];
  isNeighbour(a: string, b: string): boolean;
}

/** Canonical agent order: UTF-16 code unit order (the `<` operator), duplicates rejected. */
export function sortAgents(ids: readonly string[]): string[] {
  const sorted = [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1]) throw new ConfigError('cohort', `duplicate agent id ${String(sorted[i])}`);
  }
  return sorted;
}

const GRAPH_INFO = new TextEncoder().encode('fedclr/secagg/graph-permutation');

/** Seeded Fisher-Yates permutation of `items`, unbiased (rejection sampling). */
export function seededShuffle<T>(items: readonly T[], seed: Uint8Array, salt: Uint8Array): T[] {
  const words = seededRandomWords(hkdf(seed, salt, GRAPH_INFO));
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = uniformInt(words, i + 1);
    const tmp = out[i] as T;
    out[i] = out[j] as T;
    out[j] = tmp;
  }
  return out;
}

export function buildNeighbourGraph(
  cohort: readonly string[],
  neighbours: number,
  seed: Uint8Array,
  session: string,
): NeighbourGraph {
  const agents = sortAgents(cohort);
  const n = agents.length;
  if (seed.length !== 32) throw new ConfigError('graphSeed', `must be 32 bytes, got ${seed.length}`);
  const sets = new Map<string, Set<string>>();
  for (const a of agents) sets.set(a, new Set());
  let kind: 'complete' | 'harary';
  if (neighbours >= n - 1) {
    kind = 'complete';
    for (const a of agents) for (const b of agents) if (a !== b) sets.get(a)?.add(b);
  } else {
    if (neighbours % 2 !== 0 || neighbours < 2) {
      throw new ConfigError('neighbours', `a Harary graph needs an even k >= 2, got ${neighbours}`);
    }
    kind = 'harary';
    const ring = seededShuffle(agents, seed, new TextEncoder().encode(session));
    for (let p = 0; p < n; p++) {
      const a = ring[p] as string;
      for (let j = 1; j <= neighbours / 2; j++) {
        const b = ring[(p + j) % n] as string;
        sets.get(a)?.add(b);
        sets.get(b)?.add(a);
      }
    }
  }
  const lists = new Map<string, readonly string[]>();
  for (const [a, set] of sets) lists.set(a, sortAgents([...set]));
  return {
    kind,
    agents,
    neighbours(agent) {
      const list = lists.get(agent);
      if (list === undefined) throw new ConfigError('agent', `${agent} is not in the cohort`);
      return list;
    },
    isNeighbour(a, b) {
      return sets.get(a)?.has(b) ?? false;
    },
  };
}
