/**
 * Runs one `lockstep node` process per party against a network file, as a deployment would:
 * each its own process, its own namespace and database. Used by the demo and the tests, which
 * may also kill a node (SIGKILL included) and start it again.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import type { NetworkFile } from '../model/network';
import { repoRoot } from '../paths';
import { pollUntil } from './wait-until';

/**
 * How a party node's runtime is started, here and in the Dockerfile (operations.md#memory says how
 * for nodes started otherwise). V8's young generation in 4 MB semispaces instead of 16 MB, and
 * glibc's malloc held to two arenas instead of up to eight per core for the node's threads (the
 * Temporal core's among them): under the benchmark's quick workload a node's mean resident memory
 * went from 283–290 to 230–240 MB with the same CPU time. And blocks of 128 KB and more always
 * mapped on their own, so freeing one gives it back: glibc otherwise raises that threshold as such
 * blocks are freed, and serves them from its heap, which then stays as large. Under the full
 * workload a node's peak went from 288–309 to 273–284 MB, again with the same CPU time
 * (docs/performance.md).
 */
export const NODE_RUNTIME_FLAGS = ['--max-semi-space-size=4'];
export const NODE_RUNTIME_ENV = { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072' };

export interface PartyProcesses {
  /** Log file of each party's node. */
  logs: Record<string, string>;
  /** Pid of each party's running node process. */
  pids(): Record<string, number>;
  /** Sends a signal to a party's node and waits for it to exit. */
  kill(party: string, signal: NodeJS.Signals): Promise<void>;
  /** Starts a party's node again (after kill) and waits until it answers. */
  start(party: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startPartyProcesses(
  network: NetworkFile,
  networkPath: string,
  parties: string[],
  logDir: string,
  env: Record<string, string> = {},
  envOf: (party: string) => Record<string, string> = () => ({}),
): Promise<PartyProcesses> {
  const children = new Map<string, ChildProcess>();
  const logs: Record<string, string> = Object.fromEntries(parties.map((p) => [p, join(logDir, `node-${p}.log`)]));

  const spawnNode = (party: string): ChildProcess => {
    const out = openSync(logs[party]!, 'a');
    const child = spawn(process.execPath, [...NODE_RUNTIME_FLAGS, join(repoRoot(), 'dist/src/cli/main.js'), 'node', '--party', party, '--network', networkPath], {
      stdio: ['ignore', out, out],
      // The caller's own settings of these win.
      env: { ...NODE_RUNTIME_ENV, ...process.env, LOCKSTEP_EXIT_WITH_PARENT: String(process.pid), ...env, ...envOf(party) },
    });
    closeSync(out);
    children.set(party, child);
    return child;
  };

  const waitReady = async (party: string, child: ChildProcess): Promise<void> => {
    await pollUntil(
      async () => {
        const res = await fetch(`${network.parties[party]!.apiUrl}/api/v1/status`);
        if (!res.ok) throw new Error(`status ${res.status}`);
      },
      {
        what: `${party}'s node (log: ${logs[party]})`,
        timeoutMs: 90_000,
        abortIf: () => (child.exitCode !== null ? `exited with code ${child.exitCode}` : null),
      },
    );
  };

  const kill = async (party: string, signal: NodeJS.Signals) => {
    const child = children.get(party);
    if (child) await stopChild(child, signal);
  };
  const stop = async () => {
    await Promise.all([...children.values()].map((c) => stopChild(c, 'SIGTERM')));
  };
  try {
    const started = parties.map((p) => [p, spawnNode(p)] as const);
    for (const [party, child] of started) await waitReady(party, child);
    return {
      logs,
      pids: () => Object.fromEntries([...children].filter(([, c]) => c.pid !== undefined && c.exitCode === null).map(([p, c]) => [p, c.pid!])),
      kill,
      start: async (party) => {
        await waitReady(party, spawnNode(party));
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}
