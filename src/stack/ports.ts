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

function boundPort(server: net.Server): number {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('listener has no TCP address');
  return address.port;
}

/** A port on 127.0.0.1 that was free a moment ago (the OS picks it; another process could still race us). */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  if (port === undefined) throw new Error('the OS assigned no port');
  return port;
}

/**
 * `count` distinct free ports. All listeners stay open until every port is known, because the OS
 * may hand out a just-closed port again and two servers of one stack must never get the same one.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < count; i++) servers.push(await listenOnLoopback(0));
    return servers.map(boundPort);
  } finally {
    await Promise.all(servers.map(close));
  }
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
