/**
 * The OpenAPI 3.1 document of this node's API, generated from the definitions it holds: the
 * body of `POST /instances` is one shape per definition (its roles), and the body of
 * `POST /instances/{id}/steps` one shape per step, whose `input` and `output` are that step's JSON Schemas
 * (OpenAPI 3.1 speaks JSON Schema 2020-12, the definitions' dialect, so schemas go in as they are,
 * but for references to the definition's `$defs`, which become components of their own).
 */
import type { LoadedDefinition } from '../model/definition';
import { EVENT_TYPES } from '../model/event';
import { evidenceBundleSchema } from '../model/evidence';

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Schema) => ({ 'application/json': { schema } });
const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: ref('Problem') } } });
const ok = (description: string, schema: Schema) => ({ description, content: json(schema) });
const query = (name: string, schema: Schema, description: string) => ({ name, in: 'query', required: false, schema, description });
const path = (name: string, description: string) => ({ name, in: 'path', required: true, schema: { type: 'string' }, description });
const idempotencyKey = { name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', maxLength: 255 }, description: 'Repeat-safe retries: the same key and body return the first response.' };
const paging = [query('limit', { type: 'integer', minimum: 1, maximum: 500, default: 100 }, 'page size'), query('cursor', { type: 'string' }, 'the `next` of the previous page')];
const AUTH_ERRORS = { '401': problem('no or unknown API key') };
const WRITE_ERRORS = { ...AUTH_ERRORS, '400': problem('malformed JSON or parameter'), '403': problem('the app may not act in the role this needs'), '409': problem('conflict, or the same Idempotency-Key still in progress'), '413': problem('body too large'), '415': problem('body is not application/json'), '422': problem('body does not fit its schema, or Idempotency-Key reused with another body') };

/**
 * Points `#/$defs/name…` at the component holding the definition's shared schema: inside the
 * OpenAPI document, `#` is the document itself, where the definition's `$defs` are not.
 */
function withComponentRefs(schema: unknown, shared: Record<string, unknown>, component: (name: string) => string): unknown {
  if (Array.isArray(schema)) return schema.map((s) => withComponentRefs(s, shared, component));
  if (schema === null || typeof schema !== 'object') return schema;
  return Object.fromEntries(
    Object.entries(schema).map(([key, value]) => {
      const target = key === '$ref' && typeof value === 'string' ? /^#\/\$defs\/([^/]+)(\/.*)?$/.exec(value) : null;
      if (target && Object.hasOwn(shared, target[1]!)) return [key, `#/components/schemas/${component(target[1]!)}${target[2] ?? ''}`];
      return [key, withComponentRefs(value, shared, component)];
    }),
  );
}

function componentName(...parts: string[]): string {
  return parts.map((p) => p.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase()).replace(/^./, (c) => c.toUpperCase())).join('');
}

export function openApiDocument(definitions: LoadedDefinition[], party: string): Schema {
  const schemas: Record<string, Schema> = {
    Problem: {
      type: 'object',
      required: ['type', 'title', 'status', 'detail', 'code'],
      properties: {
        type: { type: 'string' },
        title: { type: 'string' },
        status: { type: 'integer' },
        detail: { type: 'string' },
        code: { type: 'string' },
        errors: { type: 'array', items: { type: 'object', required: ['field', 'message'], properties: { field: { type: 'string', description: 'JSON pointer, header or ?parameter' }, message: { type: 'string' } } } },
      },
    },
    Instance: {
      type: 'object',
      properties: {
        id: { type: 'string' }, definitionId: { type: 'string' }, definitionHash: { type: 'string' },
        roles: { type: 'object', additionalProperties: { type: 'string' } }, createdBy: { type: 'string' }, createdAt: { type: 'string', format: 'date-time' },
        status: { enum: ['active', 'ended'] }, outcome: { type: ['string', 'null'] },
      },
    },
    Step: {
      type: 'object',
      properties: {
        seq: { type: ['integer', 'null'] }, step: { type: 'string' }, author: { type: 'string' }, status: { enum: ['pending', 'confirmed', 'rejected'] },
        envelopeHash: { type: 'string' }, signature: { type: 'string' }, proposedAt: { type: 'string' }, decidedAt: { type: ['string', 'null'] },
        chain: { type: ['object', 'null'] }, input: {}, output: {}, visible: { type: 'boolean' }, rejection: { type: ['object', 'null'] },
      },
    },
    Event: {
      type: 'object',
      required: ['seq', 'type', 'at', 'data'],
      properties: { seq: { type: 'integer' }, type: { enum: [...EVENT_TYPES] }, at: { type: 'string', format: 'date-time' }, instanceId: { type: 'string' }, step: { type: 'string' }, envelopeHash: { type: 'string' }, data: { type: 'object' } },
    },
    Webhook: { type: 'object', properties: { id: { type: 'string' }, app: { type: 'string' }, url: { type: 'string' }, types: { type: 'array', items: { enum: [...EVENT_TYPES] } }, instanceId: { type: 'string' }, createdAt: { type: 'string' } } },
    Delivery: { type: 'object', properties: { id: { type: 'string' }, subscriptionId: { type: 'string' }, seq: { type: 'integer' }, state: { enum: ['pending', 'delivered', 'dead'] }, attempts: { type: 'integer' }, nextAttemptAt: { type: ['string', 'null'] }, lastError: { type: ['string', 'null'] }, deliveredAt: { type: ['string', 'null'] } } },
    WebhookRequest: {
      type: 'object', additionalProperties: false, required: ['url'],
      properties: { url: { type: 'string', format: 'uri', description: 'http or https; never a link-local (cloud metadata), unspecified, multicast, broadcast or reserved address, and only where LOCKSTEP_WEBHOOK_ALLOW lists when the node sets it' }, types: { type: 'array', items: { enum: [...EVENT_TYPES] } }, instanceId: { type: 'string' }, secret: { type: 'string', minLength: 16 }, from: { type: 'integer', minimum: 0 } },
    },
  };

  const starts: Schema[] = [];
  const steps: Schema[] = [];
  const stepIds = new Map<string, number>();
  for (const { definition, hash } of definitions) {
    const roles = Object.keys(definition.roles);
    const start = componentName('Start', definition.id);
    schemas[start] = {
      title: `Start ${definition.title}`,
      description: `definition ${definition.id} v${definition.version} (${hash})`,
      type: 'object', additionalProperties: false, required: ['definition', 'roles'],
      properties: {
        definition: { const: definition.id },
        roles: { type: 'object', additionalProperties: false, required: roles, properties: Object.fromEntries(roles.map((r) => [r, { type: 'string', description: definition.roles[r]?.title ?? r }])) },
      },
    };
    starts.push(ref(start));
    const shared = definition.$defs ?? {};
    const sharedName = (name: string) => componentName(definition.id, name);
    const own = (schema: unknown) => withComponentRefs(schema, shared, sharedName) as Schema;
    for (const [name, schema] of Object.entries(shared)) schemas[sharedName(name)] = own(schema);
    for (const step of definition.steps) {
      const name = componentName('Take', definition.id, step.id);
      schemas[name] = {
        title: `${definition.title}: ${step.title}`,
        description: [`Taken by role ${step.actor}${step.after ? ` after ${step.after.join(', ')}` : ''}.`, step.description, step.human ? `Human task${step.human.assignee ? ` for ${step.human.assignee}` : ''}.` : undefined].filter(Boolean).join(' '),
        type: 'object', additionalProperties: false, required: ['step', ...(step.input ? ['input'] : []), ...(step.output ? ['output'] : [])],
        // `output` only where the step declares one: a step without an output schema takes none.
        properties: { step: { const: step.id }, input: own(step.input ?? { type: 'object' }), ...(step.output ? { output: own(step.output) } : {}) },
      };
      steps.push(ref(name));
      stepIds.set(step.id, (stepIds.get(step.id) ?? 0) + 1);
    }
  }
  // A step id used by two definitions matches two shapes, so `oneOf` would be wrong there.
  const unique = [...stepIds.values()].every((n) => n === 1);
  schemas.StartInstance = { oneOf: starts };
  schemas.TakeStep = unique ? { oneOf: steps, discriminator: { propertyName: 'step' } } : { anyOf: steps };

  const paths: Record<string, Schema> = {
    '/status': { get: { summary: 'Health of this node: Temporal, MongoDB, chain head, listener lag', security: [], responses: { '200': ok('healthy', { type: 'object' }), '503': ok('a dependency is down', { type: 'object' }) } } },
    '/metrics': { get: { summary: "This process's metrics in Prometheus's text format", security: [], responses: { '200': { description: 'the exposition', content: { 'text/plain': { schema: { type: 'string' } } } } } } },
    '/definitions': { get: { summary: 'Definitions this node holds', responses: { '200': ok('definitions', { type: 'object' }), ...AUTH_ERRORS } } },
    '/definitions/{id}': { get: { summary: 'One definition, with its agreed hash', parameters: [path('id', 'definition id')], responses: { '200': ok('the definition', { type: 'object' }), '404': problem('unknown definition'), ...AUTH_ERRORS } } },
    '/instances': {
      post: { summary: `Start an instance in which ${party} plays a role`, parameters: [idempotencyKey], requestBody: { required: true, content: json(ref('StartInstance')) }, responses: { '201': ok('started', { type: 'object', properties: { instance: ref('Instance') } }), ...WRITE_ERRORS } },
      get: {
        summary: 'List instances, newest first',
        parameters: [
          query('definition', { type: 'string' }, 'definition id'), query('status', { enum: ['active', 'ended'] }, 'status'),
          query('role', { type: 'string' }, `instances where ${party} plays this role`), query('party', { type: 'string' }, 'instances this party takes part in'),
          query('createdFrom', { type: 'string', format: 'date-time' }, 'created at or after'), query('createdTo', { type: 'string', format: 'date-time' }, 'created before'), ...paging,
        ],
        responses: { '200': ok('a page', { type: 'object', properties: { instances: { type: 'array', items: ref('Instance') }, next: { type: ['string', 'null'] } } }), '400': problem('bad parameter'), ...AUTH_ERRORS },
      },
    },
    '/instances/{id}': { get: { summary: 'One instance', parameters: [path('id', 'instance id')], responses: { '200': ok('the instance', { type: 'object', properties: { instance: ref('Instance') } }), '404': problem('unknown instance'), ...AUTH_ERRORS } } },
    '/instances/{id}/steps': {
      post: {
        summary: 'Take the next step (one body shape per step of each definition)',
        parameters: [path('id', 'instance id'), idempotencyKey, query('wait', { enum: ['none', 'confirmed'], default: 'none' }, 'confirmed: answer once the step is decided'), query('timeout', { type: 'integer', minimum: 1, maximum: 300, default: 30 }, 'seconds to wait')],
        requestBody: { required: true, content: json(ref('TakeStep')) },
        responses: { '200': ok('decided (with wait=confirmed)', { type: 'object', properties: { step: ref('Step') } }), '202': ok('accepted, pending until its pin is confirmed; poll Location', { type: 'object', properties: { envelopeHash: { type: 'string' }, status: { const: 'pending' } } }), '404': problem('unknown instance or step'), ...WRITE_ERRORS },
      },
      get: { summary: "The instance's steps: decided in order, then pending", parameters: [path('id', 'instance id')], responses: { '200': ok('steps', { type: 'object', properties: { steps: { type: 'array', items: ref('Step') } } }), '404': problem('unknown instance'), ...AUTH_ERRORS } },
    },
    '/instances/{id}/data-requests': { post: { summary: 'Ask the author of each final pin still waiting for its data (waitingForData) to send it again, to this node', parameters: [path('id', 'instance id'), idempotencyKey], responses: { '200': ok('one result per waiting pin', { type: 'object', properties: { requests: { type: 'array', items: { type: 'object', properties: { author: { type: 'string' }, nonce: { type: 'integer' }, status: { enum: ['delivered', 'failed'] }, error: { type: 'string' } } } } } }), '404': problem('unknown instance'), ...AUTH_ERRORS } } },
    '/instances/{id}/steps/{hash}': { get: { summary: 'One step by envelope hash', parameters: [path('id', 'instance id'), path('hash', 'envelope hash')], responses: { '200': ok('the step', { type: 'object', properties: { step: ref('Step') } }), '404': problem('unknown step'), ...AUTH_ERRORS } } },
    '/instances/{id}/history': { get: { summary: "The instance's history (same as its steps)", parameters: [path('id', 'instance id')], responses: { '200': ok('steps', { type: 'object' }), '404': problem('unknown instance'), ...AUTH_ERRORS } } },
    '/instances/{id}/evidence': { get: { summary: 'Evidence bundle for a third party (lockstep export / verify): definition, decided steps with envelopes, signatures, receipts, readable data and pin references, and the instance secret that links its pins', parameters: [path('id', 'instance id')], responses: { '200': ok('the evidence bundle (format lockstep-evidence/1)', evidenceBundleSchema), '404': problem('unknown instance'), ...AUTH_ERRORS } } },
    '/history': {
      get: {
        summary: 'Query the history cache across instances',
        parameters: [
          query('instance', { type: 'string' }, 'instance id'), query('step', { type: 'string' }, 'step id'), query('author', { type: 'string' }, 'authoring party'),
          query('status', { enum: ['pending', 'confirmed', 'rejected'] }, 'outcome'), query('rejection', { type: 'string' }, 'rejection code, e.g. conflict'),
          query('from', { type: 'string', format: 'date-time' }, 'proposed at or after'), query('to', { type: 'string', format: 'date-time' }, 'proposed before'),
          query('order', { enum: ['asc', 'desc'], default: 'asc' }, 'by proposal time'), ...paging,
        ],
        responses: { '200': ok('a page', { type: 'object', properties: { steps: { type: 'array', items: ref('Step') }, next: { type: ['string', 'null'] } } }), '400': problem('bad parameter'), ...AUTH_ERRORS },
      },
    },
    '/tasks': {
      get: {
        summary: `Steps ${party} may take now, human ones flagged; oldest instance first`,
        parameters: [query('kind', { enum: ['all', 'human'] }, 'only human tasks'), query('definition', { type: 'string' }, 'definition id'), query('instance', { type: 'string' }, "one instance's tasks"), ...paging],
        responses: { '200': ok('a page', { type: 'object', properties: { tasks: { type: 'array', items: { type: 'object' } }, next: { type: ['string', 'null'] } } }), '400': problem('bad parameter'), ...AUTH_ERRORS },
      },
    },
    '/events': { get: { summary: 'The event log, for batch readers (WebSocket: /api/v1/events/ws)', parameters: [query('after', { type: 'integer', minimum: 0 }, 'sequence number to read after'), query('types', { type: 'string' }, 'comma-separated event types'), query('instance', { type: 'string' }, 'instance id'), query('limit', { type: 'integer' }, 'page size')], responses: { '200': ok('events', { type: 'object', properties: { events: { type: 'array', items: ref('Event') }, next: { type: 'integer' } } }), ...AUTH_ERRORS } } },
    '/webhooks': {
      post: { summary: 'Subscribe a URL to events (signed with HMAC-SHA256)', parameters: [idempotencyKey], requestBody: { required: true, content: json(ref('WebhookRequest')) }, responses: { '201': ok('subscribed; the secret is shown once', { type: 'object', properties: { webhook: ref('Webhook'), secret: { type: 'string' } } }), ...WRITE_ERRORS } },
      get: { summary: "This app's webhooks", responses: { '200': ok('webhooks', { type: 'object', properties: { webhooks: { type: 'array', items: ref('Webhook') } } }), ...AUTH_ERRORS } },
    },
    '/webhooks/{id}': {
      get: { summary: 'One webhook', parameters: [path('id', 'webhook id')], responses: { '200': ok('the webhook', { type: 'object' }), '404': problem('unknown webhook'), ...AUTH_ERRORS } },
      delete: { summary: 'Unsubscribe', parameters: [path('id', 'webhook id'), idempotencyKey], responses: { '200': ok('deleted', { type: 'object' }), '404': problem('unknown webhook'), ...AUTH_ERRORS } },
    },
    '/webhooks/{id}/deliveries': { get: { summary: 'Deliveries of a webhook', parameters: [path('id', 'webhook id'), query('state', { enum: ['pending', 'delivered', 'dead'] }, 'state')], responses: { '200': ok('deliveries', { type: 'object', properties: { deliveries: { type: 'array', items: ref('Delivery') } } }), '404': problem('unknown webhook'), ...AUTH_ERRORS } } },
    '/webhooks/{id}/dead-letters': { get: { summary: 'Deliveries that ran out of attempts', parameters: [path('id', 'webhook id')], responses: { '200': ok('dead deliveries', { type: 'object', properties: { deliveries: { type: 'array', items: ref('Delivery') } } }), '404': problem('unknown webhook'), ...AUTH_ERRORS } } },
    '/webhooks/{id}/deliveries/{deliveryId}/redeliver': { post: { summary: 'Queue a delivery again with fresh attempts', parameters: [path('id', 'webhook id'), path('deliveryId', 'delivery id'), idempotencyKey], responses: { '202': ok('queued', { type: 'object', properties: { delivery: ref('Delivery') } }), '404': problem('unknown webhook or delivery'), ...AUTH_ERRORS } } },
  };

  return {
    openapi: '3.1.0',
    info: { title: `Lockstep node API (${party})`, version: '1', description: 'See docs/api.md: authentication, idempotency, waiting, pagination, events.' },
    servers: [{ url: '/api/v1' }],
    security: [{ bearer: [] }, { apiKey: [] }],
    paths,
    components: {
      schemas,
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' } },
    },
  };
}
