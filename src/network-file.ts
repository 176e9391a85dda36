/** Reading the network file (src/model/network.ts): shared by the node's configuration and the CLI. */
import { readFileSync } from 'node:fs';
import type { NetworkFile } from './model/network';

export function readNetworkFile(path: string): NetworkFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new Error(`network file ${path} not found: start the local stack (npm run stack) or pass --network`);
  }
  return JSON.parse(text) as NetworkFile;
}
