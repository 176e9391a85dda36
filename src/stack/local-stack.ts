import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Wallet, type JsonRpcProvider, type Signer } from 'ethers';
import type { NetworkFile, PartyEndpoint } from '../model/network';
import { deploySequencer } from '../chain/deploy';
import { applyMiningMode, devWallet, needsBlockTimeFlag, startAnvil, waitForChain, type MiningMode } from './dev-chain';
import { checkExternalMongo, startMongo } from './mongo-server';
import { removePidFile, runningStackOwner, stopStack, writePidFile } from './pid-file';
import { freePorts, isPortFree } from './ports';
import { makeLocalCertificates } from './certificates';
import type { SupervisedProcess } from './supervised-process';
import { prepareExternalTemporal, startTemporalDevServer, type SearchAttributeKind } from './temporal-server';

export type { MiningMode } from './dev-chain';
export type { SearchAttributeKind } from './temporal-server';
export { stopStack } from './pid-file';

export interface StackOptions {
  /** State dir: db files, logs, network.json (created if missing). */
  dir: string;
  parties: string[];
  /** 'default': the well-known ports (Temporal 7233, UI 8233, Mongo 27017, anvil 8545, party API 4001+i, DX 5001+i); 'free': OS-assigned (tests). */
  ports: 'default' | 'free';
  mining: MiningMode;
  confirmations: number;
  searchAttributes: Record<string, SearchAttributeKind>;
  /** Progress lines. */
  log?: (line: string) => void;
  /** SQLite pragmas for the Temporal dev server (`journal_mode=wal`…): the benchmark trades durability for speed. */
  temporalSqlitePragmas?: string[];
  /** Data exchange over TLS with a throwaway CA ('tls'), also requiring client certificates ('mutual'); default 'off' (plain HTTP). */
  dxTls?: 'off' | 'tls' | 'mutual';
}

/** The servers a stack can take down and bring back (its database files kept): fault tests do. */
export type RestartableServer = 'temporal' | 'mongo';

export interface Stack {
  network: NetworkFile;
  networkPath: string;
  /** The servers this stack started: name and pid of the watchdog shell that leads each one's process group. */
  processes(): Array<{ name: string; pid: number }>;
  /**
   * Stops one server this stack started (SIGTERM, or SIGKILL for a crash), keeping its files;
   * `startServer` brings it back on the same port with the same data.
   */
  stopServer(server: RestartableServer, signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  startServer(server: RestartableServer): Promise<void>;
  stop(): Promise<void>;
}

interface StackPorts {
  temporal: number;
  temporalUi: number;
  mongo: number;
  anvil: number;
  partyApi: number[];
  partyDx: number[];
}

/** Logical start order (Temporal, database, chain); stop() goes the other way. */
const START_ORDER = ['temporal', 'mongod', 'ferretdb', 'anvil'];

const DEFAULT_PORTS = { temporal: 7233, temporalUi: 8233, mongo: 27017, anvil: 8545, partyApiBase: 4001, partyDxBase: 5001 };

// A party name becomes a Temporal namespace and part of a MongoDB database name; this keeps it
// valid (and unsurprising) for both.
const PARTY_NAME = /^[a-z][a-z0-9_-]{0,47}$/;

function validate(options: StackOptions): void {
  if (options.parties.length === 0) throw new Error('a stack needs at least one party');
  for (const party of options.parties) {
    if (!PARTY_NAME.test(party)) {
      throw new Error(`invalid party name "${party}": use lowercase letters, digits, "-" or "_", starting with a letter`);
    }
  }
  if (new Set(options.parties).size !== options.parties.length) throw new Error('party names must be unique');
  if (!Number.isInteger(options.confirmations) || options.confirmations < 0) {
    throw new Error(`confirmations must be a non-negative integer, got ${options.confirmations}`);
  }
  if (options.mining.mode === 'interval' && !(options.mining.blockTimeMs > 0)) {
    throw new Error(`block time must be positive, got ${options.mining.blockTimeMs} ms`);
  }
}

async function choosePorts(options: StackOptions): Promise<StackPorts> {
  const n = options.parties.length;
  if (options.ports === 'free') {
    const ports = await freePorts(4 + 2 * n);
    const take = (): number => {
      const port = ports.shift();
      if (port === undefined) throw new Error('ran out of free ports');
      return port;
    };
    return {
      temporal: take(),
      temporalUi: take(),
      mongo: take(),
      anvil: take(),
      partyApi: options.parties.map(take),
      partyDx: options.parties.map(take),
    };
  }
  const ports: StackPorts = {
    temporal: DEFAULT_PORTS.temporal,
    temporalUi: DEFAULT_PORTS.temporalUi,
    mongo: DEFAULT_PORTS.mongo,
    anvil: DEFAULT_PORTS.anvil,
    partyApi: options.parties.map((_, i) => DEFAULT_PORTS.partyApiBase + i),
    partyDx: options.parties.map((_, i) => DEFAULT_PORTS.partyDxBase + i),
  };
  // Checked up front because a server that cannot bind fails slowly, and a health check on a
  // busy port could even succeed against somebody else's server.
  const needed: Array<[string, number, boolean]> = [
    ['Temporal', ports.temporal, !process.env.TEMPORAL_ADDRESS],
    ['Temporal UI', ports.temporalUi, !process.env.TEMPORAL_ADDRESS],
    ['MongoDB', ports.mongo, !process.env.MONGODB_URI],
    ['anvil', ports.anvil, !process.env.ETH_RPC_URL],
  ];
  for (const [what, port, used] of needed) {
    if (used && !(await isPortFree(port))) {
      throw new Error(
        `port ${port} (${what}) is already in use on 127.0.0.1: another stack may be running; ` +
          'stop it (Ctrl-C in its terminal, or stopStack(<its dir>)) or stop whatever listens there',
      );
    }
  }
  return ports;
}

function writeJsonAtomically(file: string, value: unknown): void {
  // Readers (nodes, CLI) may poll for the file; they must never see half of it.
  const temp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(temp, `${JSON.stringify(value, null, 2)}\n`);
  fs.renameSync(temp, file);
}

function deployerFor(provider: JsonRpcProvider, external: boolean): Signer {
  const key = external ? process.env.LOCKSTEP_DEPLOYER_KEY : undefined;
  return key ? new Wallet(key, provider) : devWallet(0).connect(provider);
}

function elapsedSince(started: number): string {
  return `${((Date.now() - started) / 1000).toFixed(1)} s`;
}

/**
 * Starts Temporal, MongoDB (or FerretDB) and anvil for a set of parties, deploys the Sequencer,
 * and writes `<dir>/network.json`. TEMPORAL_ADDRESS, MONGODB_URI and ETH_RPC_URL each replace
 * the corresponding local server with an existing one.
 */
export async function startStack(options: StackOptions): Promise<Stack> {
  validate(options);
  const log = options.log ?? (() => {});
  const dir = path.resolve(options.dir);
  const logDir = path.join(dir, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  const owner = runningStackOwner(dir);
  if (owner !== null) {
    throw new Error(`a stack is already running in ${dir} (process ${owner}): stop it first, or use another directory`);
  }
  // Servers left by a crashed run would hold the ports and the database files.
  await stopStack(dir);
  const ports = await choosePorts(options);

  let started: SupervisedProcess[] = [];
  const recordSpawn = (child: SupervisedProcess): void => {
    started.push(child);
    writePidFile(dir, { ownerPid: process.pid, processes: started.map(({ name, pid }) => ({ name, pid })) });
  };
  // How to start each local server again with the same port and files (external ones have none).
  const starters = new Map<RestartableServer, () => Promise<SupervisedProcess>>();
  let stopping: Promise<void> | null = null;
  const stopAll = (): Promise<void> =>
    (stopping ??= (async () => {
      // Servers start concurrently, so spawn order varies; stopping follows the fixed start order, reversed.
      const byStartOrder = [...started].sort((a, b) => START_ORDER.indexOf(a.name) - START_ORDER.indexOf(b.name));
      for (const child of byStartOrder.reverse()) {
        log(`stopping ${child.name}`);
        await child.stop();
      }
      removePidFile(dir);
    })());

  let provider: JsonRpcProvider | null = null;
  try {
    const startedAt = Date.now();
    const namespaces = options.parties;
    const temporalAddress = process.env.TEMPORAL_ADDRESS;
    const mongoUriFromEnv = process.env.MONGODB_URI;
    const rpcUrlFromEnv = process.env.ETH_RPC_URL;

    // The three servers are independent; starting them together roughly halves the wait.
    const temporalReady = (async () => {
      if (temporalAddress) {
        log(`using Temporal at ${temporalAddress}`);
        await prepareExternalTemporal({ address: temporalAddress, namespaces, searchAttributes: options.searchAttributes });
        return { address: temporalAddress, uiUrl: undefined };
      }
      log(`starting temporal on 127.0.0.1:${ports.temporal}`);
      const startTemporal = () =>
        startTemporalDevServer({
          address: `127.0.0.1:${ports.temporal}`,
          namespaces,
          searchAttributes: options.searchAttributes,
          dir,
          logDir,
          port: ports.temporal,
          uiPort: ports.temporalUi,
          onSpawn: recordSpawn,
          sqlitePragmas: options.temporalSqlitePragmas,
        });
      const server = await startTemporal();
      starters.set('temporal', async () => (await startTemporal()).process);
      log(`temporal ready after ${elapsedSince(startedAt)}`);
      return { address: server.address, uiUrl: server.uiUrl };
    })();
    const mongoReady = (async () => {
      if (mongoUriFromEnv) {
        log('using MongoDB at MONGODB_URI');
        await checkExternalMongo(mongoUriFromEnv);
        return mongoUriFromEnv;
      }
      log(`starting MongoDB on 127.0.0.1:${ports.mongo}`);
      const mongoOptions = { dir, logDir, port: ports.mongo, onSpawn: recordSpawn };
      const mongo = await startMongo(mongoOptions);
      starters.set('mongo', async () => (await startMongo(mongoOptions)).process);
      log(`${mongo.kind} ready after ${elapsedSince(startedAt)}`);
      return mongo.uri;
    })();
    const chainReady = (async () => {
      if (rpcUrlFromEnv) {
        log(`using chain at ${rpcUrlFromEnv}`);
        const provider = await waitForChain(rpcUrlFromEnv, { what: `chain at ETH_RPC_URL=${rpcUrlFromEnv}` });
        return { rpcUrl: rpcUrlFromEnv, wsUrl: process.env.ETH_WS_URL, provider };
      }
      log(`starting anvil on 127.0.0.1:${ports.anvil}`);
      const anvil = await startAnvil({
        logDir,
        port: ports.anvil,
        accounts: options.parties.length + 1,
        mining: options.mining,
        onSpawn: recordSpawn,
      });
      log(`anvil ready after ${elapsedSince(startedAt)}`);
      return { rpcUrl: anvil.rpcUrl, wsUrl: anvil.wsUrl, provider: anvil.provider };
    })();
    // allSettled, not all: on a failure every server must have finished starting before
    // stopAll runs, or one that is still starting would be missed; and all errors are reported.
    const outcomes = await Promise.allSettled([temporalReady, mongoReady, chainReady]);
    const [, , chainOutcome] = outcomes;
    if (chainOutcome.status === 'fulfilled') provider = chainOutcome.value.provider;
    const failures = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failures.length > 0) {
      throw new Error(failures.map((f) => (f.reason instanceof Error ? f.reason.message : String(f.reason))).join('\n'));
    }
    // All three are settled and fulfilled here; awaiting them again just unwraps the values.
    const temporal = await temporalReady;
    const mongoUri = await mongoReady;
    const chain = await chainReady;
    const chainProvider = chain.provider;

    const deployment = await deploySequencer(deployerFor(chainProvider, Boolean(rpcUrlFromEnv)));
    log(`deployed Sequencer at ${deployment.address} (block ${deployment.blockNumber})`);
    await applyMiningMode(chainProvider, options.mining, !rpcUrlFromEnv && needsBlockTimeFlag(options.mining));
    log(`mining: ${options.mining.mode === 'interval' ? `every ${options.mining.blockTimeMs} ms` : options.mining.mode}`);
    const chainId = Number((await chainProvider.getNetwork()).chainId);

    const tls = (options.dxTls ?? 'off') === 'off' ? undefined : makeLocalCertificates(path.join(dir, 'tls'), options.parties);
    const dxScheme = tls ? 'https' : 'http';
    const parties: Record<string, PartyEndpoint> = {};
    const devKeys: Record<string, string> = {};
    const devApiKeys: Record<string, string> = {};
    options.parties.forEach((name, i) => {
      const wallet = devWallet(i + 1);
      parties[name] = {
        name,
        address: wallet.address,
        namespace: name,
        database: `lockstep_${name}`,
        apiUrl: `http://127.0.0.1:${ports.partyApi[i]}`,
        dxUrl: `${dxScheme}://127.0.0.1:${ports.partyDx[i]}`,
      };
      devKeys[name] = wallet.privateKey;
      devApiKeys[name] = `dev-${name}-${randomBytes(24).toString('base64url')}`;
    });
    const network: NetworkFile = {
      chain: {
        rpcUrl: chain.rpcUrl,
        ...(chain.wsUrl ? { wsUrl: chain.wsUrl } : {}),
        chainId,
        sequencer: deployment.address,
        deployBlock: deployment.blockNumber,
        confirmations: options.confirmations,
      },
      temporal: temporal.uiUrl ? { address: temporal.address, uiUrl: temporal.uiUrl } : { address: temporal.address },
      mongodb: { uri: mongoUri },
      parties,
      devKeys,
      devApiKeys,
      ...(tls
        ? {
            devTls: {
              ca: tls[options.parties[0]!]!.ca,
              requireClientCert: options.dxTls === 'mutual',
              parties: Object.fromEntries(Object.entries(tls).map(([party, c]) => [party, { cert: c.cert, key: c.key }])),
            },
          }
        : {}),
    };
    const networkPath = path.join(dir, 'network.json');
    writeJsonAtomically(networkPath, network);
    log(`stack ready after ${elapsedSince(startedAt)}: ${networkPath}`);
    const serverNames: Record<RestartableServer, string[]> = { temporal: ['temporal'], mongo: ['mongod', 'ferretdb'] };
    const stopServer = async (server: RestartableServer, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> => {
      if (!starters.has(server)) throw new Error(`${server} is not a server this stack started (external servers cannot be restarted)`);
      const running = started.filter((p) => serverNames[server].includes(p.name));
      for (const child of running) await (signal === 'SIGKILL' ? child.kill() : child.stop());
      started = started.filter((p) => !running.includes(p));
      writePidFile(dir, { ownerPid: process.pid, processes: started.map(({ name, pid }) => ({ name, pid })) });
    };
    const startServer = async (server: RestartableServer): Promise<void> => {
      const start = starters.get(server);
      if (!start) throw new Error(`${server} is not a server this stack started (external servers cannot be restarted)`);
      if (started.some((p) => serverNames[server].includes(p.name))) throw new Error(`${server} is already running`);
      log(`starting ${server} again`);
      await start();
    };
    return { network, networkPath, processes: () => started.map(({ name, pid }) => ({ name, pid })), stopServer, startServer, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  } finally {
    // Nothing keeps the provider: consumers read the network file and make their own.
    provider?.destroy();
  }
}
