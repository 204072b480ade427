// Answers of the read routes that change only when the round history does (GET /api/rounds,
// GET /api/checkpoints), kept serialised until it changes. A dashboard refetches them after
// every round; with this, a refetch that finds nothing new costs the coordinator a string
// comparison (304 Not Modified, by ETag) instead of a database query and a serialisation.
//
// The history's version is bumped on every event that follows a write to the rounds table or a
// checkpoint change (round-started, round-completed, round-failed, round-evaluated, closed): the
// coordinator emits each after its write, so an answer computed at version v is never older than v.
import { randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** The events after which the rounds table or the checkpoints on disk may have changed. */
export const HISTORY_EVENTS = ['round-started', 'round-completed', 'round-failed', 'round-evaluated', 'closed'] as const;

/** A serialised answer, as reply.serialize returns it. */
type Serialised = ReturnType<FastifyReply['serialize']>;

/** Distinct answers kept per version (a page asks for two or three queries). */
const MAX_ENTRIES = 16;

export class HistoryCache {
  private versionValue = 0;
  private cachedAt = -1;
  private readonly entries = new Map<string, Serialised>();
  /** Per process: an ETag of an earlier coordinator process (same versions, other data) never matches. */
  private readonly boot = randomBytes(6).toString('hex');

  /** The history changed: every kept answer is stale. */
  bump(): void {
    this.versionValue++;
  }

  get version(): number {
    return this.versionValue;
  }

  /**
   * Answers `key` (a route and its query) with `compute`'s JSON, or 304 when the client already
   * has this version (If-None-Match). `compute` serialises the answer, e.g. with reply.serialize.
   */
  async reply(req: FastifyRequest, reply: FastifyReply, key: string, compute: () => Serialised | Promise<Serialised>): Promise<FastifyReply> {
    const version = this.versionValue;
    const etag = `"${this.boot}-${version}-${key}"`;
    void reply.header('etag', etag).header('cache-control', 'no-cache');
    if (req.headers['if-none-match'] === etag) return reply.code(304).send();
    if (this.cachedAt !== version) {
      this.entries.clear();
      this.cachedAt = version;
    }
    let body = this.entries.get(key);
    if (body === undefined) {
      body = await compute();
      // Kept only if the history did not move meanwhile (it would be this version's answer or newer).
      if (this.versionValue === version) {
        if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
        this.entries.set(key, body);
      }
    }
    return reply.type('application/json; charset=utf-8').send(body);
  }
}
