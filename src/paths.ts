/** Locating the installed project, whether run from sources (ts-jest) or from dist/. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

let root: string | undefined;

export function repoRoot(): string {
  if (root) return root;
  let dir = __dirname;
  for (let i = 0; i < 10; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'lockstep') {
      root = dir;
      return dir;
    }
    dir = dirname(dir);
  }
  throw new Error(`cannot find the lockstep package root above ${__dirname}`);
}
