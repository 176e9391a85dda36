/**
 * A process definition: the agreed shape of a multi-party process.
 * Loaded from `definitions/*.yaml|json`, validated against `definitions/schema.json` and the
 * semantic checks in src/definitions/check.ts, identified by the keccak-256 hash of its RFC 8785
 * canonical JSON form. The language reference is docs/definitions.md.
 */
export type JsonSchema = Record<string, unknown>;

/** A JSON Logic rule (https://jsonlogic.com), evaluated by json-logic-js. */
export type JsonLogicRule = Record<string, unknown> | boolean;

/** Seconds as a number, or a duration such as "90s", "30m", "12h", "5d". */
export type Duration = number | string;

export interface Guard {
  /** Must evaluate to a truthy value over `{ input, output, steps }` for the step to be taken. */
  rule: JsonLogicRule;
  /** Shown (and recorded) when the guard refuses the step. */
  message?: string;
}

/** Chain-time window measured from the latest occurrence of the anchor step's pin. */
export interface Deadline {
  /** The step whose pin's block timestamp starts the clock. */
  anchor: string;
  /** The step must be pinned at most this long after the anchor. */
  within: Duration;
}

export interface NotBefore {
  anchor: string;
  /** The step may be pinned only once this long has passed since the anchor. */
  after: Duration;
}

/** A human task: metadata for the UI that shows the step to people of the actor's organisation. */
export interface HumanTask {
  /** The role whose people do the task; it must be the step's actor. */
  assignee: string;
  form: string;
  instructions?: string;
}

export interface StepDefinition {
  id: string;
  title: string;
  description?: string;
  /** The role that may take this step. */
  actor: string;
  /** Steps that must be final (taken at least once) before this one may be taken. */
  after?: string[];
  /** States that must all be marked (a join when several); taking the step consumes them. */
  from?: string[];
  /** States the step marks (a fork when several). */
  to?: string[];
  /** JSON Schema (draft 2020-12) for the step's input; may `$ref` the definition's `$defs`. */
  input?: JsonSchema;
  /**
   * JSON Schema (draft 2020-12) for the step's output, the result the actor produced; may `$ref`
   * the `$defs`. Declared: every proposal carries a valid output. Not declared: none may.
   */
  output?: JsonSchema;
  /** Roles that receive the step's data; every other participant receives only its hash. Default: all roles. */
  visibility?: string[];
  human?: HumanTask;
  deadline?: Deadline;
  notBefore?: NotBefore;
  guard?: Guard;
  /** Taking this step ends the instance with this outcome. */
  ends?: string;
}

export interface StateDefinition {
  title?: string;
  /** Marked when an instance starts. */
  initial?: boolean;
  /** Marking this state ends the instance with this outcome. */
  end?: string;
}

export interface Definition {
  id: string;
  version: string;
  title: string;
  description?: string;
  roles: Record<string, { title?: string; description?: string }>;
  /** JSON Schemas shared by the steps' input and output schemas (`$ref: "#/$defs/name"`). */
  $defs?: Record<string, JsonSchema>;
  /** The explicit state machine, when the process is more than a partial order of steps. */
  states?: Record<string, StateDefinition>;
  steps: StepDefinition[];
}

/** A definition with its agreed identity, as held by a node. */
export interface LoadedDefinition {
  definition: Definition;
  /** 0x-prefixed keccak-256 of the canonical JSON form. */
  hash: string;
  /** Where it was loaded from, for error messages. */
  source: string;
}
