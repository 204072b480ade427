// Runtime validation of wire messages: one compiled TypeBox checker per message type,
// dispatched on the `type` discriminant, and a translation of TypeBox's first relevant error
// into a catalogued error that names the message type, the field and the rule.
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import type { TSchema } from '@sinclair/typebox';
import {
  InconsistentMessageError,
  InvalidValueError,
  MissingFieldError,
  NotAnObjectError,
  OutOfRangeError,
  PayloadTooLargeError,
  UnknownFieldError,
  UnknownTypeError,
  WrongDirectionError,
  WrongTypeError,
  isProtocolError,
  type ProtocolError,
} from './errors.js';
import { resolveLimits, type ProtocolLimits } from './limits.js';
import {
  MARGIN_LOSSES,
  MINING_LOSSES,
  RoundRecipeSchema,
  buildMessageSchemas,
  type AgentMessage,
  type RoundConfig,
  type RoundRecipe,
  type CoordinatorMessage,
  type MessageSchemas,
} from './schemas.js';
import { PROTOCOL_VERSION, assertCompatibleVersion } from './version.js';

export type Direction = 'agent-to-coordinator' | 'coordinator-to-agent';
export const AGENT_TO_COORDINATOR = 'agent-to-coordinator' as const;
export const COORDINATOR_TO_AGENT = 'coordinator-to-agent' as const;
export type MessageFor<D extends Direction> = D extends 'agent-to-coordinator' ? AgentMessage : CoordinatorMessage;

export type ValidationResult<T> = { ok: true; message: T } | { ok: false; error: ProtocolError };

export interface ProtocolOptions {
  limits?: Partial<ProtocolLimits>;
  /** The version this side speaks (default PROTOCOL_VERSION); hellos of another major are refused. */
  version?: string;
}

export interface Protocol {
  readonly limits: Readonly<ProtocolLimits>;
  readonly version: string;
  readonly schemas: MessageSchemas;
  /** Validates `raw` as a message travelling in `direction`; returns it typed or throws a catalogued error. */
  parseMessage<D extends Direction>(direction: D, raw: unknown): MessageFor<D>;
  parseAgentMessage(raw: unknown): AgentMessage;
  parseCoordinatorMessage(raw: unknown): CoordinatorMessage;
  /** Like parseMessage, but returns `{ok:false, error}` instead of throwing. */
  validate<D extends Direction>(direction: D, raw: unknown): ValidationResult<MessageFor<D>>;
  isValid(direction: Direction, raw: unknown): boolean;
}

/** Builds validators for a set of limits. Compile once at start-up and reuse. */
export function createProtocol(options: ProtocolOptions = {}): Protocol {
  const limits = resolveLimits(options.limits);
  const version = options.version ?? PROTOCOL_VERSION;
  assertCompatibleVersion(version, version); // validates the format
  const schemas = buildMessageSchemas(limits);
  const tables: Record<Direction, Map<string, TypeCheck<TSchema>>> = {
    'agent-to-coordinator': compileAll(schemas.agentToCoordinator),
    'coordinator-to-agent': compileAll(schemas.coordinatorToAgent),
  };

  function parseMessage<D extends Direction>(direction: D, raw: unknown): MessageFor<D> {
    const table = tables[direction];
    if (table === undefined) {
      throw new InvalidValueError('(any)', 'direction', `'${AGENT_TO_COORDINATOR}' or '${COORDINATOR_TO_AGENT}'`, describeValue(direction));
    }
    if (!isPlainObject(raw)) throw new NotAnObjectError(describeValue(raw));
    const type: unknown = raw['type'];
    if (type === undefined) throw new MissingFieldError('(unknown)', 'type');
    if (typeof type !== 'string') throw new WrongTypeError('(unknown)', 'type', 'a string', describeValue(type));
    const checker = table.get(type);
    if (checker === undefined) {
      const other: Direction = direction === AGENT_TO_COORDINATOR ? COORDINATOR_TO_AGENT : AGENT_TO_COORDINATOR;
      if (tables[other].has(type)) throw new WrongDirectionError(type, direction, other);
      throw new UnknownTypeError(describeValue(type), direction, [...table.keys()].join(', '));
    }
    if (type === 'hello') {
      // The version gate runs before the schema so that a peer of another major, whose hello may
      // carry other fields, learns about the version and not about a field it cannot fix.
      assertCompatibleVersion(raw['protocolVersion'], version);
    }
    if (!checker.Check(raw)) throw schemaError(type, checker.Errors(raw));
    checkSemantics(raw as unknown as AgentMessage | CoordinatorMessage);
    return raw as unknown as MessageFor<D>;
  }

  function validate<D extends Direction>(direction: D, raw: unknown): ValidationResult<MessageFor<D>> {
    try {
      return { ok: true, message: parseMessage(direction, raw) };
    } catch (err) {
      if (isProtocolError(err)) return { ok: false, error: err };
      throw err;
    }
  }

  return {
    limits,
    version,
    schemas,
    parseMessage,
    parseAgentMessage: (raw) => parseMessage(AGENT_TO_COORDINATOR, raw),
    parseCoordinatorMessage: (raw) => parseMessage(COORDINATOR_TO_AGENT, raw),
    validate,
    isValid: (direction, raw) => validate(direction, raw).ok,
  };
}

/** Validators for DEFAULT_LIMITS and PROTOCOL_VERSION. */
export const defaultProtocol: Protocol = createProtocol();

/** parseMessage of the default protocol (DEFAULT_LIMITS). */
export function parseMessage<D extends Direction>(direction: D, raw: unknown): MessageFor<D> {
  return defaultProtocol.parseMessage(direction, raw);
}

/** validate of the default protocol (DEFAULT_LIMITS). */
export function validateMessage<D extends Direction>(direction: D, raw: unknown): ValidationResult<MessageFor<D>> {
  return defaultProtocol.validate(direction, raw);
}

let recipeChecker: TypeCheck<typeof RoundRecipeSchema> | undefined;

/**
 * Validates a training recipe on its own (RoundRecipeSchema), e.g. in a coordinator's
 * configuration before any round: returns it typed or throws the catalogued error naming the
 * field (message type 'recipe').
 */
export function parseRoundRecipe(raw: unknown): RoundRecipe {
  recipeChecker ??= TypeCompiler.Compile(RoundRecipeSchema);
  if (!isPlainObject(raw)) throw new NotAnObjectError(describeValue(raw));
  if (!recipeChecker.Check(raw)) throw schemaError('recipe', recipeChecker.Errors(raw));
  return raw as RoundRecipe;
}

// ---- cross-field rules the schemas cannot express ------------------------------------------

/** config.margin exactly with the losses that take one, config.mining exactly with triplet. */
function checkLossParameters(type: string, c: RoundConfig): void {
  for (const [field, losses] of [['margin', MARGIN_LOSSES], ['mining', MINING_LOSSES]] as const) {
    const takes = losses.includes(c.loss);
    if (takes && c[field] === undefined) throw new InconsistentMessageError(type, `config.loss '${c.loss}' needs config.${field}`);
    if (!takes && c[field] !== undefined) throw new InconsistentMessageError(type, `config.${field} goes only with config.loss ${losses.join(' or ')}, not '${c.loss}'`);
  }
}

function checkSemantics(msg: AgentMessage | CoordinatorMessage): void {
  switch (msg.type) {
    case 'round-start': {
      const c = msg.config;
      if (c.dp !== undefined && c.clipNorm === 0) {
        throw new InconsistentMessageError(msg.type, 'config.dp needs config.clipNorm > 0: the noise is scaled to the clip norm');
      }
      checkLossParameters(msg.type, c);
      if (c.sampling !== undefined && c.cohortSize > c.sampling.invited) {
        throw new InconsistentMessageError(msg.type, `config.cohortSize ${c.cohortSize} exceeds config.sampling.invited ${c.sampling.invited}: the cohort is a subset of the invited agents`);
      }
      break;
    }
    case 'secagg':
      if (msg.from === msg.to) throw new InconsistentMessageError(msg.type, `from and to are both '${msg.from}'`);
      if (msg.from === '@all') throw new InconsistentMessageError(msg.type, "from cannot be '@all'");
      break;
    default:
      break;
  }
}

// ---- TypeBox error -> catalogued error -----------------------------------------------------

function compileAll(schemas: Readonly<Record<string, TSchema>>): Map<string, TypeCheck<TSchema>> {
  const out = new Map<string, TypeCheck<TSchema>>();
  for (const [type, schema] of Object.entries(schemas)) out.set(type, TypeCompiler.Compile(schema));
  return out;
}

const TOO_LARGE = new Set<ValueErrorType>([
  ValueErrorType.Uint8ArrayMaxByteLength,
  ValueErrorType.StringMaxLength,
  ValueErrorType.ArrayMaxItems,
  ValueErrorType.ObjectMaxProperties,
]);
const WRONG_TYPE = new Set<ValueErrorType>([
  ValueErrorType.Array,
  ValueErrorType.Boolean,
  ValueErrorType.Integer,
  ValueErrorType.Number,
  ValueErrorType.Object,
  ValueErrorType.String,
  ValueErrorType.Uint8Array,
  ValueErrorType.Null,
  ValueErrorType.Undefined,
]);
const OUT_OF_RANGE = new Set<ValueErrorType>([
  ValueErrorType.NumberMinimum,
  ValueErrorType.NumberMaximum,
  ValueErrorType.NumberExclusiveMinimum,
  ValueErrorType.NumberExclusiveMaximum,
  ValueErrorType.IntegerMinimum,
  ValueErrorType.IntegerMaximum,
  ValueErrorType.IntegerExclusiveMinimum,
  ValueErrorType.IntegerExclusiveMaximum,
]);

function priority(e: ValueError): number {
  if (e.type === ValueErrorType.ObjectAdditionalProperties) return 0;
  if (e.type === ValueErrorType.ObjectRequiredProperty) return 1;
  if (WRONG_TYPE.has(e.type)) return 2;
  if (TOO_LARGE.has(e.type) && !isFixedSize(e.schema)) return 3;
  return 4;
}

function schemaError(type: string, errors: Iterable<ValueError>): ProtocolError {
  let best: ValueError | undefined;
  let seen = 0;
  for (const e of errors) {
    if (best === undefined || priority(e) < priority(best)) best = e;
    if (++seen >= 64 || priority(e) === 0) break;
  }
  if (best === undefined) return new InvalidValueError(type, '(message)', 'a valid message', 'a value the schema rejects');
  return translate(type, best);
}

/** Turns one TypeBox error into the catalogued error for it. */
function translate(type: string, e: ValueError): ProtocolError {
  const field = formatPath(e.path);
  const s = e.schema as Record<string, unknown>;
  if (e.type === ValueErrorType.ObjectAdditionalProperties) {
    return new UnknownFieldError(type, field, allowedFields(s));
  }
  if (e.type === ValueErrorType.ObjectRequiredProperty) return new MissingFieldError(type, field);
  if (WRONG_TYPE.has(e.type)) return new WrongTypeError(type, field, expectedType(e.type), describeValue(e.value));
  if (OUT_OF_RANGE.has(e.type)) return new OutOfRangeError(type, field, bounds(s), describeValue(e.value));
  if (TOO_LARGE.has(e.type) && !isFixedSize(s)) {
    const [limit, actual] = sizes(e);
    return new PayloadTooLargeError(type, field, limit, actual);
  }
  return new InvalidValueError(type, field, rule(e), describeValue(e.value));
}

function formatPath(path: string): string {
  if (path === '') return '(message)';
  return path
    .slice(1)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
}

function allowedFields(s: Record<string, unknown>): string {
  const props = s['properties'];
  const names = props !== null && typeof props === 'object' ? Object.keys(props) : [];
  const patterns = s['patternProperties'];
  if (patterns !== null && typeof patterns === 'object') {
    for (const p of Object.keys(patterns)) names.push(`keys matching /${p}/`);
  }
  return names.length === 0 ? '(none)' : names.join(', ');
}

function expectedType(t: ValueErrorType): string {
  switch (t) {
    case ValueErrorType.Array:
      return 'an array';
    case ValueErrorType.Boolean:
      return 'a boolean';
    case ValueErrorType.Integer:
      return 'an integer';
    case ValueErrorType.Number:
      return 'a finite number';
    case ValueErrorType.Object:
      return 'an object';
    case ValueErrorType.String:
      return 'a string';
    case ValueErrorType.Uint8Array:
      return 'a Uint8Array (Buffer)';
    case ValueErrorType.Null:
      return 'null';
    default:
      return 'undefined';
  }
}

function bounds(s: Record<string, unknown>): string {
  const parts: string[] = [];
  if (typeof s['minimum'] === 'number') parts.push(`>= ${s['minimum']}`);
  if (typeof s['exclusiveMinimum'] === 'number') parts.push(`> ${s['exclusiveMinimum']}`);
  if (typeof s['maximum'] === 'number') parts.push(`<= ${s['maximum']}`);
  if (typeof s['exclusiveMaximum'] === 'number') parts.push(`< ${s['exclusiveMaximum']}`);
  return parts.join(' and ');
}

function isFixedSize(schema: unknown): boolean {
  const s = schema as Record<string, unknown>;
  return typeof s['minByteLength'] === 'number' && s['minByteLength'] === s['maxByteLength'];
}

function sizes(e: ValueError): [string, string] {
  const s = e.schema as Record<string, unknown>;
  const v = e.value;
  switch (e.type) {
    case ValueErrorType.Uint8ArrayMaxByteLength:
      return [`${String(s['maxByteLength'])} bytes`, `${(v as Uint8Array).length} bytes`];
    case ValueErrorType.StringMaxLength:
      return [`${String(s['maxLength'])} characters`, `${(v as string).length} characters`];
    case ValueErrorType.ArrayMaxItems:
      return [`${String(s['maxItems'])} items`, `${(v as unknown[]).length} items`];
    default:
      return [`${String(s['maxProperties'])} entries`, `${Object.keys(v as object).length} entries`];
  }
}

function describeSchema(s: Record<string, unknown>): string {
  if ('const' in s) return JSON.stringify(s['const']);
  if (typeof s['pattern'] === 'string') return `a string matching /${s['pattern']}/`;
  if (Array.isArray(s['anyOf'])) return (s['anyOf'] as Record<string, unknown>[]).map(describeSchema).join(' or ');
  return typeof s['type'] === 'string' ? s['type'] : 'a value of another shape';
}

function rule(e: ValueError): string {
  const s = e.schema as Record<string, unknown>;
  switch (e.type) {
    case ValueErrorType.StringPattern:
      return `a string matching /${String(s['pattern'])}/`;
    case ValueErrorType.StringMinLength:
      return `at least ${String(s['minLength'])} characters long`;
    case ValueErrorType.ArrayMinItems:
      return `an array of at least ${String(s['minItems'])} items`;
    case ValueErrorType.ArrayUniqueItems:
      return 'an array without duplicates';
    case ValueErrorType.Uint8ArrayMinByteLength:
    case ValueErrorType.Uint8ArrayMaxByteLength:
      return isFixedSize(s)
        ? `exactly ${String(s['minByteLength'])} bytes`
        : `at least ${String(s['minByteLength'])} bytes`;
    case ValueErrorType.Union:
    case ValueErrorType.Literal:
      return `one of ${describeSchema(s)}`;
    default:
      return e.message;
  }
}

/** A short, safe description of a received value for error messages (never dumps payloads). */
function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (v instanceof Uint8Array) return `${v.constructor.name}(${v.length} bytes)`;
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${v.byteLength} bytes)`;
  if (v instanceof ArrayBuffer) return `ArrayBuffer(${v.byteLength} bytes)`;
  if (Array.isArray(v)) return `an array of ${v.length} items`;
  switch (typeof v) {
    case 'string':
      return v.length > 60 ? `${JSON.stringify(v.slice(0, 60))}... (${v.length} chars)` : JSON.stringify(v);
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(v);
    case 'object':
      return 'an object';
    default:
      return typeof v;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}
