/**
 * A seeded generator of bad requests for a node's REST API and data-exchange endpoint. Every
 * input it makes is invalid by construction (the wire schemas, the body guard, the routes), so
 * each must be refused with a 4xx that names the problem, and none may change anything.
 */
import { Wallet, hexlify, randomBytes } from 'ethers';
import { sealEnvelope, sealInvitation, newSecret } from '../../src/envelope/seal';

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FuzzCase {
  target: 'rest' | 'dx';
  label: string;
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** Statuses that name this problem correctly, and what the problem detail must say. */
  statuses: number[];
  detail: RegExp;
}

export interface FuzzContext {
  instanceId: string;
  definitionHash: string;
  apiKey: string;
  /** The REST API's body limit (LOCKSTEP_BODY_LIMIT_BYTES) and the data exchange's (EXCHANGE_BODY_LIMIT_BYTES, whatever that setting). */
  bodyLimitBytes: { rest: number; dx: number };
  /** A party's dev key, to make genuinely signed envelopes and invitations to mutate. */
  signer: Wallet;
  signerName: string;
  receiverName: string;
}

type Rng = () => number;
const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)]!;

/** What a field holds, so a bad value for it can be made: a wrong type or a string it refuses. */
type FieldKind = 'name' | 'hash' | 'signature' | 'id' | 'url' | 'secret' | 'date' | 'int' | 'object' | 'array' | 'stepInput' | 'const1';

const OF_TYPE: Record<string, unknown[]> = {
  number: [0, -1, 1.5, 1e308],
  boolean: [true, false],
  null: [null],
  array: [[], ['a'], [1, [2]]],
  object: [{}, { a: 1 }],
  string: ['', 'x', '0x00'],
};

const TYPE_OF: Record<FieldKind, string> = {
  name: 'string', hash: 'string', signature: 'string', id: 'string', url: 'string', secret: 'string', date: 'string',
  int: 'number', object: 'object', array: 'array', stepInput: 'object', const1: 'number',
};

const LONE_HIGH = '\ud800';
const LONE_LOW = '\udfff';

/** Strings each kind refuses: unicode edge cases where the kind has a pattern, lengths past its limit. */
function badStrings(kind: FieldKind): string[] {
  switch (kind) {
    case 'name':
      return ['', 'A', 'a'.repeat(64), 'a\u0000b', 'a\u202eb', 'ab\u200f', 'a😀', `a${LONE_HIGH}`, ' a', '$where', 'a.b', '\ufeffa', 'ä'];
    case 'hash':
      return ['0x', `0x${'g'.repeat(64)}`, `0x${'A'.repeat(64)}`, `0x${'0'.repeat(63)}`, `0x${'0'.repeat(63)}😀`, `${'0'.repeat(66)}`];
    case 'signature':
      return ['0x', `0x${'z'.repeat(130)}`, `0x${'0'.repeat(129)}\u0000`];
    case 'id':
      // maxLength counts code points, so 129 emoji are one too many (65 would be 130 UTF-16 units, and fine).
      return ['', 'x'.repeat(129), `id${LONE_LOW}`, '😀'.repeat(129)];
    case 'url':
      return ['ftp://x', 'javascript:alert(1)', `http://${'a'.repeat(2050)}`, '\u202ehttp://x', `http://x/${LONE_HIGH}`];
    case 'secret':
      return ['short', 'x'.repeat(257), `${'s'.repeat(20)}${LONE_HIGH}`];
    case 'date':
      return ['yesterday', '2020-13-45T00:00:00Z', '', '2020-01-01T00:00:00Z\u0000'];
    case 'stepInput':
      return [];
    default:
      return ['1', 'one'];
  }
}

/** Inputs the fixture step `note-host` (`{ text: string }`) refuses. */
const STEP_INPUTS: unknown[] = [{ text: 5 }, { text: ['a'] }, { text: `x${LONE_HIGH}` }, 'text', 7, [], null, true];

function badValue(rng: Rng, kind: FieldKind): unknown {
  const strings = badStrings(kind);
  if (TYPE_OF[kind] === 'string' && strings.length > 0 && rng() < 0.5) return pick(rng, strings);
  if (kind === 'stepInput') return pick(rng, STEP_INPUTS);
  if (kind === 'int') return pick(rng, ['1', 1.5, -5, 1e12, null, true, [], {}]);
  if (kind === 'const1') return pick(rng, [2, 0, '1', null]);
  const types = Object.keys(OF_TYPE).filter((t) => t !== TYPE_OF[kind]);
  return pick(rng, OF_TYPE[pick(rng, types)]!);
}

interface Template {
  target: 'rest' | 'dx';
  method: 'POST';
  path: string;
  valid: () => Record<string, unknown>;
  fields: Array<{ path: string[]; kind: FieldKind }>;
  /** Objects in the template that take no unknown properties. */
  closed: string[][];
  /** Fields the wire schema leaves open (any JSON), where a deep value gets furthest. */
  open: string[][];
  /** What a shape error says here. */
  shape: RegExp;
}

function templates(ctx: FuzzContext): Template[] {
  const header = () => ({
    id: `fuzz-${hexlify(randomBytes(6)).slice(2)}`,
    definitionId: 'race',
    definitionHash: ctx.definitionHash,
    roles: { host: ctx.signerName, left: ctx.receiverName, right: ctx.receiverName },
    createdBy: ctx.signerName,
    createdAt: new Date().toISOString(),
  });
  const envelope = () =>
    sealEnvelope(ctx.signer, {
      instanceId: ctx.instanceId,
      definitionHash: ctx.definitionHash,
      step: 'note-host',
      author: ctx.signerName,
      // Far beyond any nonce the test's honest steps use, and never delivered intact.
      nonce: 900_000_000 + Math.floor(Math.random() * 1000),
      proposedAt: new Date().toISOString(),
      salt: hexlify(randomBytes(32)),
      input: { text: 'fuzz' },
    }) as unknown as Record<string, unknown>;
  return [
    {
      target: 'rest', method: 'POST', path: '/api/v1/instances', shape: /not a valid startInstance/,
      valid: () => ({ definition: 'race', roles: { host: ctx.signerName, left: ctx.receiverName, right: ctx.receiverName } }),
      fields: [{ path: ['definition'], kind: 'name' }, { path: ['roles'], kind: 'object' }, { path: ['roles', 'host'], kind: 'name' }],
      closed: [[]],
      open: [],
    },
    {
      target: 'rest', method: 'POST', path: `/api/v1/instances/${ctx.instanceId}/steps`, shape: /not a valid proposeStep|input/,
      valid: () => ({ step: 'note-host', input: { text: 'fuzz' } }),
      fields: [{ path: ['step'], kind: 'name' }, { path: ['input'], kind: 'stepInput' }],
      closed: [[]],
      open: [['input'], ['output'], ['input', 'text']],
    },
    {
      target: 'rest', method: 'POST', path: '/api/v1/webhooks', shape: /not a valid webhookSubscription/,
      valid: () => ({ url: 'http://127.0.0.1:9/hook', types: ['step.decided'], instanceId: ctx.instanceId, secret: 's'.repeat(24), from: 0 }),
      fields: [{ path: ['url'], kind: 'url' }, { path: ['types'], kind: 'array' }, { path: ['instanceId'], kind: 'id' }, { path: ['secret'], kind: 'secret' }, { path: ['from'], kind: 'int' }],
      closed: [[]],
      open: [],
    },
    {
      target: 'dx', method: 'POST', path: '/dx/v1/envelopes', shape: /not a valid envelope/,
      valid: envelope,
      fields: [
        { path: ['hash'], kind: 'hash' }, { path: ['signature'], kind: 'signature' }, { path: ['envelope'], kind: 'object' },
        { path: ['envelope', 'v'], kind: 'const1' }, { path: ['envelope', 'instanceId'], kind: 'id' }, { path: ['envelope', 'definitionHash'], kind: 'hash' },
        { path: ['envelope', 'step'], kind: 'name' }, { path: ['envelope', 'author'], kind: 'name' }, { path: ['envelope', 'nonce'], kind: 'int' },
        { path: ['envelope', 'inputHash'], kind: 'hash' }, { path: ['data'], kind: 'object' }, { path: ['data', 'salt'], kind: 'hash' },
      ],
      closed: [[], ['envelope'], ['data']],
      open: [['data', 'input'], ['data', 'output'], ['data', 'input', 'text']],
    },
    {
      target: 'dx', method: 'POST', path: '/dx/v1/invitations', shape: /not a valid invitation/,
      valid: () => sealInvitation(ctx.signer, header(), newSecret()) as unknown as Record<string, unknown>,
      fields: [
        { path: ['header'], kind: 'object' }, { path: ['secret'], kind: 'hash' }, { path: ['signature'], kind: 'signature' },
        { path: ['header', 'id'], kind: 'id' }, { path: ['header', 'definitionId'], kind: 'name' }, { path: ['header', 'definitionHash'], kind: 'hash' },
        { path: ['header', 'roles'], kind: 'object' }, { path: ['header', 'createdBy'], kind: 'name' }, { path: ['header', 'createdAt'], kind: 'date' },
      ],
      closed: [[], ['header']],
      open: [],
    },
  ];
}

function setAt(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let at = obj;
  for (const key of path.slice(0, -1)) at = at[key] as Record<string, unknown>;
  at[path[path.length - 1]!] = value;
}

function getAt(obj: Record<string, unknown>, path: string[]): Record<string, unknown> {
  let at: unknown = obj;
  for (const key of path) at = (at as Record<string, unknown>)[key];
  return at as Record<string, unknown>;
}

/** JSON nested `depth` levels deep, built as text: building it as a value and stringifying it would itself overflow. */
function deepJson(rng: Rng, depth: number): string {
  const array = rng() < 0.5;
  return array ? `${'['.repeat(depth)}1${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

const MALFORMED = ['{', '{"a":1,}', "{'a':1}", '{"a":NaN}', '{"a":1} trailing', '/* c */{}', '{"a":"\\x41"}', '\u0000', '{"a":01}', '["unterminated', '{"a":1,"a":}', 'nul'];

function wrongValueCase(t: Template, headers: Record<string, string>, field: { path: string[] }, value: unknown): FuzzCase {
  const body = t.valid();
  setAt(body, field.path, value);
  return {
    target: t.target, method: t.method, path: t.path, label: `${field.path.join('.')} = ${JSON.stringify(value)?.slice(0, 40)}`,
    headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body), statuses: [400, 422], detail: new RegExp(`${t.shape.source}|surrogate`),
  };
}

/** A wrong value for every field of every wire format (all of the step input's), so no field is left to chance. */
function everyField(rng: Rng, all: Template[], headersOf: (t: Template) => Record<string, string>): FuzzCase[] {
  return all.flatMap((t) => t.fields.flatMap((field) => (field.kind === 'stepInput' ? STEP_INPUTS : [badValue(rng, field.kind)]).map((value) => wrongValueCase(t, headersOf(t), field, value))));
}

function mutate(rng: Rng, t: Template, ctx: FuzzContext, headers: Record<string, string>): FuzzCase {
  const base = { target: t.target, method: t.method, path: t.path } as const;
  const json = { ...headers, 'content-type': 'application/json' };
  const kind = pick(rng, ['malformed', 'contentType', 'huge', 'deep', 'deepField', 'wrongType', 'unknownField', 'notObject', 'loneSurrogateKey', 'nulKey'] as const);
  const body = t.valid();
  switch (kind) {
    case 'malformed':
      return { ...base, label: 'malformed JSON', headers: json, body: pick(rng, MALFORMED), statuses: [400], detail: /malformed JSON/ };
    case 'contentType': {
      const type = pick(rng, ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'application/octet-stream']);
      return { ...base, label: `content type ${type}`, headers: { ...headers, 'content-type': type }, body: JSON.stringify(body), statuses: [415], detail: /application\/json/ };
    }
    case 'huge': {
      const filler = 'x'.repeat(ctx.bodyLimitBytes[t.target] + 1 + Math.floor(rng() * 1024));
      return { ...base, label: 'body over the limit', headers: json, body: JSON.stringify({ ...body, filler }), statuses: [413], detail: /larger than this node accepts/ };
    }
    case 'deep': {
      const depth = pick(rng, [65, 200, 10_000, 50_000]);
      return { ...base, label: `whole body nested ${depth} deep`, headers: json, body: deepJson(rng, depth), statuses: [400], detail: /nested deeper than/ };
    }
    case 'deepField': {
      // A deep value in a field the wire schema leaves open (step input, envelope data) reaches furthest.
      const field = t.open.length > 0 && rng() < 0.7 ? pick(rng, t.open) : pick(rng, t.fields).path;
      const marker = '"__DEEP__"';
      setAt(body, field, '__DEEP__');
      const depth = pick(rng, [65, 10_000]);
      return { ...base, label: `${field.join('.')} nested ${depth} deep`, headers: json, body: JSON.stringify(body).replace(marker, deepJson(rng, depth)), statuses: [400], detail: /nested deeper than/ };
    }
    case 'wrongType': {
      const field = pick(rng, t.fields);
      return wrongValueCase(t, headers, field, badValue(rng, field.kind));
    }
    case 'unknownField': {
      const at = pick(rng, t.closed);
      const name = pick(rng, ['extra', '__proto__', 'constructor', '$set', 'a.b', '😀', '\u202eevil']);
      const target = getAt(body, at);
      // JSON.parse makes "__proto__" an own property, as a hostile client would send it.
      const text = JSON.stringify(body);
      const inserted = at.length === 0 ? text.replace(/^\{/, `{${JSON.stringify(name)}:1,`) : undefined;
      if (inserted === undefined) Object.defineProperty(target, name, { value: 1, enumerable: true, configurable: true, writable: true });
      return { ...base, label: `unknown field ${[...at, name].join('.')}`, headers: json, body: inserted ?? JSON.stringify(body), statuses: [422], detail: t.shape };
    }
    case 'notObject': {
      const text = pick(rng, ['[]', '[1,2]', '{}', '[{}]']);
      return { ...base, label: `body ${text}`, headers: json, body: text, statuses: [422], detail: t.shape };
    }
    case 'loneSurrogateKey':
      return { ...base, label: 'key with a lone surrogate', headers: json, body: JSON.stringify(body).replace(/^\{/, '{"\\ud83d":1,'), statuses: [400], detail: /surrogate/ };
    case 'nulKey':
      return { ...base, label: 'key with NUL', headers: json, body: JSON.stringify(body).replace(/^\{/, '{"a\\u0000b":1,'), statuses: [400], detail: /NUL/ };
  }
}

const BAD_IDS = ['%00', '..%2F..%2Fetc', '%F0%9F%98%80', 'x'.repeat(3000), '%ZZ', '%24where', '%7B%22%24gt%22%3A%22%22%7D', '%E2%80%AE', '%ED%A0%80', 'null', '-1', '0x'];

const BAD_QUERIES: Array<[string, string]> = [
  ['/api/v1/instances', 'limit=-1'], ['/api/v1/instances', 'limit=abc'], ['/api/v1/instances', 'limit=1&limit=2'], ['/api/v1/instances', 'limit=100000'],
  ['/api/v1/instances', 'status=deleted'], ['/api/v1/instances', 'createdFrom=yesterday'], ['/api/v1/instances', 'cursor=%00%00'], ['/api/v1/instances', 'cursor=eyJ2IjoxfQ'],
  ['/api/v1/instances', 'definition=%24ne'], ['/api/v1/instances', 'role=A%E2%80%AE'], ['/api/v1/instances', 'party=%F0%9F%98%80'], ['/api/v1/instances', `definition=${'a'.repeat(200)}`],
  ['/api/v1/events', 'after=-1'], ['/api/v1/events', 'after=1e309'], ['/api/v1/events', 'types=step.nothing'], ['/api/v1/events', 'types=UPPER'], ['/api/v1/events', 'instance=%00'],
  ['/api/v1/tasks', 'kind=robot'], ['/api/v1/tasks', 'limit=0'], ['/api/v1/tasks', 'definition=%ED%A0%80'], ['/api/v1/history', 'limit=1.5'],
];

function pathCases(rng: Rng, ctx: FuzzContext, headers: Record<string, string>): FuzzCase {
  const id = pick(rng, BAD_IDS);
  const json = { ...headers, 'content-type': 'application/json' };
  const variants: FuzzCase[] = [
    { target: 'rest', label: `GET instance ${id.slice(0, 20)}`, method: 'GET', path: `/api/v1/instances/${id}`, headers, statuses: [400, 404], detail: /unknown instance|malformed|not a valid|decode/i },
    { target: 'rest', label: `GET steps of ${id.slice(0, 20)}`, method: 'GET', path: `/api/v1/instances/${id}/steps`, headers, statuses: [400, 404], detail: /unknown instance|decode/i },
    { target: 'rest', label: `GET evidence of ${id.slice(0, 20)}`, method: 'GET', path: `/api/v1/instances/${id}/evidence`, headers, statuses: [400, 404], detail: /unknown instance|decode/i },
    { target: 'rest', label: `GET step ${id.slice(0, 20)}`, method: 'GET', path: `/api/v1/instances/${ctx.instanceId}/steps/${id}`, headers, statuses: [400, 404], detail: /unknown step|decode/i },
    { target: 'rest', label: `POST step to ${id.slice(0, 20)}`, method: 'POST', path: `/api/v1/instances/${id}/steps`, headers: json, body: JSON.stringify({ step: 'note-host', input: { text: 'x' } }), statuses: [400, 404], detail: /unknown instance|decode/i },
    { target: 'rest', label: `GET webhook ${id.slice(0, 20)}`, method: 'GET', path: `/api/v1/webhooks/${id}`, headers, statuses: [400, 404], detail: /webhook|decode/i },
    { target: 'rest', label: `DELETE webhook ${id.slice(0, 20)}`, method: 'DELETE', path: `/api/v1/webhooks/${id}`, headers, statuses: [400, 404], detail: /webhook|decode/i },
    { target: 'rest', label: `redeliver ${id.slice(0, 20)}`, method: 'POST', path: `/api/v1/webhooks/${id}/deliveries/${id}/redeliver`, headers, statuses: [400, 404], detail: /webhook|deliver|decode/i },
    { target: 'rest', label: `GET definition ${id.slice(0, 20)}`, method: 'GET', path: `/api/v1/definitions/${id}`, headers, statuses: [400, 404], detail: /unknown definition|decode/i },
    { target: 'dx', label: `DX unknown route ${id.slice(0, 20)}`, method: 'POST', path: `/dx/v1/${id}`, headers: json, body: '{}', statuses: [400, 404], detail: /no route|decode/i },
  ];
  return pick(rng, variants);
}

function queryCase(rng: Rng, ctx: FuzzContext, headers: Record<string, string>): FuzzCase {
  const [path, query] = pick(rng, BAD_QUERIES);
  const steps = rng() < 0.3;
  if (steps) {
    const q = pick(rng, ['wait=maybe', 'timeout=0', 'timeout=301', 'timeout=abc', 'wait=confirmed&wait=none']);
    // The body is bad too, so nothing can be taken whichever check a future change puts first.
    return { target: 'rest', label: `POST step ?${q}`, method: 'POST', path: `/api/v1/instances/${ctx.instanceId}/steps?${q}`, headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ step: 'no-such-step' }), statuses: [400, 404, 422], detail: /query parameter|unknown step|not a valid/ };
  }
  return { target: 'rest', label: `GET ${path}?${query.slice(0, 30)}`, method: 'GET', path: `${path}?${query}`, headers, statuses: [400, 404], detail: /query parameter|cursor|no route|unknown event types/ };
}

function authCase(rng: Rng, ctx: FuzzContext): FuzzCase {
  const headers = pick<Record<string, string>>(rng, [{}, { authorization: 'Bearer wrong-key-0123456789' }, { authorization: 'Basic eDp5' }, { 'x-api-key': `${ctx.apiKey}x` }, { authorization: 'Bearer ' }]);
  const path = pick(rng, ['/api/v1/instances', `/api/v1/instances/${ctx.instanceId}/steps`, '/api/v1/webhooks']);
  return { target: 'rest', label: `no valid key for POST ${path}`, method: 'POST', path, headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ step: 'note-host', input: { text: 'x' } }), statuses: [401], detail: /API key/ };
}

/** A body over the limit is refused for its size before it is parsed, whatever else is wrong with it. */
function overLimit(c: FuzzCase, limitBytes: FuzzContext['bodyLimitBytes']): FuzzCase {
  if (c.body === undefined || Buffer.byteLength(c.body) <= limitBytes[c.target]) return c;
  return { ...c, statuses: [413], detail: /larger than this node accepts/ };
}

/** `count` bad requests from `seed`; the same seed gives the same kinds of requests in the same order. */
export function generateCases(seed: number, count: number, ctx: FuzzContext): FuzzCase[] {
  const rng = seededRandom(seed);
  const auth = { authorization: `Bearer ${ctx.apiKey}` };
  const all = templates(ctx);
  const headersOf = (t: Template) => (t.target === 'rest' ? auth : { 'x-lockstep-party': ctx.signerName });
  const cases: FuzzCase[] = everyField(rng, all, headersOf);
  while (cases.length < count) {
    const roll = rng();
    if (roll < 0.65) {
      const t = pick(rng, all);
      cases.push(mutate(rng, t, ctx, headersOf(t)));
    } else if (roll < 0.8) cases.push(pathCases(rng, ctx, auth));
    else if (roll < 0.95) cases.push(queryCase(rng, ctx, auth));
    else cases.push(authCase(rng, ctx));
  }
  return cases.map((c) => overLimit(c, ctx.bodyLimitBytes));
}
