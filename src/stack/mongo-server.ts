import fs from 'node:fs';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { findBinary, requireBinary } from './binaries';
import { freePort } from './ports';
import { startSupervised, type SupervisedProcess } from './supervised-process';
import { pollUntil } from './wait-until';

const READY_TIMEOUT_MS = 60_000;

export interface MongoOptions {
  dir: string;
  logDir: string;
  port: number;
  /** Called as soon as the process exists, before it is ready, so the caller can record its pid. */
  onSpawn?: (process: SupervisedProcess) => void;
}

export interface RunningMongo {
  uri: string;
  /** Which server was started: a real mongod when installed, FerretDB otherwise. */
  kind: 'mongod' | 'ferretdb';
  process: SupervisedProcess;
}

/** Resolves once `admin.ping` succeeds; the driver's own server selection is bounded per attempt. */
export async function pingMongo(uri: string): Promise<void> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 2_000, connectTimeoutMS: 2_000 });
  try {
    await client.connect();
    await client.db('admin').command({ ping: 1 });
  } finally {
    await client.close();
  }
}

export function mongoUri(port: number): string {
  return `mongodb://127.0.0.1:${port}/`;
}

async function startFerretDB(options: MongoOptions): Promise<SupervisedProcess> {
  const ferretdb = requireBinary('ferretdb');
  const dataDir = path.join(options.dir, 'ferretdb');
  const stateDir = path.join(options.dir, 'ferretdb-state');
  fs.mkdirSync(dataDir, { recursive: true });
  fs.mkdirSync(stateDir, { recursive: true });
  // The debug (metrics/pprof) listener defaults to 8088; a fixed port would collide between stacks.
  const debugPort = await freePort();
  return startSupervised({
    name: 'ferretdb',
    command: ferretdb,
    args: [
      '--handler=sqlite',
      // FerretDB wants a directory URI with a trailing slash: one SQLite file per database.
      // Immediate transactions: with WAL, a deferred transaction that upgrades to a write fails
      // with SQLITE_BUSY without waiting, under concurrent writers (several party nodes).
      // synchronous=normal: in WAL mode a commit no longer waits for fsync; a killed FerretDB
      // loses nothing (the WAL is in the OS's hands), only a power cut or kernel crash can undo
      // the last commits. A dev and test stack's trade; production runs MongoDB. Writes were
      // 20-40% quicker on an idle FerretDB (docs/performance.md).
      `--sqlite-url=file:${dataDir}/?_txlock=immediate&_pragma=synchronous(normal)`,
      `--listen-addr=127.0.0.1:${options.port}`,
      '--telemetry=disable',
      `--debug-addr=127.0.0.1:${debugPort}`,
      `--state-dir=${stateDir}`,
      '--log-level=warn',
    ],
    logDir: options.logDir,
  });
}

function startMongod(mongod: string, options: MongoOptions): SupervisedProcess {
  const dbPath = path.join(options.dir, 'mongo');
  fs.mkdirSync(dbPath, { recursive: true });
  return startSupervised({
    name: 'mongod',
    command: mongod,
    args: ['--dbpath', dbPath, '--bind_ip', '127.0.0.1', '--port', String(options.port)],
    logDir: options.logDir,
  });
}

/** Starts mongod when it is installed, FerretDB otherwise, and waits until it answers a ping. */
export async function startMongo(options: MongoOptions): Promise<RunningMongo> {
  const mongod = findBinary('mongod');
  const server = mongod ? startMongod(mongod, options) : await startFerretDB(options);
  options.onSpawn?.(server);
  const uri = mongoUri(options.port);
  try {
    await pollUntil(() => pingMongo(uri), {
      what: `${server.name} on ${uri} (log: ${server.logPath})`,
      timeoutMs: READY_TIMEOUT_MS,
      abortIf: () => server.exitDescription(),
    });
  } catch (err) {
    await server.stop();
    throw err;
  }
  return { uri, kind: mongod ? 'mongod' : 'ferretdb', process: server };
}

/** For MONGODB_URI: only checks that the server answers. */
export async function checkExternalMongo(uri: string): Promise<void> {
  await pollUntil(() => pingMongo(uri), { what: `MongoDB at MONGODB_URI=${uri}`, timeoutMs: READY_TIMEOUT_MS });
}
