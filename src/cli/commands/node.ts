/** `lockstep node`: runs one party's node in the foreground until SIGINT/SIGTERM. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CliError } from '../output';

/** The party's signing key: from a file (production secrets), the environment, or the dev stack. */
function partyKey(party: string, devKeys: Record<string, string> | undefined): string {
  const file = process.env.LOCKSTEP_PRIVATE_KEY_FILE;
  if (file) return readFileSync(file, 'utf8').trim();
  const key = process.env.LOCKSTEP_PRIVATE_KEY ?? devKeys?.[party];
  if (!key) throw new CliError(`no key for ${party}: set LOCKSTEP_PRIVATE_KEY_FILE or LOCKSTEP_PRIVATE_KEY`);
  return key;
}

/**
 * Started by the demo or a test (which set the variable to their own pid), the node stops once
 * that process is gone, as the stack's servers do: a killed test runner leaves nothing behind.
 */
function exitWithParent(parentPid: string | undefined, shutdown: () => void): void {
  const pid = Number(parentPid);
  if (!Number.isInteger(pid) || pid <= 0) return;
  const timer = setInterval(() => {
    try {
      process.kill(pid, 0);
    } catch {
      clearInterval(timer);
      shutdown();
    }
  }, 1_000);
  timer.unref();
}

export function nodeCommand(program: Command): void {
  program
    .command('node')
    .description("run a party's node: Temporal worker, REST API, data exchange and chain listener (settings: docs/operations.md)")
    .option('--party <name>', 'the party this node acts for (env LOCKSTEP_PARTY)')
    .option('--network <file>', 'network file (env LOCKSTEP_NETWORK; default .lockstep/network.json)')
    .option('--definitions <dir>', 'folder of process definitions (env LOCKSTEP_DEFINITIONS; default: the bundled definitions/)')
    .action(async (opts: { party?: string; network?: string; definitions?: string }) => {
      // Loaded only here: the worker and its dependencies make every other command slow to start.
      const { loadNodeConfig } = await import('../../config');
      const { startPartyNode } = await import('../../node/party-node');
      const { config, network } = loadNodeConfig({ party: opts.party, networkFile: opts.network, definitionsDir: opts.definitions });
      // Before the worker starts its workflow thread; a process-wide setting, so set by the process's entry, not the node.
      const { limitHeapGrowth } = await import('../../node/heap');
      limitHeapGrowth(config.heapGrowthPercent);
      const node = await startPartyNode(config, network, partyKey(config.party, network.devKeys));
      const shutdown = () => {
        node.stop().then(
          () => process.exit(0),
          (err: unknown) => {
            console.error(err);
            process.exit(1);
          },
        );
      };
      process.once('SIGINT', shutdown);
      process.once('SIGTERM', shutdown);
      exitWithParent(process.env.LOCKSTEP_EXIT_WITH_PARENT, shutdown);
    });
}
