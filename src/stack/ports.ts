import net from 'node:net';

const LOOPBACK = '127.0.0.1';

function listenOnLoopback(port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: LOOPBACK, port, exclusive: true }, () => resolve(server));
  });
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}


/**
 * Candidate ports come from below Linux's ephemeral range (32768+), so they never collide with
 * the ports the OS hands to outgoing connections; each jest worker draws from its own band, so
 * stacks started side by side by parallel test files never pick the same port either.
 */
const RANGE_START = 20_000;
const RANGE_END = 32_000;
const BANDS = 8;
const handedOut = new Set<number>();

/**
 * A process a test starts (the CLI's `stack up`, say) inherits JEST_WORKER_ID but not the test's
 * record of the ports it has handed out and not yet bound: it could pick one of them. So the
 * jest worker draws from the lower half of its band and the processes it starts from the upper
 * half; the worker names itself here, and the processes it starts with its environment (as the
 * tests do: under jest, `process.env` is the test file's own copy) inherit the name.
 */
const PORTS_OWNER = 'LOCKSTEP_PORTS_OWNER';
if (process.env.JEST_WORKER_ID && !process.env[PORTS_OWNER]) process.env[PORTS_OWNER] = String(process.pid);

function band(): [number, number] {
  const worker = Number(process.env.JEST_WORKER_ID);
  if (!Number.isInteger(worker) || worker < 1) return [RANGE_START, RANGE_END];
  const width = Math.floor((RANGE_END - RANGE_START) / BANDS);
  const start = RANGE_START + ((worker - 1) % BANDS) * width;
  const half = Math.floor(width / 2);
  return process.env[PORTS_OWNER] === String(process.pid) ? [start, start + half] : [start + half, start + width];
}

/** A port on 127.0.0.1 that is free now and that this process has not handed out before. */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  if (port === undefined) throw new Error('no free port found');
  return port;
}

/** `count` distinct free ports, none handed out before by this process. */
export async function freePorts(count: number): Promise<number[]> {
  const [start, end] = band();
  const ports: number[] = [];
  for (let attempt = 0; ports.length < count && attempt < 1000; attempt++) {
    const candidate = start + Math.floor(Math.random() * (end - start));
    if (handedOut.has(candidate) || !(await isPortFree(candidate))) continue;
    handedOut.add(candidate);
    ports.push(candidate);
  }
  if (ports.length < count) throw new Error(`found only ${ports.length} of ${count} free ports in ${start}-${end}`);
  return ports;
}

/** True when nothing listens on 127.0.0.1:`port`, so a server we start there will not collide. */
export async function isPortFree(port: number): Promise<boolean> {
  try {
    await close(await listenOnLoopback(port));
    return true;
  } catch {
    return false;
  }
}
