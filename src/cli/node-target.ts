/**
 * Which node a command talks to, and with which API key: flags first, then the environment, then
 * the network file (the local stack's, by default) for the given party.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { ApiClient, type ApiResponse } from '../api/client';
import { readNetworkFile } from '../network-file';
import { CliError } from './output';

export interface NodeTargetOptions {
  url?: string;
  party?: string;
  apiKey?: string;
  network?: string;
  json?: boolean;
}

/** Adds the options every command that calls a node takes. */
export function nodeOptions(cmd: Command): Command {
  return cmd
    .option('--url <url>', "the node's base URL, e.g. http://127.0.0.1:4001 (env LOCKSTEP_URL; default: the party's apiUrl in the network file)")
    .option('--party <name>', 'the party whose node to call, looked up in the network file (env LOCKSTEP_PARTY)')
    .option('--api-key <key>', "API key (env LOCKSTEP_API_KEY; default: the party's dev key in the network file)")
    .option('--network <file>', 'network file (env LOCKSTEP_NETWORK; default .lockstep/network.json)')
    .option('--json', 'print JSON for scripts instead of readable text');
}

export function nodeClient(opts: NodeTargetOptions, env: NodeJS.ProcessEnv = process.env): ApiClient {
  const party = opts.party ?? env.LOCKSTEP_PARTY;
  let url = opts.url ?? env.LOCKSTEP_URL;
  let key = opts.apiKey ?? env.LOCKSTEP_API_KEY;
  if (!url || !key) {
    if (!party) throw new CliError('which node? pass --url and --api-key, or --party NAME (or set LOCKSTEP_URL/LOCKSTEP_API_KEY or LOCKSTEP_PARTY)');
    const file = resolve(opts.network ?? env.LOCKSTEP_NETWORK ?? '.lockstep/network.json');
    const network = readNetworkFile(file);
    const endpoint = network.parties[party];
    if (!endpoint) throw new CliError(`party "${party}" is not in ${file}; parties: ${Object.keys(network.parties).join(', ')}`);
    url ??= endpoint.apiUrl;
    key ??= network.devApiKeys?.[party];
    if (!key) throw new CliError(`no API key for ${party}: pass --api-key or set LOCKSTEP_API_KEY`);
  }
  return new ApiClient(url.replace(/\/+$/, ''), key);
}

interface Problem {
  title?: string;
  detail?: string;
  errors?: { field: string; message: string }[];
}

/** The body of a successful answer; a problem+json answer becomes a CliError naming its fields. */
export function expectOk<T>(res: ApiResponse<T>, what: string): T {
  if (res.status < 300) return res.body;
  const p = res.body as Problem | undefined;
  throw new CliError(`${what} failed (${res.status}): ${p?.detail ?? p?.title ?? 'no details'}`, (p?.errors ?? []).map((e) => `${e.field}: ${e.message}`));
}

/** Calls the node; a refused connection says which URL was tried. */
export async function call<T>(client: ApiClient, what: string, run: (c: ApiClient) => Promise<ApiResponse<T>>): Promise<T> {
  let res: ApiResponse<T>;
  try {
    res = await run(client);
  } catch (error) {
    throw new CliError(`${what}: cannot reach the node at ${client.baseUrl}: ${(error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message}`);
  }
  return expectOk(res, what);
}
