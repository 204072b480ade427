// The coordinator's SQLite state (better-sqlite3, synchronous): rounds, participants per round,
// round metrics, enrolments and run metadata. WAL mode with synchronous=FULL, so a committed
// round survives a crash or power loss. Schema changes are numbered migrations recorded in
// schema_migrations; each runs in its own transaction, and a database written by a newer build
// is refused rather than guessed at.
import Database from 'better-sqlite3';
import type { Database as Db, Statement } from 'better-sqlite3';
import type { ParticipantRecord, RoundStartedRecord, RoundSummary } from './engine.js';
import { DatabaseError, SchemaTooNewError } from './errors.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
      CREATE TABLE run_meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );
      CREATE TABLE rounds (
        id                 INTEGER PRIMARY KEY,
        status             TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'aborted', 'interrupted')),
        started_at         INTEGER NOT NULL,
        ended_at           INTEGER,
        duration_ms        INTEGER,
        base_model_version TEXT NOT NULL,
        model_version      TEXT,
        completed_rounds   INTEGER,
        cohort_size        INTEGER NOT NULL,
        required           INTEGER NOT NULL,
        included           INTEGER,
        total_weight       REAL,
        reason             TEXT,
        config_json        TEXT NOT NULL,
        checkpoint         TEXT
      );
      CREATE INDEX rounds_status ON rounds (status, id);
      CREATE TABLE participants (
        round_id      INTEGER NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
        agent_id      TEXT NOT NULL,
        status        TEXT NOT NULL,
        example_count INTEGER,
        loss          REAL,
        bytes         INTEGER,
        reason        TEXT,
        metrics_json  TEXT,
        PRIMARY KEY (round_id, agent_id)
      );
      CREATE INDEX participants_agent ON participants (agent_id, round_id);
      CREATE TABLE round_metrics (
        round_id INTEGER NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
        name     TEXT NOT NULL,
        value    REAL NOT NULL,
        PRIMARY KEY (round_id, name)
      );
      CREATE TABLE enrolments (
        agent_id   TEXT PRIMARY KEY,
        public_key BLOB NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen  INTEGER NOT NULL,
        sessions   INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX enrolments_key ON enrolments (public_key);
    `,
  },
  {
    version: 2,
    name: 'admission: enrolment status, source and timestamps; one-time enrolment tokens',
    // Rows of version 1 were written by open enrolment (the only mode that created them before
    // allow-lists were kept here): they stay enrolled, with source 'open'.
    sql: `
      CREATE TABLE enrolments_v2 (
        agent_id      TEXT PRIMARY KEY,
        public_key    BLOB NOT NULL CHECK (length(public_key) = 32),
        status        TEXT NOT NULL CHECK (status IN ('enrolled', 'revoked')),
        source        TEXT NOT NULL CHECK (source IN ('admin', 'config', 'token', 'open')),
        enrolled_at   INTEGER NOT NULL,
        revoked_at    INTEGER,
        revoke_reason TEXT,
        first_seen    INTEGER,
        last_seen     INTEGER,
        sessions      INTEGER NOT NULL DEFAULT 0
      );
      INSERT INTO enrolments_v2 (agent_id, public_key, status, source, enrolled_at, first_seen, last_seen, sessions)
        SELECT agent_id, public_key, 'enrolled', 'open', first_seen, first_seen, last_seen, sessions FROM enrolments;
      DROP TABLE enrolments;
      ALTER TABLE enrolments_v2 RENAME TO enrolments;
      CREATE INDEX enrolments_key ON enrolments (public_key);
      CREATE TABLE enrolment_tokens (
        token_hash BLOB PRIMARY KEY CHECK (length(token_hash) = 32),
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at    INTEGER,
        used_by    TEXT
      );
    `,
  },
];

export type EnrolmentStatus = 'enrolled' | 'revoked';
/** How an enrolment came about: the admin API, a --config allow-list key, a one-time token, open enrolment. */
export type EnrolmentSource = 'admin' | 'config' | 'token' | 'open';

export type RoundStatus = 'running' | 'completed' | 'failed' | 'aborted' | 'interrupted';

export interface RoundRow {
  readonly id: number;
  readonly status: RoundStatus;
  readonly startedAt: number;
  readonly endedAt: number | null;
  readonly durationMs: number | null;
  readonly baseModelVersion: string;
  readonly modelVersion: string | null;
  readonly completedRounds: number | null;
  readonly cohortSize: number;
  readonly required: number;
  readonly included: number | null;
  readonly totalWeight: number | null;
  readonly reason: string | null;
  readonly checkpoint: string | null;
  readonly metrics: Record<string, number>;
}

export interface ParticipantRow {
  readonly agentId: string;
  readonly status: string;
  readonly exampleCount: number | null;
  readonly loss: number | null;
  readonly bytes: number | null;
  readonly reason: string | null;
}

export interface EnrolmentRow {
  readonly agentId: string;
  readonly publicKey: Buffer;
  readonly status: EnrolmentStatus;
  readonly source: EnrolmentSource;
  readonly enrolledAt: number;
  readonly revokedAt: number | null;
  readonly revokeReason: string | null;
  /** First and last session (null: never connected). */
  readonly firstSeen: number | null;
  readonly lastSeen: number | null;
  readonly sessions: number;
}

interface RawEnrolment {
  agent_id: string;
  public_key: Buffer;
  status: EnrolmentStatus;
  source: EnrolmentSource;
  enrolled_at: number;
  revoked_at: number | null;
  revoke_reason: string | null;
  first_seen: number | null;
  last_seen: number | null;
  sessions: number;
}

const toEnrolment = (r: RawEnrolment): EnrolmentRow => ({
  agentId: r.agent_id,
  publicKey: r.public_key,
  status: r.status,
  source: r.source,
  enrolledAt: r.enrolled_at,
  revokedAt: r.revoked_at,
  revokeReason: r.revoke_reason,
  firstSeen: r.first_seen,
  lastSeen: r.last_seen,
  sessions: r.sessions,
});

export interface TokenRow {
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly usedAt: number | null;
  readonly usedBy: string | null;
}

/** Outcome of StateDb.admit. */
export type AdmitResult =
  | { readonly ok: true; readonly row: EnrolmentRow; readonly created: boolean }
  | { readonly ok: false; readonly conflict: 'id-taken' | 'key-taken' | 'token-used' | 'token-unknown' | 'token-expired'; readonly row?: EnrolmentRow; readonly token?: TokenRow };

interface RawRound {
  id: number;
  status: RoundStatus;
  started_at: number;
  ended_at: number | null;
  duration_ms: number | null;
  base_model_version: string;
  model_version: string | null;
  completed_rounds: number | null;
  cohort_size: number;
  required: number;
  included: number | null;
  total_weight: number | null;
  reason: string | null;
  checkpoint: string | null;
}

export class StateDb {
  readonly path: string;
  private readonly db: Db;
  private readonly stmts: {
    insertRound: Statement;
    completeRound: Statement;
    failRound: Statement;
    insertParticipant: Statement;
    insertMetric: Statement;
    markLate: Statement;
    getRound: Statement;
    listRounds: Statement;
    countRounds: Statement;
    participants: Statement;
    metrics: Statement;
    getEnrolment: Statement;
    enrolmentsByKey: Statement;
    insertEnrolment: Statement;
    reenrol: Statement;
    recordSession: Statement;
    touchEnrolment: Statement;
    revoke: Statement;
    getToken: Statement;
    insertToken: Statement;
    useToken: Statement;
  };

  constructor(path: string) {
    this.path = path;
    try {
      this.db = new Database(path);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('busy_timeout = 5000');
    } catch (err) {
      throw new DatabaseError(path, `cannot open: ${(err as Error).message}`);
    }
    this.migrate();
    const db = this.db;
    this.stmts = {
      insertRound: db.prepare(
        `INSERT INTO rounds (id, status, started_at, base_model_version, cohort_size, required, config_json)
         VALUES (@id, 'running', @startedAt, @baseModelVersion, @cohortSize, @required, @config)`,
      ),
      completeRound: db.prepare(
        `UPDATE rounds SET status = 'completed', ended_at = @endedAt, duration_ms = @durationMs, model_version = @modelVersion,
           completed_rounds = @completedRounds, included = @included, total_weight = @totalWeight, reason = NULL,
           checkpoint = @checkpoint
         WHERE id = @id AND status = 'running'`,
      ),
      failRound: db.prepare(
        `UPDATE rounds SET status = @status, ended_at = @endedAt, duration_ms = @durationMs, included = @included, reason = @reason
         WHERE id = @id AND status = 'running'`,
      ),
      insertParticipant: db.prepare(
        `INSERT OR REPLACE INTO participants (round_id, agent_id, status, example_count, loss, bytes, reason, metrics_json)
         VALUES (@roundId, @agentId, @status, @exampleCount, @loss, @bytes, @reason, @metrics)`,
      ),
      insertMetric: db.prepare(`INSERT OR REPLACE INTO round_metrics (round_id, name, value) VALUES (?, ?, ?)`),
      markLate: db.prepare(`UPDATE participants SET status = 'late' WHERE round_id = ? AND agent_id = ? AND status = 'timeout'`),
      getRound: db.prepare(`SELECT * FROM rounds WHERE id = ?`),
      listRounds: db.prepare(`SELECT * FROM rounds ORDER BY id DESC LIMIT ? OFFSET ?`),
      countRounds: db.prepare(`SELECT COUNT(*) AS n FROM rounds`),
      participants: db.prepare(
        `SELECT agent_id, status, example_count, loss, bytes, reason FROM participants WHERE round_id = ? ORDER BY agent_id`,
      ),
      metrics: db.prepare(`SELECT name, value FROM round_metrics WHERE round_id = ?`),
      getEnrolment: db.prepare(`SELECT * FROM enrolments WHERE agent_id = ?`),
      enrolmentsByKey: db.prepare(`SELECT * FROM enrolments WHERE public_key = ? ORDER BY agent_id`),
      insertEnrolment: db.prepare(
        `INSERT INTO enrolments (agent_id, public_key, status, source, enrolled_at) VALUES (?, ?, 'enrolled', ?, ?)`,
      ),
      reenrol: db.prepare(
        `UPDATE enrolments SET public_key = ?, status = 'enrolled', source = ?, enrolled_at = ?, revoked_at = NULL, revoke_reason = NULL
         WHERE agent_id = ? AND status = 'revoked'`,
      ),
      recordSession: db.prepare(
        `UPDATE enrolments SET first_seen = COALESCE(first_seen, @now), last_seen = @now, sessions = sessions + 1 WHERE agent_id = @agentId`,
      ),
      touchEnrolment: db.prepare(`UPDATE enrolments SET last_seen = ? WHERE agent_id = ?`),
      revoke: db.prepare(
        `UPDATE enrolments SET status = 'revoked', revoked_at = ?, revoke_reason = ? WHERE agent_id = ? AND status = 'enrolled'`,
      ),
      getToken: db.prepare(`SELECT created_at, expires_at, used_at, used_by FROM enrolment_tokens WHERE token_hash = ?`),
      insertToken: db.prepare(`INSERT INTO enrolment_tokens (token_hash, created_at, expires_at) VALUES (?, ?, ?)`),
      useToken: db.prepare(
        `UPDATE enrolment_tokens SET used_at = ?, used_by = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?`,
      ),
    };
  }

  private migrate(): void {
    const db = this.db;
    const supported = MIGRATIONS.reduce((m, x) => Math.max(m, x.version), 0);
    try {
      db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
      const row = db.prepare(`SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations`).get() as { v: number };
      if (row.v > supported) throw new SchemaTooNewError(row.v, supported);
      for (const m of MIGRATIONS) {
        if (m.version <= row.v) continue;
        db.transaction(() => {
          db.exec(m.sql);
          db.prepare(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`).run(m.version, m.name, Date.now());
        })();
      }
    } catch (err) {
      if (err instanceof SchemaTooNewError) throw err;
      throw new DatabaseError(this.path, `migration failed: ${(err as Error).message}`);
    }
  }

  schemaVersion(): number {
    return (this.db.prepare(`SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations`).get() as { v: number }).v;
  }

  // ---- run metadata ---------------------------------------------------------------------------

  getMeta(key: string): string | undefined {
    const row = this.db.prepare(`SELECT value FROM run_meta WHERE key = ?`).get(key) as { value: string } | undefined;
    return row?.value;
  }

  setMeta(key: string, value: string): void {
    this.db.prepare(`INSERT INTO run_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`).run(key, value);
  }

  // ---- rounds ---------------------------------------------------------------------------------

  /** Marks rounds left 'running' by a crash as 'interrupted'; returns their ids. */
  markInterrupted(now: number): number[] {
    const ids = (this.db.prepare(`SELECT id FROM rounds WHERE status = 'running'`).all() as { id: number }[]).map((r) => r.id);
    this.db.prepare(`UPDATE rounds SET status = 'interrupted', ended_at = ?, reason = 'coordinator stopped during the round' WHERE status = 'running'`).run(now);
    return ids;
  }

  /** One more than the largest round id ever used (1 for a fresh run). */
  nextRoundId(): number {
    return (this.db.prepare(`SELECT COALESCE(MAX(id), 0) + 1 AS n FROM rounds`).get() as { n: number }).n;
  }

  /** Ids of committed (completed) rounds, ascending. */
  completedRoundIds(): number[] {
    return (this.db.prepare(`SELECT id FROM rounds WHERE status = 'completed' ORDER BY id`).all() as { id: number }[]).map((r) => r.id);
  }

  countCompleted(): number {
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM rounds WHERE status = 'completed'`).get() as { n: number }).n;
  }

  /** Records a round's start; its learning rate is a round metric from then on (the config is kept whole in config_json). */
  roundStarted(r: RoundStartedRecord): void {
    this.db.transaction(() => {
      this.stmts.insertRound.run({
        id: r.roundId,
        startedAt: r.startedAt,
        baseModelVersion: r.baseModelVersion,
        cohortSize: r.cohort.length,
        required: r.required,
        config: JSON.stringify(r.config),
      });
      this.stmts.insertMetric.run(r.roundId, 'learningRate', r.config.learningRate);
    })();
  }

  private writeParticipants(roundId: number, participants: readonly ParticipantRecord[]): void {
    for (const p of participants) {
      this.stmts.insertParticipant.run({
        roundId,
        agentId: p.agentId,
        status: p.status,
        exampleCount: p.exampleCount ?? null,
        loss: p.loss ?? null,
        bytes: p.bytes ?? null,
        reason: p.reason ?? null,
        metrics: p.metrics === undefined ? null : JSON.stringify(p.metrics),
      });
    }
  }

  private writeMetrics(roundId: number, metrics: Readonly<Record<string, number>>): void {
    for (const [name, value] of Object.entries(metrics)) {
      if (Number.isFinite(value)) this.stmts.insertMetric.run(roundId, name, value);
    }
  }

  /** Commits a completed round (call after its checkpoint files are in place). One transaction. */
  commitRound(summary: RoundSummary, completedRounds: number, checkpoint: string, meta?: Readonly<Record<string, string>>): void {
    this.db.transaction(() => {
      const res = this.stmts.completeRound.run({
        id: summary.roundId,
        endedAt: summary.endedAt,
        durationMs: summary.durationMs,
        modelVersion: summary.modelVersion ?? null,
        completedRounds,
        included: summary.metrics['included'] ?? null,
        totalWeight: summary.totalWeight ?? null,
        checkpoint,
      });
      if (res.changes !== 1) throw new DatabaseError(this.path, `round ${summary.roundId} is not a running round; cannot commit it`);
      this.writeParticipants(summary.roundId, summary.participants);
      this.writeMetrics(summary.roundId, summary.metrics);
      // Run state that must move with the round (the privacy ledger): same transaction.
      for (const [key, value] of Object.entries(meta ?? {})) this.setMeta(key, value);
    })();
  }

  /** Records a failed or aborted round. One transaction. */
  failRound(summary: RoundSummary): void {
    this.db.transaction(() => {
      this.stmts.failRound.run({
        id: summary.roundId,
        status: summary.status,
        endedAt: summary.endedAt,
        durationMs: summary.durationMs,
        included: summary.metrics['included'] ?? null,
        reason: summary.reason ?? null,
      });
      this.writeParticipants(summary.roundId, summary.participants);
      this.writeMetrics(summary.roundId, summary.metrics);
    })();
  }

  markLate(roundId: number, agentId: string): void {
    this.stmts.markLate.run(roundId, agentId);
  }

  getRound(id: number): RoundRow | undefined {
    const raw = this.stmts.getRound.get(id) as RawRound | undefined;
    return raw === undefined ? undefined : this.toRow(raw);
  }

  latestCompleted(): RoundRow | undefined {
    const raw = this.db.prepare(`SELECT * FROM rounds WHERE status = 'completed' ORDER BY id DESC LIMIT 1`).get() as RawRound | undefined;
    return raw === undefined ? undefined : this.toRow(raw);
  }

  listRounds(limit: number, offset: number): { total: number; items: RoundRow[] } {
    const total = (this.stmts.countRounds.get() as { n: number }).n;
    const items = (this.stmts.listRounds.all(limit, offset) as RawRound[]).map((r) => this.toRow(r));
    return { total, items };
  }

  /** Adds (or replaces) metrics of a round already recorded, e.g. an evaluation that finished after its commit. */
  addRoundMetrics(roundId: number, metrics: Readonly<Record<string, number>>): void {
    this.db.transaction(() => {
      for (const [name, value] of Object.entries(metrics)) this.stmts.insertMetric.run(roundId, name, value);
    })();
  }

  participants(roundId: number): ParticipantRow[] {
    return (
      this.stmts.participants.all(roundId) as {
        agent_id: string;
        status: string;
        example_count: number | null;
        loss: number | null;
        bytes: number | null;
        reason: string | null;
      }[]
    ).map((p) => ({
      agentId: p.agent_id,
      status: p.status,
      exampleCount: p.example_count,
      loss: p.loss,
      bytes: p.bytes,
      reason: p.reason,
    }));
  }

  private toRow(r: RawRound): RoundRow {
    const metrics: Record<string, number> = {};
    for (const m of this.stmts.metrics.all(r.id) as { name: string; value: number }[]) metrics[m.name] = m.value;
    return {
      id: r.id,
      status: r.status,
      startedAt: r.started_at,
      endedAt: r.ended_at,
      durationMs: r.duration_ms,
      baseModelVersion: r.base_model_version,
      modelVersion: r.model_version,
      completedRounds: r.completed_rounds,
      cohortSize: r.cohort_size,
      required: r.required,
      included: r.included,
      totalWeight: r.total_weight,
      reason: r.reason,
      checkpoint: r.checkpoint,
      metrics,
    };
  }

  // ---- enrolments -----------------------------------------------------------------------------

  getEnrolment(agentId: string): EnrolmentRow | undefined {
    const r = this.stmts.getEnrolment.get(agentId) as RawEnrolment | undefined;
    return r === undefined ? undefined : toEnrolment(r);
  }

  /** Every row (any agent id, any status) holding this public key. */
  enrolmentsByKey(publicKey: Uint8Array): EnrolmentRow[] {
    return (this.stmts.enrolmentsByKey.all(Buffer.from(publicKey)) as RawEnrolment[]).map(toEnrolment);
  }

  listEnrolments(status?: EnrolmentStatus): EnrolmentRow[] {
    const rows = (status === undefined
      ? this.db.prepare(`SELECT * FROM enrolments ORDER BY agent_id`).all()
      : this.db.prepare(`SELECT * FROM enrolments WHERE status = ? ORDER BY agent_id`).all(status)) as RawEnrolment[];
    return rows.map(toEnrolment);
  }

  /**
   * Enrols (agentId, publicKey) in one transaction, optionally consuming a one-time token (by its
   * hash) in the same transaction: either both happen or neither. An id already enrolled with this
   * key is a no-op (created: false); an id enrolled with another key, or a key enrolled under
   * another id, is a conflict. A revoked id is enrolled again (the operator's or a token's call).
   */
  admit(agentId: string, publicKey: Uint8Array, source: EnrolmentSource, now: number, tokenHash?: Uint8Array): AdmitResult {
    const key = Buffer.from(publicKey);
    return this.db.transaction((): AdmitResult => {
      const row = this.getEnrolment(agentId);
      if (row !== undefined && row.status === 'enrolled') {
        if (!row.publicKey.equals(key)) return { ok: false, conflict: 'id-taken', row };
        return { ok: true, row, created: false };
      }
      const other = this.enrolmentsByKey(key).find((r) => r.status === 'enrolled' && r.agentId !== agentId);
      if (other !== undefined) return { ok: false, conflict: 'key-taken', row: other };
      if (tokenHash !== undefined) {
        const token = this.getToken(tokenHash);
        if (token === undefined) return { ok: false, conflict: 'token-unknown' };
        if (token.usedAt !== null) return { ok: false, conflict: 'token-used', token };
        if (token.expiresAt <= now) return { ok: false, conflict: 'token-expired', token };
        this.stmts.useToken.run(now, agentId, Buffer.from(tokenHash), now);
      }
      if (row === undefined) this.stmts.insertEnrolment.run(agentId, key, source, now);
      else this.stmts.reenrol.run(key, source, now, agentId);
      return { ok: true, row: this.getEnrolment(agentId) as EnrolmentRow, created: true };
    }).immediate();
  }

  /** Revokes an enrolled agent id; returns its row (already revoked: unchanged), or undefined if unknown. */
  revoke(agentId: string, now: number, reason: string | null): EnrolmentRow | undefined {
    this.stmts.revoke.run(now, reason, agentId);
    return this.getEnrolment(agentId);
  }

  /** Records a session of an enrolled agent that proved its key. */
  recordSession(agentId: string, now: number): void {
    this.stmts.recordSession.run({ agentId, now });
  }

  touch(agentId: string, now: number): void {
    this.stmts.touchEnrolment.run(now, agentId);
  }

  /** last_seen of several agents in one transaction (one fsync instead of one per agent). */
  touchMany(seen: ReadonlyMap<string, number>): void {
    if (seen.size === 0) return;
    this.db.transaction(() => {
      for (const [agentId, now] of seen) this.stmts.touchEnrolment.run(now, agentId);
    })();
  }

  countEnrolments(): number {
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM enrolments`).get() as { n: number }).n;
  }

  // ---- enrolment tokens (only their SHA-256 is stored) ------------------------------------------

  /** Stores minted tokens' hashes, all or none. */
  insertTokens(hashes: readonly Uint8Array[], createdAt: number, expiresAt: number): void {
    this.db.transaction(() => {
      for (const h of hashes) this.stmts.insertToken.run(Buffer.from(h), createdAt, expiresAt);
    })();
  }

  getToken(hash: Uint8Array): TokenRow | undefined {
    const r = this.stmts.getToken.get(Buffer.from(hash)) as { created_at: number; expires_at: number; used_at: number | null; used_by: string | null } | undefined;
    return r === undefined ? undefined : { createdAt: r.created_at, expiresAt: r.expires_at, usedAt: r.used_at, usedBy: r.used_by };
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
