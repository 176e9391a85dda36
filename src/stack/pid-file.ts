import fs from 'node:fs';
import path from 'node:path';
import { signalIfAlive, STOP_GRACE_MS, waitForGroupGone, WATCHDOG_MARKER } from './supervised-process';

/** What a stack started, in start order, so that another process can stop it after a crash. */
export interface PidFile {
  /** The Node process that started the stack. */
  ownerPid: number;
  processes: Array<{ name: string; pid: number }>;
}

export function pidFilePath(dir: string): string {
  return path.join(dir, 'stack.pid.json');
}

export function writePidFile(dir: string, content: PidFile): void {
  fs.writeFileSync(pidFilePath(dir), `${JSON.stringify(content, null, 2)}\n`);
}

export function removePidFile(dir: string): void {
  fs.rmSync(pidFilePath(dir), { force: true });
}

function readPidFile(dir: string): PidFile | null {
  try {
    return JSON.parse(fs.readFileSync(pidFilePath(dir), 'utf8')) as PidFile;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`cannot read ${pidFilePath(dir)}: ${(err as Error).message}`);
  }
}

/**
 * Guards against pid reuse: a pid from an old file may now belong to an unrelated process.
 * Where /proc exists the command line must carry the watchdog marker; elsewhere the pid is trusted.
 */
function isOurWatchdog(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(WATCHDOG_MARKER);
  } catch {
    return !fs.existsSync('/proc/self');
  }
}

/**
 * The pid of a live process that runs a stack in `dir`, or null. Both the owner and one of its
 * watchdogs must be alive: after a crash the watchdogs exit within a second, so an owner pid
 * that was since reused by an unrelated process does not count.
 */
export function runningStackOwner(dir: string): number | null {
  const pidFile = readPidFile(dir);
  if (!pidFile || pidFile.ownerPid === process.pid || !signalIfAlive(pidFile.ownerPid, 0)) return null;
  const anyServerAlive = pidFile.processes.some(({ pid }) => pid > 1 && signalIfAlive(-pid, 0) && isOurWatchdog(pid));
  return anyServerAlive ? pidFile.ownerPid : null;
}

/**
 * Stops whatever a stack in `dir` left running (e.g. its Node process was killed), in reverse
 * start order, and removes the pid file. A no-op when there is no pid file.
 */
export async function stopStack(dir: string): Promise<void> {
  const pidFile = readPidFile(dir);
  if (!pidFile) return;
  for (const { pid } of [...pidFile.processes].reverse()) {
    if (!Number.isInteger(pid) || pid <= 1) continue;
    if (!signalIfAlive(-pid, 0) || !isOurWatchdog(pid)) continue;
    // The watchdog forwards SIGTERM to its server and waits for it; the group empties when both are gone.
    signalIfAlive(pid, 'SIGTERM');
    if (!(await waitForGroupGone(pid, STOP_GRACE_MS))) {
      signalIfAlive(-pid, 'SIGKILL');
      await waitForGroupGone(pid, 2_000);
    }
  }
  removePidFile(dir);
}
