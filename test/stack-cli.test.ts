/**
 * `lockstep stack up` and `stack down` as a user runs them, in two terminals: `up` runs in the
 * foreground and writes the network file (here with mutual TLS for the data exchange); `down`,
 * from another process, stops it in order.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonRpcProvider } from 'ethers';
import type { NetworkFile } from '../src/model/network';
import { pidFilePath } from '../src/stack/pid-file';
import { eventually } from './support/eventually';

const root = join(__dirname, '..');
const bin = join(root, 'bin', 'lockstep');
let up: ChildProcess | undefined;

afterAll(() => {
  // Only if the test failed half way: the stack's own watchdogs stop its servers when it dies.
  if (up && up.exitCode === null) up.kill('SIGTERM');
});

test('stack up runs until stack down stops it from another process', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-stack-cli-'));
  const env = { ...process.env };
  for (const name of ['TEMPORAL_ADDRESS', 'MONGODB_URI', 'ETH_RPC_URL']) delete env[name];
  // With mutual TLS for the data exchange: the throwaway CA and each party's certificate (the test networks cover plain HTTP).
  up = spawn(process.execPath, [bin, 'stack', 'up', '--dir', dir, '--free-ports', '--parties', 'acme', '--manual-mining', '--mtls', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  up.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  up.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => up!.once('exit', (code) => resolve(code)));

  const printed = await eventually('stack up to print its network', () => Promise.resolve(stdout.includes('"networkFile"') ? (JSON.parse(stdout) as { networkFile: string; network: NetworkFile }) : undefined), 150_000, 250);
  expect(stderr).toBe('');
  expect(printed.networkFile).toBe(join(dir, 'network.json'));
  expect(printed.network.devKeys).toBeUndefined();
  const network = JSON.parse(readFileSync(printed.networkFile, 'utf8')) as NetworkFile;
  expect(network.parties.acme!.dxUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  expect(network.devTls?.requireClientCert).toBe(true);
  for (const file of [network.devTls!.ca, network.devTls!.parties.acme!.cert, network.devTls!.parties.acme!.key]) expect(readFileSync(file, 'utf8')).toMatch(/^-----BEGIN /);
  const provider = new JsonRpcProvider(network.chain.rpcUrl, undefined, { staticNetwork: true });
  expect(Number(await provider.getBlockNumber())).toBeGreaterThanOrEqual(network.chain.deployBlock);
  provider.destroy();
  expect(existsSync(pidFilePath(dir))).toBe(true);

  const down = spawnSync(process.execPath, [bin, 'stack', 'down', '--dir', dir, '--json'], { encoding: 'utf8' });
  expect(down.stderr).toBe('');
  expect(down.status).toBe(0);
  expect(JSON.parse(down.stdout)).toEqual({ dir, stopped: true });
  expect(await exited).toBe(0);
  expect(existsSync(pidFilePath(dir))).toBe(false);
}, 240_000);
