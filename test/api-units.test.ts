/** Pure pieces around the API and events: key parsing and checks, cursors, webhook signatures, the OpenAPI generator. */
import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { ApiKeys, mayActAs, parseApiKeys, requireRole } from '../src/api/auth';
import { decodeCursor, encodeCursor, queryFingerprint } from '../src/api/pagination';
import { openApiDocument } from '../src/api/openapi';
import { signPayload } from '../src/events/webhooks';
import { loadDefinitions } from '../src/definitions/load';
import { LockstepError } from '../src/model/errors';
import { repoRoot } from '../src/paths';

const request = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

test('API keys: bearer or X-API-Key; unknown and missing keys are refused', () => {
  const keys = new ApiKeys(parseApiKeys(JSON.stringify([{ key: 'k'.repeat(20), app: 'erp', roles: ['buyer'] }]), 'LOCKSTEP_API_KEYS'));
  expect(keys.authenticate(request({ authorization: `Bearer ${'k'.repeat(20)}` }))).toEqual({ app: 'erp', roles: ['buyer'] });
  expect(keys.authenticate(request({ 'x-api-key': 'k'.repeat(20) })).app).toBe('erp');
  expect(() => keys.authenticate(request({}))).toThrow(expect.objectContaining({ code: 'unauthorized' }));
  expect(() => keys.authenticate(request({ authorization: 'Bearer nope' }))).toThrow(expect.objectContaining({ code: 'unauthorized' }));
});

test('API key configuration is checked: JSON array, long keys, named apps', () => {
  expect(() => parseApiKeys('{', 'LOCKSTEP_API_KEYS')).toThrow(LockstepError);
  expect(() => parseApiKeys('{}', 'LOCKSTEP_API_KEYS')).toThrow('JSON array');
  expect(() => parseApiKeys(JSON.stringify([{ key: 'short', app: 'a', roles: [] }]), 'LOCKSTEP_API_KEYS')).toThrow('16+ characters');
});

test('roles: "*" acts in any role; otherwise only the listed ones', () => {
  expect(mayActAs({ app: 'ops', roles: ['*'] }, 'seller')).toBe(true);
  expect(mayActAs({ app: 'erp', roles: ['buyer'] }, 'seller')).toBe(false);
  expect(() => requireRole({ app: 'erp', roles: ['buyer'] }, ['seller'], 'take step "accept"', '/step')).toThrow(expect.objectContaining({ code: 'forbidden' }));
});

test('cursors round-trip and are bound to their query', () => {
  const q = queryFingerprint({ step: 'order' });
  const cursor = encodeCursor('2026-01-01T00:00:00.000Z', '0xabc', q);
  expect(decodeCursor(cursor, q)).toEqual({ v: '2026-01-01T00:00:00.000Z', id: '0xabc' });
  expect(() => decodeCursor(cursor, queryFingerprint({ step: 'pay' }))).toThrow('different query');
  expect(() => decodeCursor('not-a-cursor', q)).toThrow('not a cursor');
  expect(decodeCursor(undefined, q)).toBeUndefined();
});

test('webhook signatures are HMAC-SHA256 over "timestamp.body"', () => {
  const body = '{"event":{"seq":1}}';
  expect(signPayload('secret', 1700000000, body)).toBe(`t=1700000000,v1=${createHmac('sha256', 'secret').update(`1700000000.${body}`).digest('hex')}`);
});

test('the OpenAPI document has one request body per step, with the step input schema', () => {
  const definitions = loadDefinitions(join(repoRoot(), 'definitions'));
  const doc = openApiDocument(definitions, 'acme') as any;
  const po = definitions.find((d) => d.definition.id === 'purchase-order')!.definition;
  for (const step of po.steps) {
    const name = `TakePurchaseOrder${step.id[0]!.toUpperCase()}${step.id.slice(1)}`;
    expect(doc.components.schemas[name].properties.input).toEqual(step.input);
  }
  expect(doc.components.schemas.TakeStep.discriminator).toEqual({ propertyName: 'step' });
  expect(doc.components.schemas.StartPurchaseOrder.properties.roles.required).toEqual(['buyer', 'seller']);
});

test("a step that declares an output takes it in its request body; a step that does not, refuses one", () => {
  const definitions = loadDefinitions(join(repoRoot(), 'definitions'));
  const doc = openApiDocument(definitions, 'acme') as any;
  const claim = definitions.find((d) => d.definition.id === 'healthcare-claim')!.definition;
  const approve = doc.components.schemas.TakeHealthcareClaimApprovePrimary;
  expect(approve.required).toEqual(['step', 'input', 'output']);
  expect(approve.properties.output.properties.coveredAmount).toEqual({ $ref: '#/components/schemas/HealthcareClaimMoney' });
  expect(doc.components.schemas.HealthcareClaimMoney).toEqual(claim.$defs!.money);
  const submit = doc.components.schemas.TakeHealthcareClaimSubmitClaim;
  expect(submit.required).toEqual(['step', 'input']);
  expect(submit.properties).not.toHaveProperty('output');
  expect(submit.additionalProperties).toBe(false);
  expect(doc.components.schemas.Step.properties).toHaveProperty('output');
});

test('references to a definition\'s $defs resolve inside the OpenAPI document', () => {
  const doc = openApiDocument(loadDefinitions(join(repoRoot(), 'definitions')), 'acme') as any;
  const refs: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (node === null || typeof node !== 'object') return;
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') refs.push(value);
      else walk(value);
    }
  };
  walk(doc);
  expect(refs).toContain('#/components/schemas/LetterOfCreditDocument/properties/kind');
  for (const target of refs) {
    const resolved = target.slice(2).split('/').reduce<any>((at, segment) => at?.[segment], doc);
    expect([target, resolved === undefined ? 'dangling' : 'resolves']).toEqual([target, 'resolves']);
  }
});
