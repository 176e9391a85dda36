/** `lockstep definitions validate | hash | graph`: the author tools. */
import { join } from 'node:path';
import type { Command } from 'commander';
import { DefinitionError, definitionFiles, formatProblem, loadDefinitionFile } from '../../definitions/load';
import { definitionGraph } from '../../definitions/graph';
import { repoRoot } from '../../paths';
import { emit, type OutputOptions } from '../output';

interface Validated {
  file: string;
  ok: boolean;
  id?: string;
  version?: string;
  hash?: string;
  problems: string[];
}

function validateFile(file: string): Validated {
  try {
    const loaded = loadDefinitionFile(file);
    return { file, ok: true, id: loaded.definition.id, version: loaded.definition.version, hash: loaded.hash, problems: [] };
  } catch (error) {
    const problems = error instanceof DefinitionError ? error.problems.map(formatProblem) : [`${file}: ${(error as Error).message}`];
    return { file, ok: false, problems };
  }
}

export function definitionCommands(program: Command): void {
  const definitions = program.command('definitions').description('check, identify and draw process definitions');

  definitions
    .command('validate')
    .argument('[files...]', 'definition files (YAML or JSON); default: every definition in the definitions folder')
    .option('--json', 'print JSON for scripts')
    .description('report every problem in the given definitions, with file:line:column and the path of the bad element; exit 1 if any')
    .action((files: string[], opts: OutputOptions) => {
      const targets = files.length > 0 ? files : definitionFiles(join(repoRoot(), 'definitions'));
      const results = targets.map(validateFile);
      if (opts.json) emit(opts, { ok: results.every((r) => r.ok), definitions: results }, () => '');
      else {
        for (const r of results) {
          if (r.ok) console.log(`${r.file}: ok (${r.id} v${r.version}, ${r.hash})`);
          else r.problems.forEach((p) => console.error(p));
        }
      }
      process.exitCode = results.every((r) => r.ok) ? 0 : 1;
    });

  definitions
    .command('hash')
    .argument('<file>', 'definition file')
    .option('--json', 'print JSON for scripts')
    .description("print the definition's agreed hash (keccak-256 of its RFC 8785 canonical JSON)")
    .action((file: string, opts: OutputOptions) => {
      const loaded = loadDefinitionFile(file);
      emit(opts, { file, id: loaded.definition.id, version: loaded.definition.version, hash: loaded.hash }, () => loaded.hash);
    });

  definitions
    .command('graph')
    .argument('<file>', 'definition file')
    .option('--json', 'print JSON for scripts ({ "mermaid": … })')
    .description('print the process as a Mermaid flowchart: roles as lanes, steps, states, branches, loops, end states')
    .action((file: string, opts: OutputOptions) => {
      const mermaid = definitionGraph(loadDefinitionFile(file).definition);
      emit(opts, { file, mermaid }, () => mermaid);
    });
}
