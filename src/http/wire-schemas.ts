/** JSON Schemas of the wire formats: what peers and apps may send. */
import { EVENT_TYPES } from '../model/event';

const hash = { type: 'string', pattern: '^0x[0-9a-f]{64}$' };
const signature = { type: 'string', pattern: '^0x[0-9a-fA-F]{130}$' };
const id = { type: 'string', minLength: 1, maxLength: 128 };
const name = { type: 'string', pattern: '^[a-z][a-z0-9-]{0,62}$' };

const header = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'definitionId', 'definitionHash', 'roles', 'createdBy', 'createdAt'],
  properties: {
    id,
    definitionId: name,
    definitionHash: hash,
    roles: { type: 'object', minProperties: 1, propertyNames: name, additionalProperties: name },
    createdBy: name,
    createdAt: { type: 'string', format: 'date-time' },
  },
};

export const WIRE_SCHEMAS = {
  resendRequest: {
    type: 'object',
    additionalProperties: false,
    required: ['instanceId', 'nonce'],
    properties: { instanceId: id, nonce: { type: 'integer', minimum: 1 } },
  },
  invitation: {
    type: 'object',
    additionalProperties: false,
    required: ['header', 'secret', 'signature'],
    properties: { header, secret: hash, signature, sinceBlock: { type: 'integer', minimum: 0 } },
  },
  envelope: {
    type: 'object',
    additionalProperties: false,
    required: ['envelope', 'hash', 'signature'],
    properties: {
      envelope: {
        type: 'object',
        additionalProperties: false,
        required: ['v', 'instanceId', 'definitionHash', 'step', 'author', 'nonce', 'proposedAt', 'inputHash'],
        properties: {
          v: { const: 1 },
          instanceId: id,
          definitionHash: hash,
          step: name,
          author: name,
          nonce: { type: 'integer', minimum: 1, maximum: 1_000_000_000 },
          proposedAt: { type: 'string', minLength: 1, maxLength: 64 },
          inputHash: hash,
        },
      },
      hash,
      signature,
      data: { type: 'object', additionalProperties: false, required: ['salt', 'input'], properties: { salt: hash, input: {}, output: {} } },
      receipt: {
        type: 'object',
        additionalProperties: false,
        required: ['root', 'index', 'count', 'proof'],
        properties: {
          root: hash,
          index: { type: 'integer', minimum: 0, maximum: 999 },
          count: { type: 'integer', minimum: 1, maximum: 1000 },
          proof: { type: 'array', maxItems: 16, items: hash },
        },
      },
    },
  },
  startInstance: {
    type: 'object',
    additionalProperties: false,
    required: ['definition', 'roles'],
    properties: {
      definition: name,
      roles: { type: 'object', minProperties: 1, propertyNames: name, additionalProperties: name },
    },
  },
  proposeStep: {
    type: 'object',
    additionalProperties: false,
    required: ['step'],
    properties: { step: name, input: {}, output: {} },
  },
  webhookSubscription: {
    type: 'object',
    additionalProperties: false,
    required: ['url'],
    properties: {
      url: { type: 'string', pattern: '^https?://', maxLength: 2048 },
      types: { type: 'array', uniqueItems: true, items: { enum: [...EVENT_TYPES] } },
      instanceId: id,
      secret: { type: 'string', minLength: 16, maxLength: 256 },
      from: { type: 'integer', minimum: 0 },
    },
  },
} as const;

export type WireFormat = keyof typeof WIRE_SCHEMAS;
