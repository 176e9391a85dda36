import { setTimeout as sleep } from 'node:timers/promises';

export interface PollOptions {
  /** What is being waited for, for the timeout message. */
  what: string;
  timeoutMs: number;
  intervalMs?: number;
  /** Checked before every attempt: a server that already exited will never become ready. */
  abortIf?: () => string | null;
}

/**
 * Calls `attempt` until it resolves, at most until the deadline. Rejections count as "not yet";
 * the last one is kept so that a timeout says why the server never answered.
 */
export async function pollUntil<T>(attempt: () => Promise<T>, options: PollOptions): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  const intervalMs = options.intervalMs ?? 250;
  let lastError: unknown = null;
  while (Date.now() < deadline) {
    const abortReason = options.abortIf?.();
    if (abortReason) throw new Error(`${options.what}: ${abortReason}`);
    try {
      return await attempt();
    } catch (err) {
      lastError = err;
    }
    await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
  const reason = lastError instanceof Error ? lastError.message : String(lastError);
  throw new Error(`${options.what}: not ready after ${Math.round(options.timeoutMs / 1000)} s (last error: ${reason})`);
}
