import fs from 'node:fs';
import path from 'node:path';
import type { InterfaceAbi } from 'ethers';
import { repoRoot } from '../paths';

export interface ContractArtifact {
  abi: InterfaceAbi;
  bytecode: string;
}

/** Reads `contracts/build/<name>.json` as produced by scripts/compile-contracts.js. */
export function loadArtifact(contractName: string): ContractArtifact {
  const file = path.join(repoRoot(), 'contracts', 'build', `${contractName}.json`);
  let raw: string;
  try {
    raw = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(`contract artifact ${file} is missing: run npm run build`);
    }
    throw err;
  }
  const parsed = JSON.parse(raw) as { abi?: unknown; bytecode?: unknown };
  if (!Array.isArray(parsed.abi) || typeof parsed.bytecode !== 'string' || !/^0x[0-9a-fA-F]+$/.test(parsed.bytecode)) {
    throw new Error(`contract artifact ${file} is malformed: run npm run build`);
  }
  return { abi: parsed.abi as InterfaceAbi, bytecode: parsed.bytecode };
}

export function loadSequencerArtifact(): ContractArtifact {
  return loadArtifact('Sequencer');
}
