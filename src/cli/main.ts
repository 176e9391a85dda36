/** The `lockstep` command line: one module per group of commands under commands/. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { DefinitionError, formatProblem } from '../definitions/load';
import { repoRoot } from '../paths';
import { stackCommands } from './commands/stack';
import { nodeCommand } from './commands/node';
import { rescanCommand } from './commands/rescan';
import { definitionCommands } from './commands/definitions';
import { instanceCommands } from './commands/instances';
import { evidenceCommands } from './commands/evidence';
import { CliError } from './output';

const version = (JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')) as { version: string }).version;
const program = new Command('lockstep')
  .description('Multi-party business processes on Temporal, sequenced on chain. Commands that call a node take --url/--party, --api-key and --json.')
  .version(version);

stackCommands(program);
nodeCommand(program);
rescanCommand(program);
definitionCommands(program);
instanceCommands(program);
evidenceCommands(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof DefinitionError) error.problems.forEach((p) => console.error(formatProblem(p)));
  else if (error instanceof CliError) [error.message, ...error.details.map((d) => `  ${d}`)].forEach((line) => console.error(`lockstep: ${line}`));
  else console.error(`lockstep: ${(error as Error).message}`);
  process.exit(1);
});
