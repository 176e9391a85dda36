/**
 * Runs one `lockstep node` process per party against a network file, as a deployment would:
 * each its own process, its own namespace and database. Used by the demo and the tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import type { NetworkFile } from '../model/network';
import { repoRoot } from '../paths';
import { pollUntil } from './wait-until';

export interface PartyProcesses {
  /** Log file of each party's node. */
  logs: Record<string, string>;
  stop(): Promise<void>;
}

export async function startPartyProcesses(
  network: NetworkFile,
  networkPath: string,
  parties: string[],
  logDir: string,
  env: Record<string, string> = {},
): Promise<PartyProcesses> {
  const children: ChildProcess[] = [];
  const logs: Record<string, string> = {};
  const stop = async () => {
    await Promise.all(children.map(stopChild));
  };
  try {
    for (const party of parties) {
      logs[party] = join(logDir, `node-${party}.log`);
      const out = openSync(logs[party], 'a');
      children.push(
        spawn(process.execPath, [join(repoRoot(), 'dist/src/cli/main.js'), 'node', '--party', party, '--network', networkPath], {
          stdio: ['ignore', out, out],
          env: { ...process.env, ...env },
        }),
      );
      closeSync(out);
    }
    for (const party of parties) {
      const child = children[parties.indexOf(party)]!;
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
    }
    return { logs, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
