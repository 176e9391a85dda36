/**
 * Errors are values: a stable code, a message a user can act on, and the offending field.
 * The HTTP layer maps codes to statuses; Temporal failures carry the code as their type.
 */
export type ErrorCode =
  | 'bad_request'
  | 'validation_failed'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'precondition_failed'
  /** A step came too late (or too early) in chain time. */
  | 'deadline'
  /** A step's guard (rule of the road) does not hold. */
  | 'guard'
  | 'payload_too_large'
  /** A request body that is not JSON. */
  | 'unsupported_media_type'
  | 'unknown_definition'
  | 'bad_signature'
  | 'unavailable';

export interface FieldError {
  /** JSON pointer of the offending value, e.g. `/input/quantity`. */
  field: string;
  message: string;
}

export class LockstepError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: FieldError[] = [],
  ) {
    super(message);
    this.name = 'LockstepError';
  }
}
