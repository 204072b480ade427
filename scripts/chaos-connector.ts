// The chaos harness's faulty link for one agent: socket.io-client like the agent's default
// connector, plus the seeded faults of chaos-plan.ts. It drops the agent out of a round just
// before it would send a chosen secure-aggregation stage (the agent then reconnects by itself,
// same identity, mid-round), cuts the TCP connection right after an upload was handed to it,
// delays every message of a slow agent, and holds back unmask responses when told to (so the
// orchestrator can kill the coordinator while it is unmasking).
import { io as ioClient, type Socket } from 'socket.io-client';
import { socketIoAgentSocket, type AgentOutbound, type Connector } from '@fedclr/agent';
import { dropPoint, type DropPoint } from './chaos-plan.js';

export interface LinkObserver {
  /** A message of `stage` (secagg stage, or 'update') left for the coordinator (after any delay). */
  sent(roundId: number, stage: string): void;
  dropped(roundId: number, point: DropPoint): void;
}

export interface LinkFaults {
  readonly agentId: string;
  readonly seed: number;
  /** Fraction of rounds in which this agent drops out (at a seeded stage). */
  readonly dropout: number;
  /** Added to every outgoing message. */
  readonly latencyMs: number;
  /** How long to hold this agent's unmask response in `roundId` (0: not held). */
  readonly unmaskHoldMs: (roundId: number) => number;
  readonly observer: LinkObserver;
}

/** What an outgoing message is, for the fault plan: its round and stage. */
function classify(m: AgentOutbound): { roundId: number; stage: string } | undefined {
  if (m.type === 'secagg') return { roundId: m.roundId, stage: m.stage };
  if (m.type === 'update') return { roundId: m.roundId, stage: 'update' };
  return undefined;
}

/** Destroys the TCP socket under a socket.io client at once (what a cable pull looks like). */
function cut(s: Socket): void {
  const transport = (s.io as unknown as { engine?: { transport?: { ws?: { terminate?: () => void } } } }).engine?.transport;
  if (transport?.ws?.terminate !== undefined) transport.ws.terminate();
  else s.disconnect();
}

export function chaosConnector(f: LinkFaults): Connector {
  const droppedRounds = new Set<number>();
  return (url) => {
    const s = ioClient(url, { reconnection: false, forceNew: true, transports: ['websocket'], timeout: 20_000 });
    const deliver = (m: AgentOutbound, what: { roundId: number; stage: string } | undefined): void => {
      if (!s.connected) return;
      s.emit('message', m);
      if (what === undefined) return;
      f.observer.sent(what.roundId, what.stage);
      if (what.stage === 'update' && dropPoint(f.seed, f.agentId, what.roundId, f.dropout) === 'upload-cut' && !droppedRounds.has(what.roundId)) {
        droppedRounds.add(what.roundId);
        f.observer.dropped(what.roundId, 'upload-cut');
        cut(s);
      }
    };
    return socketIoAgentSocket(s, (m) => {
      const what = classify(m);
      if (what !== undefined) {
        const point = dropPoint(f.seed, f.agentId, what.roundId, f.dropout);
        if (point === what.stage && !droppedRounds.has(what.roundId)) {
          // Leaves before this stage: the message is never sent, the connection goes.
          droppedRounds.add(what.roundId);
          f.observer.dropped(what.roundId, point);
          cut(s);
          return;
        }
      }
      const hold = what?.stage === 'unmask-response' ? f.unmaskHoldMs(what.roundId) : 0;
      const delay = f.latencyMs + hold;
      if (delay <= 0) deliver(m, what);
      else setTimeout(() => deliver(m, what), delay);
    });
  };
}
