/** A definitions folder for a test network: the bundled definitions plus test fixtures. */
import { copyFileSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../src/paths';

export function definitionsWith(...fixtures: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-defs-'));
  for (const file of readdirSync(join(repoRoot(), 'definitions')).filter((f) => f.endsWith('.yaml'))) copyFileSync(join(repoRoot(), 'definitions', file), join(dir, file));
  for (const file of fixtures) copyFileSync(join(repoRoot(), 'test', 'fixtures', 'definitions', file), join(dir, file));
  return dir;
}
