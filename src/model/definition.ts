/**
 * A process definition: the agreed shape of a multi-party process.
 * Loaded from `definitions/*.yaml|json`, validated against `definitions/schema.json`,
 * identified by the keccak-256 hash of its RFC 8785 canonical JSON form.
 */
export type JsonSchema = Record<string, unknown>;

export interface StepDefinition {
  id: string;
  title: string;
  /** The role that may take this step. */
  actor: string;
  /** Steps that must be final before this one may be taken. */
  after?: string[];
  /** JSON Schema (draft 2020-12) for the step's input. */
  input?: JsonSchema;
  /** Roles that receive the step's data; every other participant receives only its hash. Default: all roles. */
  visibility?: string[];
  /** Taking this step ends the instance with this outcome. */
  ends?: string;
  description?: string;
  /** Taken by a person: shown as a human task (Temporal UI, `GET /api/v1/tasks`). */
  human?: HumanTask;
}

export interface HumanTask {
  /** Who should do it, e.g. a team or a person's handle at the acting party. */
  assignee?: string;
  /** Name of the form an app shows for it. */
  form?: string;
  instructions?: string;
}

export interface Definition {
  id: string;
  version: string;
  title: string;
  description?: string;
  roles: Record<string, { title?: string; description?: string }>;
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
