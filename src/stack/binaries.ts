import path from 'node:path';
import type * as Provision from '../../scripts/provision';
import { repoRoot } from '../paths';

/**
 * scripts/provision.js is plain JavaScript outside `src`, so tsc does not copy it to dist; it is
 * loaded from the repository root at run time (the same file from ts-jest and from dist).
 */
function loadProvision(): typeof Provision {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(repoRoot(), 'scripts', 'provision.js')) as typeof Provision;
}

const HOW_TO_GET: Record<Provision.Tool, string> = {
  temporal: 'run `npm run setup` (needs Go) or put temporal on PATH',
  ferretdb: 'install MongoDB (mongod on PATH), or run `npm run setup` (needs Go) to build FerretDB, or set MONGODB_URI',
  anvil: 'run `npm install` (anvil comes from the optional dependency @foundry-rs/anvil-<platform>-<arch>)',
  mongod: 'install MongoDB so that mongod is on PATH',
  chromium: loadProvision().CHROMIUM_HOW_TO,
};

/** Path of a provisioned binary; throws a message that says how to get it when it is missing. */
export function requireBinary(tool: Provision.Tool): string {
  const found = loadProvision().resolveBinary(tool);
  if (!found) throw new Error(`${tool} not found: ${HOW_TO_GET[tool]}`);
  return found;
}

/** Path of a binary, or null when it is not installed (for optional tools such as mongod). */
export function findBinary(tool: Provision.Tool): string | null {
  return loadProvision().resolveBinary(tool);
}
