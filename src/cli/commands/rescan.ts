/**
 * `lockstep rescan`: rebuilds a stopped node's chain records (where each step was sequenced, what
 * is final, what its workflows were told) by reading the chain again from the Sequencer's deploy
 * block when the node next starts. For a database restored from an old backup, or chain records
 * suspected damaged; decisions already made stay, and the chain gives the same order again.
 */
import type { Command } from 'commander';
import { CliError } from '../output';

export function rescanCommand(program: Command): void {
  program
    .command('rescan')
    .description("rebuild a stopped node's chain records from the chain (read again from the deploy block at its next start)")
    .option('--party <name>', 'the party whose node it is (env LOCKSTEP_PARTY)')
    .option('--network <file>', 'network file (env LOCKSTEP_NETWORK; default .lockstep/network.json)')
    .action(async (opts: { party?: string; network?: string }) => {
      const { loadNodeConfig } = await import('../../config');
      const { Store } = await import('../../store/store');
      const { NodeLiveness } = await import('../../node/liveness');
      const { createLogger } = await import('../../log');
      const { config, network } = loadNodeConfig({ party: opts.party, networkFile: opts.network });
      const store = await Store.connect(network.mongodb.uri, network.parties[config.party]!.database);
      try {
        const liveness = new NodeLiveness(store.pulse, createLogger(config.party, 'warn'));
        for (const beat of await store.pulse.collection<{ _id: string }>('heartbeats').find({}).toArray()) {
          if (await liveness.isAlive(beat._id)) {
            const running = await liveness.heartbeat(beat._id);
            throw new CliError(`a node process of ${config.party} is running (pid ${running?.pid} on ${running?.host}): stop it first`);
          }
        }
        const { slots, unsettled } = await store.forgetChainRecords();
        console.log(`${config.party}: chain records of ${slots} step slot(s) cleared (${unsettled} not yet settled); the node reads the chain again from block ${network.chain.deployBlock} when it starts`);
      } finally {
        await store.close();
      }
    });
}
