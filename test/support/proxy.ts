/**
 * A TCP proxy on loopback that a test can cut and restore, or slow down: stands in front of a
 * party's data-exchange endpoint to make deliveries to it fail, or hang, for a while.
 */
import net from 'node:net';

export interface CuttableProxy {
  cut(): void;
  restore(): void;
  /** Holds every byte sent to the target this long (0: none); a request slower than its sender's timeout is never taken. */
  slow(ms: number): void;
  close(): Promise<void>;
}

export async function startProxy(listenPort: number, targetPort: number): Promise<CuttableProxy> {
  let open = true;
  let delayMs = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    // Requests go through a queue that waits `delayMs` per chunk (in order); answers come back at once.
    let queue = Promise.resolve();
    client.on('data', (chunk: Buffer) => {
      const wait = delayMs;
      queue = queue.then(async () => {
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (!upstream.destroyed) upstream.write(chunk);
      });
    });
    client.on('end', () => void queue.then(() => upstream.end()));
    // A sender that gave up takes its request with it: nothing it sent reaches the target late.
    client.on('close', () => upstream.destroy());
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPort, '127.0.0.1', () => resolve());
  });
  return {
    cut: () => {
      open = false;
      for (const s of sockets) s.destroy();
    },
    restore: () => {
      open = true;
    },
    slow: (ms) => {
      delayMs = ms;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
