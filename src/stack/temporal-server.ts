import fs from 'node:fs';
import path from 'node:path';
import { Connection, isGrpcServiceError } from '@temporalio/client';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import { msToTs } from '@temporalio/common/lib/time';
import { requireBinary } from './binaries';
import { freePorts } from './ports';
import { startSupervised, type SupervisedProcess } from './supervised-process';
import { pollUntil } from './wait-until';

export type SearchAttributeKind = 'Keyword' | 'KeywordList' | 'Text' | 'Int' | 'Double' | 'Bool' | 'Datetime';

const READY_TIMEOUT_MS = 60_000;
/** Per-call bound while polling; the SDK's own retries would otherwise stretch a single attempt. */
const CALL_DEADLINE_MS = 2_000;
/** Retention for namespaces we create on an external server: long enough to inspect a finished run. */
const EXTERNAL_NAMESPACE_RETENTION = '3 days';
// gRPC status code, spelled out because @grpc/grpc-js is not a direct dependency.
const GRPC_ALREADY_EXISTS = 6;

/** The CLI's `--search-attribute` spelling (Keyword, KeywordList…) to the proto enum name (KEYWORD, KEYWORD_LIST…). */
const PROTO_TYPE_NAMES = {
  Keyword: 'KEYWORD',
  KeywordList: 'KEYWORD_LIST',
  Text: 'TEXT',
  Int: 'INT',
  Double: 'DOUBLE',
  Bool: 'BOOL',
  Datetime: 'DATETIME',
} as const;

/** The proto enum, named through the SDK helper because @temporalio/proto is not a direct dependency. */
type IndexedValueType = NonNullable<ReturnType<typeof encodeSearchAttributeIndexedValueType>>;

function indexedValueType(kind: SearchAttributeKind): IndexedValueType {
  const encoded = encodeSearchAttributeIndexedValueType(PROTO_TYPE_NAMES[kind]);
  if (encoded === undefined) throw new Error(`unknown search attribute type ${kind}`);
  return encoded;
}

export interface TemporalTarget {
  address: string;
  namespaces: string[];
  searchAttributes: Record<string, SearchAttributeKind>;
}

export interface DevServerOptions extends TemporalTarget {
  dir: string;
  logDir: string;
  port: number;
  uiPort: number;
  /** Called as soon as the process exists, before it is ready, so the caller can record its pid. */
  onSpawn?: (process: SupervisedProcess) => void;
  /** `--sqlite-pragma` values, e.g. `synchronous=off`. */
  sqlitePragmas?: string[];
}

export interface RunningDevServer {
  address: string;
  uiUrl: string;
  process: SupervisedProcess;
}

async function withConnection<T>(address: string, fn: (connection: Connection) => Promise<T>): Promise<T> {
  const connection = await Connection.connect({ address, connectTimeout: CALL_DEADLINE_MS });
  try {
    return await fn(connection);
  } finally {
    await connection.close();
  }
}

function bounded<T>(connection: Connection, fn: () => Promise<T>): Promise<T> {
  return connection.withDeadline(Date.now() + CALL_DEADLINE_MS, fn);
}

function isAlreadyExists(err: unknown): boolean {
  return isGrpcServiceError(err) && Number(err.code) === GRPC_ALREADY_EXISTS;
}

/**
 * Adds the search attributes a namespace lacks. Listing first (rather than adding and ignoring
 * errors) also catches an attribute that exists with another type, which would otherwise only
 * surface as a confusing error when a workflow upserts it.
 */
async function ensureSearchAttributes(
  connection: Connection,
  namespace: string,
  wanted: Record<string, SearchAttributeKind>,
): Promise<void> {
  const { customAttributes } = await bounded(connection, () =>
    connection.operatorService.listSearchAttributes({ namespace }),
  );
  const missing: Record<string, IndexedValueType> = {};
  for (const [name, kind] of Object.entries(wanted)) {
    const existing = customAttributes[name];
    if (existing === undefined) missing[name] = indexedValueType(kind);
    else if (existing !== indexedValueType(kind)) {
      throw new Error(`search attribute ${name} exists in namespace ${namespace} with another type than ${kind}`);
    }
  }
  if (Object.keys(missing).length === 0) return;
  try {
    await bounded(connection, () => connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing }));
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
}

async function registerNamespaceIfMissing(connection: Connection, namespace: string): Promise<void> {
  try {
    await bounded(connection, () =>
      connection.workflowService.registerNamespace({
        namespace,
        workflowExecutionRetentionPeriod: msToTs(EXTERNAL_NAMESPACE_RETENTION),
      }),
    );
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
}

/** Polls until every namespace answers describeNamespace and has the search attributes. */
async function waitUntilReady(
  target: TemporalTarget,
  options: { what: string; abortIf?: () => string | null; registerNamespaces: boolean },
): Promise<void> {
  await pollUntil(
    () =>
      withConnection(target.address, async (connection) => {
        for (const namespace of target.namespaces) {
          if (options.registerNamespaces) await registerNamespaceIfMissing(connection, namespace);
          await bounded(connection, () => connection.workflowService.describeNamespace({ namespace }));
          // A just-registered namespace may still be unknown to the frontend's namespace cache,
          // so this is inside the poll: "namespace not found" here just means "not yet".
          await ensureSearchAttributes(connection, namespace, target.searchAttributes);
        }
      }),
    { what: options.what, timeoutMs: READY_TIMEOUT_MS, intervalMs: 500, abortIf: options.abortIf },
  );
}

/**
 * How often the dev server is started again on fresh HTTP and metrics ports when another process
 * took one of them between our check and its bind (a free port can only be checked, not held).
 */
const PORT_RACE_ATTEMPTS = 3;

/** Starts `temporal server start-dev` with one namespace per party and waits until it serves them. */
export async function startTemporalDevServer(options: DevServerOptions): Promise<RunningDevServer> {
  const temporal = requireBinary('temporal');
  const logPath = path.join(options.logDir, 'temporal.log');
  for (let attempt = 1; ; attempt++) {
    // The HTTP API and metrics ports default to "random" in the CLI but are fixed here so that
    // they are picked the same way as every other port of the stack and never collide with them.
    const ports = await freePorts(2);
    const [httpPort, metricsPort] = ports;
    const args = [
      'server',
      'start-dev',
      '--ip', '127.0.0.1',
      '--port', String(options.port),
      '--ui-ip', '127.0.0.1',
      '--ui-port', String(options.uiPort),
      '--http-port', String(httpPort),
      '--metrics-port', String(metricsPort),
      '--db-filename', path.join(options.dir, 'temporal.db'),
      '--log-level', 'warn',
      ...(options.sqlitePragmas ?? []).flatMap((pragma) => ['--sqlite-pragma', pragma]),
      ...options.namespaces.flatMap((namespace) => ['--namespace', namespace]),
      ...Object.entries(options.searchAttributes).flatMap(([name, kind]) => ['--search-attribute', `${name}=${kind}`]),
    ];
    const logFrom = fs.existsSync(logPath) ? fs.statSync(logPath).size : 0;
    const server = startSupervised({ name: 'temporal', command: temporal, args, logDir: options.logDir });
    options.onSpawn?.(server);
    try {
      await waitUntilReady(options, {
        what: `Temporal dev server on ${options.address} (log: ${server.logPath})`,
        abortIf: () => server.exitDescription(),
        registerNamespaces: false,
      });
      return { address: options.address, uiUrl: `http://127.0.0.1:${options.uiPort}`, process: server };
    } catch (err) {
      await server.stop();
      if (attempt < PORT_RACE_ATTEMPTS && lostPort(logPath, logFrom, ports)) continue;
      throw err;
    }
  }
}

/** Whether the part of the log from `from` on says one of `ports` was already in use (exported for its test). */
export function lostPort(logPath: string, from: number, ports: number[]): boolean {
  let text: string;
  try {
    text = fs.readFileSync(logPath).subarray(from).toString('utf8');
  } catch {
    return false;
  }
  return /address already in use/.test(text) && ports.some((port) => text.includes(`:${port}:`) || text.includes(`:${port} `));
}

/** For TEMPORAL_ADDRESS: an existing server gets the namespaces and search attributes it lacks. */
export async function prepareExternalTemporal(target: TemporalTarget): Promise<void> {
  await waitUntilReady(target, {
    what: `Temporal at TEMPORAL_ADDRESS=${target.address}`,
    registerNamespaces: true,
  });
}
