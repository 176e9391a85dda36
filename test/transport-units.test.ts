/**
 * Without a stack: the request-body guard (depth, Unicode, NUL keys) on bodies far deeper than
 * any recursion survives, the data-exchange TLS settings, which refuse half-configurations
 * with a message naming the variable and never the key, and the data exchange turning
 * deliveries away while the store's writes are behind, and the status of a request that met an
 * unavailable database.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jsonValueProblem as jsonBodyProblem, MAX_JSON_DEPTH, MAX_STEP_DATA_BYTES, stepDataSizeProblem, utf8Length } from '../src/process/json-value';
import { dxTlsFromEnv } from '../src/exchange/tls';
import { SHED_AFTER_QUEUED, SHED_AFTER_WAIT_MS, shedWhenBehind } from '../src/exchange/server';
import type { SerialStats } from '../src/store/serial-writes';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import type { NetworkFile } from '../src/model/network';
import { MongoNetworkError, MongoServerSelectionError } from 'mongodb';
import { problemHandler } from '../src/http/problem';
import { StoreUnavailableError } from '../src/store/unavailable';

test('the body guard measures depth without recursion, and finds lone surrogates and NUL keys', () => {
  const deep = JSON.parse(`${'['.repeat(200_000)}1${']'.repeat(200_000)}`) as unknown;
  expect(jsonBodyProblem(deep)).toEqual({ field: `/${'0/'.repeat(MAX_JSON_DEPTH - 1)}0`, message: `nested deeper than ${MAX_JSON_DEPTH} levels` });
  const atLimit = JSON.parse(`${'{"a":'.repeat(MAX_JSON_DEPTH)}1${'}'.repeat(MAX_JSON_DEPTH)}`) as unknown;
  expect(jsonBodyProblem(atLimit)).toBeUndefined();
  expect(jsonBodyProblem({ input: { text: 'ok 😀 \u202e\u0000' } })).toBeUndefined();
  expect(jsonBodyProblem({ input: { text: 'half \ud83d' } })).toEqual({ field: '/input/text', message: expect.stringMatching(/lone UTF-16 surrogate/) });
  expect(jsonBodyProblem({ input: { 'a\u0000b': 1 } })).toEqual({ field: '/input', message: 'has a key containing NUL' });
  expect(jsonBodyProblem({ 'a/b': { '\udc00': 1 } })?.field).toBe('/a~1b');
});

test("step data is measured in UTF-8 as JSON, and refused over the most one Temporal task can carry twice", () => {
  for (const text of ['', 'plain', 'é ß', '€ and ☃', '😀 pair', 'a\u0000b']) expect(utf8Length(text)).toBe(Buffer.byteLength(text, 'utf8'));
  // JSON of { input: "…" } is 12 bytes besides the string.
  const sized = (bytes: number) => ({ input: 'x'.repeat(bytes - 12) });
  expect(utf8Length(JSON.stringify(sized(MAX_STEP_DATA_BYTES)))).toBe(MAX_STEP_DATA_BYTES);
  expect(stepDataSizeProblem(sized(MAX_STEP_DATA_BYTES))).toBeUndefined();
  expect(stepDataSizeProblem(sized(MAX_STEP_DATA_BYTES + 1))).toEqual({ field: '/input', message: `step data (input and output) is ${MAX_STEP_DATA_BYTES + 1} bytes of JSON; a step carries at most ${MAX_STEP_DATA_BYTES}` });
  // Counted in bytes, not characters: a third as many three-byte characters reach the same size.
  expect(stepDataSizeProblem({ input: '€'.repeat(MAX_STEP_DATA_BYTES / 3) })).toBeDefined();
  expect(stepDataSizeProblem({ input: {}, output: { notes: 'x'.repeat(MAX_STEP_DATA_BYTES) } })?.message).toMatch(/^step data \(input and output\) is \d+ bytes/);
});

describe('data-exchange TLS settings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-tls-config-'));
  const secretKey = '-----BEGIN PRIVATE KEY-----\nTOP-SECRET-KEY-MATERIAL\n-----END PRIVATE KEY-----\n';
  writeFileSync(join(dir, 'node.crt'), 'CERT');
  writeFileSync(join(dir, 'node.key'), secretKey);
  writeFileSync(join(dir, 'ca.crt'), 'CA');
  const network = { parties: {} } as unknown as NetworkFile;
  const files = { LOCKSTEP_DX_TLS_CERT: join(dir, 'node.crt'), LOCKSTEP_DX_TLS_KEY: join(dir, 'node.key') };

  test('none configured: plain HTTP', () => {
    expect(dxTlsFromEnv({}, 'alpha', network)).toBeUndefined();
  });

  test('certificate, key and CA are read; mutual TLS is off unless asked for', () => {
    expect(dxTlsFromEnv({ ...files, LOCKSTEP_DX_TLS_CA: join(dir, 'ca.crt') }, 'alpha', network)).toEqual({ cert: 'CERT', key: secretKey, ca: 'CA', requireClientCert: false });
    expect(dxTlsFromEnv({ ...files, LOCKSTEP_DX_TLS_CA: join(dir, 'ca.crt'), LOCKSTEP_DX_TLS_REQUIRE_CLIENT_CERT: 'true' }, 'alpha', network)?.requireClientCert).toBe(true);
  });

  test('half a configuration is refused, naming what is missing', () => {
    expect(() => dxTlsFromEnv({ LOCKSTEP_DX_TLS_CERT: files.LOCKSTEP_DX_TLS_CERT }, 'alpha', network)).toThrow(/set both LOCKSTEP_DX_TLS_CERT and LOCKSTEP_DX_TLS_KEY/);
    expect(() => dxTlsFromEnv({ LOCKSTEP_DX_TLS_REQUIRE_CLIENT_CERT: 'true' }, 'alpha', network)).toThrow(/needs TLS/);
    expect(() => dxTlsFromEnv({ ...files, LOCKSTEP_DX_TLS_REQUIRE_CLIENT_CERT: 'true' }, 'alpha', network)).toThrow(/mutual TLS needs LOCKSTEP_DX_TLS_CA/);
    expect(() => dxTlsFromEnv({ ...files, LOCKSTEP_DX_TLS_REQUIRE_CLIENT_CERT: 'yes' }, 'alpha', network)).toThrow(/must be true or false/);
  });

  test('an unreadable file names the variable and the path, never key material', () => {
    let message = '';
    try {
      dxTlsFromEnv({ ...files, LOCKSTEP_DX_TLS_CERT: join(dir, 'missing.crt') }, 'alpha', network);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/LOCKSTEP_DX_TLS_CERT: cannot read .*missing\.crt: ENOENT/);
    expect(message).not.toMatch(/TOP-SECRET/);
  });
});

test('the data exchange turns deliveries away (503, Retry-After) only while the store has a backlog of old writes, and says so once each way', () => {
  const base: SerialStats = { writes: 10, waitMs: 0, runMs: 0, busyMs: 0, queued: 0, oldestWaitMs: 0 };
  let stats: SerialStats | null = base;
  const lines: string[] = [];
  const log = { warn: (_o: unknown, m: string) => lines.push(`warn ${m}`), info: (m: string) => lines.push(`info ${m}`) } as unknown as Logger;
  const shed = shedWhenBehind('beta', () => stats, log);
  const pass = (): { error: unknown; retryAfter?: string } => {
    const headers: Record<string, string> = {};
    let error: unknown = 'not called';
    shed({} as Request, { setHeader: (k: string, v: string) => (headers[k] = v) } as unknown as Response, (e?: unknown) => (error = e));
    return { error, ...(headers['Retry-After'] ? { retryAfter: headers['Retry-After'] } : {}) };
  };
  expect(pass()).toEqual({ error: undefined });
  // Many writes waiting, but none for long; or one waiting long (behind a stuck one): taken.
  stats = { ...base, queued: SHED_AFTER_QUEUED * 3, oldestWaitMs: 1_000 };
  expect(pass().error).toBeUndefined();
  stats = { ...base, queued: 3, oldestWaitMs: SHED_AFTER_WAIT_MS * 2 };
  expect(pass().error).toBeUndefined();
  // A backlog of old writes: turned away, benign and retryable.
  stats = { ...base, queued: SHED_AFTER_QUEUED, oldestWaitMs: SHED_AFTER_WAIT_MS + 2_000 };
  const refused = pass();
  expect(refused.retryAfter).toBe('5');
  expect(refused.error).toMatchObject({ code: 'unavailable', message: expect.stringMatching(/beta is behind on its store writes \(32 waiting, the oldest for 12 s\)/) });
  expect(pass().error).toMatchObject({ code: 'unavailable' });
  stats = base;
  expect(pass().error).toBeUndefined();
  expect(lines).toEqual(['warn store writes are behind: data exchange turns deliveries away until they catch up', 'info store writes caught up: data exchange takes deliveries again']);
  // MongoDB: no write line, never turned away.
  stats = null;
  expect(pass().error).toBeUndefined();
});

test('a request that met an unavailable database is answered 503 with Retry-After and logged as a warning; any other unexpected error stays a 500', () => {
  const lines: string[] = [];
  const log = {
    debug: (_o: unknown, m: string) => lines.push(`debug ${m}`),
    warn: (_o: unknown, m: string) => lines.push(`warn ${m}`),
    error: (_o: unknown, m: string) => lines.push(`error ${m}`),
  } as unknown as Logger;
  const handle = problemHandler(log);
  const answer = (error: unknown, callerGone = false): { status: number; retryAfter?: string; body: { code?: string; detail?: string } } => {
    const out: { status: number; retryAfter?: string; body: { code?: string; detail?: string } } = { status: 0, body: {} };
    const res = {
      req: { socket: { destroyed: callerGone } },
      status: (s: number) => ((out.status = s), res),
      type: () => res,
      set: (k: string, v: string) => (k === 'Retry-After' && (out.retryAfter = v), res),
      json: (b: { code?: string; detail?: string }) => ((out.body = b), res),
    };
    handle(error, {} as Request, res as unknown as Response, () => undefined);
    return out;
  };
  const waitQueue = Object.assign(new Error('Timed out while checking out a connection from connection pool'), { name: 'MongoWaitQueueTimeoutError' });
  const unavailable = [
    new StoreUnavailableError('a store write was not made: this process stopped leading its party'),
    new StoreUnavailableError('a store read (findOne) did not finish within 30000 ms; abandoned'),
    new MongoNetworkError('connection 4 to 127.0.0.1:27017 closed'),
    new MongoServerSelectionError('connect ECONNREFUSED 127.0.0.1:27017', {} as never),
    waitQueue,
  ];
  for (const error of unavailable) {
    const a = answer(error);
    expect(a).toMatchObject({ status: 503, retryAfter: '2', body: { code: 'unavailable' } });
    expect(a.body.detail).toContain((error as Error).message);
  }
  expect(answer(new TypeError("Cannot read properties of undefined (reading 'x')"))).toMatchObject({ status: 500, body: { code: 'internal' } });
  expect(lines).toEqual([...unavailable.map(() => 'warn database unavailable; answered 503'), 'error unhandled error']);
  // A delivery whose connection a step-down closed: the same answer (to no one), noted at debug level only.
  lines.length = 0;
  expect(answer(unavailable[0], true)).toMatchObject({ status: 503 });
  expect(lines).toEqual(['debug database unavailable; the caller is gone']);
});
