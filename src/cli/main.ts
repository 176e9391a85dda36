/** The `lockstep` command line. */
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { loadNodeConfig } from '../config';
import { startPartyNode } from '../node/party-node';
import { DefinitionError, definitionFiles, formatProblem, loadDefinitionFile } from '../definitions/load';
import { definitionGraph } from '../definitions/graph';
import { repoRoot } from '../paths';
import { join } from 'node:path';

const version = (JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')) as { version: string }).version;
const program = new Command('lockstep').description('Multi-party business processes on Temporal, sequenced on chain').version(version);

program
  .command('node')
  .description("run a party's node: Temporal worker, REST API, data exchange and chain listener")
  .requiredOption('--party <name>', 'the party this node acts for')
  .option('--network <file>', 'network file (default: .lockstep/network.json, or LOCKSTEP_NETWORK)')
  .option('--definitions <dir>', 'folder of process definitions (default: the bundled definitions/)')
  .action(async (opts: { party: string; network?: string; definitions?: string }) => {
    const { config, network } = loadNodeConfig({ party: opts.party, networkFile: opts.network, definitionsDir: opts.definitions });
    const key = partyKey(config.party, network.devKeys);
    const node = await startPartyNode(config, network, key);
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
  });

/** The party's signing key: from a file (production secrets), the environment, or the dev stack. */
function partyKey(party: string, devKeys: Record<string, string> | undefined): string {
  const file = process.env.LOCKSTEP_PRIVATE_KEY_FILE;
  if (file) return readFileSync(file, 'utf8').trim();
  const key = process.env.LOCKSTEP_PRIVATE_KEY ?? devKeys?.[party];
  if (!key) throw new Error(`no key for ${party}: set LOCKSTEP_PRIVATE_KEY_FILE or LOCKSTEP_PRIVATE_KEY`);
  return key;
}

const definitions = program.command('definitions').description('check and identify process definitions');

definitions
  .command('validate')
  .argument('[files...]', 'definition files (YAML or JSON); default: every definition in the definitions folder')
  .description('report every problem in the given definitions, with file:line:column and the path of the bad element; exit 1 if any')
  .action((files: string[]) => {
    const targets = files.length > 0 ? files : definitionFiles(join(repoRoot(), 'definitions'));
    let failed = false;
    for (const file of targets) {
      try {
        const loaded = loadDefinitionFile(file);
        console.log(`${file}: ok (${loaded.definition.id} v${loaded.definition.version}, ${loaded.hash})`);
      } catch (error) {
        failed = true;
        if (error instanceof DefinitionError) error.problems.forEach((p) => console.error(formatProblem(p)));
        else console.error(`${file}: ${(error as Error).message}`);
      }
    }
    process.exitCode = failed ? 1 : 0;
  });

definitions
  .command('hash')
  .argument('<file>', 'definition file')
  .description("print the definition's agreed hash (keccak-256 of its RFC 8785 canonical JSON)")
  .action((file: string) => {
    console.log(loadDefinitionFile(file).hash);
  });

definitions
  .command('graph')
  .argument('<file>', 'definition file')
  .description('print the process as a Mermaid flowchart: roles as lanes, steps, states, branches, loops, end states')
  .action((file: string) => {
    process.stdout.write(definitionGraph(loadDefinitionFile(file).definition));
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof DefinitionError) error.problems.forEach((p) => console.error(formatProblem(p)));
  else console.error(`lockstep: ${(error as Error).message}`);
  process.exit(1);
});
