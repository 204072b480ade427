// The dashboard's live feed: GET /api/events, server-sent events of round and stage changes.
//
// Each event is small (ids, statuses, reasons; never weights or an agent's data): the page
// refetches the JSON routes it shows. Each event is serialised once, whatever the number of open
// streams, and each stream writes what arrived within COALESCE_MS in one write: a round of 100
// agents has over 100 events (one per accepted update), and one socket write (and one chunk for
// the browser to wake up for) per event was most of what an attached page cost the coordinator.
// The last LOG_SIZE events are kept and replayed to a new stream, so the page's event log starts
// with what happened before it was opened (since the coordinator started).
// Access follows the read routes' rule (admin.ts's hook runs before this handler).
import type { EventEmitter } from 'node:events';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { RoundStartedRecord, RoundSummary } from './engine.js';

/** What the feed listens to: the coordinator's `events` (coordinator.ts CoordinatorEvents). */
export interface LiveSource {
  on(event: 'round-started', fn: (r: RoundStartedRecord) => void): unknown;
  on(event: 'round-completed' | 'round-failed', fn: (s: RoundSummary) => void): unknown;
  on(event: 'update-rejected', fn: (e: { roundId: number; agentId: string; reason: string; message: string }) => void): unknown;
  on(event: 'update-accepted', fn: (e: { roundId: number; agentId: string }) => void): unknown;
  on(event: 'stage', fn: (e: { phase: string; roundId: number | null }) => void): unknown;
  on(event: 'round-evaluated', fn: (e: { roundId: number; metrics: Readonly<Record<string, number>> }) => void): unknown;
  on(event: 'closed', fn: () => void): unknown;
}

export interface LiveEvent {
  /** Monotonic id (the SSE `id:` field). */
  readonly id: number;
  readonly type: 'round-started' | 'round-completed' | 'round-failed' | 'round-evaluated' | 'update-rejected' | 'update-accepted' | 'participant' | 'stage';
  readonly at: number;
  readonly data: Readonly<Record<string, string | number | null>>;
}

const LOG_SIZE = 500;
const KEEPALIVE_MS = 15_000;
/** Longest an event waits to be written with the ones after it (the page refreshes at most every 1.5 s). */
export const COALESCE_MS = 100;
/** Events worth replaying: the event log's entries (progress and stage ticks are only live). */
const LOGGED = new Set<LiveEvent['type']>(['round-started', 'round-completed', 'round-failed', 'round-evaluated', 'update-rejected', 'participant']);

export class LiveFeed {
  private readonly streams = new Set<(e: LiveEvent, frame: string) => void>();
  /** The logged events' SSE frames, oldest first (serialised once, for every stream). */
  private readonly log: string[] = [];
  private nextId = 1;

  constructor(source: LiveSource | EventEmitter) {
    const s = source as LiveSource;
    s.on('round-started', (r) => this.push('round-started', { roundId: r.roundId, cohortSize: r.cohort.length, required: r.required }));
    const ended = (type: 'round-completed' | 'round-failed') => (x: RoundSummary) => {
      this.push(type, { roundId: x.roundId, status: x.status, durationMs: x.durationMs, included: x.metrics['included'] ?? null, reason: x.reason ?? null });
      // Cohort members who did not make it, with the coordinator's reason (policy refusals, drops).
      for (const p of x.participants) {
        if (p.status !== 'included') this.push('participant', { roundId: x.roundId, agentId: p.agentId, status: p.status, reason: p.reason ?? null });
      }
    };
    s.on('round-completed', ended('round-completed'));
    s.on('round-failed', ended('round-failed'));
    s.on('update-rejected', (e) => this.push('update-rejected', { roundId: e.roundId, agentId: e.agentId, reason: e.reason, message: e.message.slice(0, 500) }));
    s.on('update-accepted', (e) => this.push('update-accepted', { roundId: e.roundId, agentId: e.agentId }));
    s.on('stage', (e) => this.push('stage', { phase: e.phase, roundId: e.roundId }));
    s.on('round-evaluated', (e) => this.push('round-evaluated', { roundId: e.roundId, linearProbe: e.metrics['evalLinearProbe'] ?? null, knn: e.metrics['evalKnn'] ?? null }));
  }

  get listeners(): number {
    return this.streams.size;
  }

  /** The logged events' frames, oldest first, as one string (a new stream's replay). */
  historyFrames(): string {
    return this.log.join('');
  }

  subscribe(fn: (e: LiveEvent, frame: string) => void): () => void {
    this.streams.add(fn);
    return () => this.streams.delete(fn);
  }

  private push(type: LiveEvent['type'], data: LiveEvent['data']): void {
    const e: LiveEvent = { id: this.nextId++, type, at: Date.now(), data };
    const logged = LOGGED.has(type);
    // Nobody reads an unlogged event without a stream open: it is not even serialised.
    if (!logged && this.streams.size === 0) return;
    const text = frame(e);
    if (logged) {
      this.log.push(text);
      if (this.log.length > LOG_SIZE) this.log.shift();
    }
    for (const fn of this.streams) fn(e, text);
  }
}

const frame = (e: LiveEvent): string => `id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify({ at: e.at, ...e.data })}\n\n`;

export function liveRoutes(feed: LiveFeed): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.get(
      '/api/events',
      {
        schema: {
          produces: ['text/event-stream'],
          response: { 200: { description: 'server-sent events: round-started, round-completed, round-failed, round-evaluated, update-rejected, update-accepted, participant, stage', type: 'string' } },
        },
      },
      async (req, reply) => {
        // The stream outlives the handler: fastify hands over the socket (its close still destroys it).
        reply.hijack();
        const res = reply.raw;
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-store',
          connection: 'keep-alive',
          'x-accel-buffering': 'no',
        });
        res.write(`retry: 2000\n\n${feed.historyFrames()}`);
        // A closed stream may still get an event before its 'close' arrives: never write to it.
        const open = (): boolean => !res.destroyed && !res.writableEnded;
        res.on('error', (err) => req.log.debug({ err }, 'dashboard event stream error'));
        // Frames that arrived within COALESCE_MS, written together.
        let pending: string[] = [];
        let flushTimer: NodeJS.Timeout | undefined;
        const flush = (): void => {
          flushTimer = undefined;
          const text = pending.join('');
          pending = [];
          if (!open() || text === '') return;
          // A slow reader is dropped rather than buffered without bound.
          if (res.writableLength > 1024 * 1024) {
            req.log.warn('dropping a dashboard event stream more than 1 MiB behind');
            res.destroy();
            return;
          }
          res.write(text);
        };
        const unsubscribe = feed.subscribe((_e, text) => {
          if (!open()) return;
          pending.push(text);
          flushTimer ??= setTimeout(flush, COALESCE_MS);
        });
        const keepalive = setInterval(() => {
          if (open()) res.write(': keepalive\n\n');
        }, KEEPALIVE_MS);
        keepalive.unref();
        req.raw.once('close', () => {
          clearInterval(keepalive);
          clearTimeout(flushTimer);
          unsubscribe();
        });
      },
    );
  };
}
