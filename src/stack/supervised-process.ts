import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Argument 0 of every watchdog shell, so a leftover can be recognised as ours before it is killed. */
export const WATCHDOG_MARKER = 'lockstep-watchdog';

/** How long a server gets between SIGTERM and SIGKILL. */
export const STOP_GRACE_MS = 10_000;

/**
 * The shell every server runs under. It exists for one reason: if the Node process that started
 * the stack dies without running its cleanup (SIGKILL, OOM, a crashed test runner), nothing else
 * would stop the servers. The shell polls the parent pid and stops the server when it is gone.
 * It also forwards SIGTERM from a normal stop and reaps the server, so its own exit means the
 * server is gone.
 *
 * The pause is `sleep & wait` rather than a plain `sleep` because a shell runs traps only after a
 * foreground command ends, whereas `wait` returns as soon as a trapped signal arrives: SIGTERM is
 * forwarded at once. While waiting, the shell reaps every child that finished (dash and bash
 * both do), so `kill -0` fails once the server is gone instead of seeing a zombie. Escalation to
 * SIGKILL after ~5 s (25 × 0.2 s) is the same whether the stop came from the parent or from the
 * parent's death.
 */
const WATCHDOG_SCRIPT = `
parent="$1"; shift
"$@" &
child=$!
stopping=0
waited=0
trap 'stopping=1; kill -TERM "$child" 2>/dev/null' TERM INT HUP
while kill -0 "$child" 2>/dev/null; do
  if [ "$stopping" = 0 ] && ! kill -0 "$parent" 2>/dev/null; then
    echo "${WATCHDOG_MARKER}: parent process $parent is gone, stopping $1" >&2
    stopping=1
    kill -TERM "$child" 2>/dev/null
  fi
  if [ "$stopping" = 1 ]; then
    waited=$((waited + 1))
    if [ "$waited" -gt 25 ]; then kill -KILL "$child" 2>/dev/null; fi
  fi
  sleep 0.2 &
  wait $!
done
wait "$child"
`;

export interface SupervisedProcess {
  name: string;
  /** Pid of the watchdog shell; it leads the process group the server runs in. */
  pid: number;
  logPath: string;
  /** Null while running; otherwise how it ended, for error messages. */
  exitDescription(): string | null;
  /** SIGTERM, then SIGKILL to the whole group after the grace period. Safe to call repeatedly. */
  stop(): Promise<void>;
  /** SIGKILL to the whole group at once, as a crash would end it (fault tests); waits until it is gone. */
  kill(): Promise<void>;
}

export interface SuperviseOptions {
  name: string;
  command: string;
  args: string[];
  logDir: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `killed by ${signal}` : `exited with code ${code}`;
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/** Sends a signal to a process or (negative pid) a process group; false when nothing is there. */
export function signalIfAlive(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** Polls until no process of the group is left; true when it emptied within the time. */
export async function waitForGroupGone(pgid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (signalIfAlive(-pgid, 0)) {
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
  return true;
}

/** Starts `command` under the watchdog shell, with stdout and stderr appended to `<logDir>/<name>.log`. */
export function startSupervised(options: SuperviseOptions): SupervisedProcess {
  if (process.platform === 'win32') throw new Error('the local stack needs a POSIX shell (Linux or macOS)');
  fs.mkdirSync(options.logDir, { recursive: true });
  const logPath = path.join(options.logDir, `${options.name}.log`);
  // Appending keeps the log of a previous (maybe crashed) run for diagnosis.
  const logFd = fs.openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    fs.writeSync(logFd, `\n--- ${new Date().toISOString()} ${options.command} ${options.args.join(' ')}\n`);
    child = spawn('/bin/sh', ['-c', WATCHDOG_SCRIPT, WATCHDOG_MARKER, String(process.pid), options.command, ...options.args], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', logFd, logFd],
      // Own process group: Ctrl-C in a terminal reaches only the Node process, which then stops
      // the servers in order; and a stuck server can be SIGKILLed together with its watchdog.
      detached: true,
    });
  } finally {
    fs.closeSync(logFd);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${options.name} (${options.command})`);

  let exitDescription: string | null = null;
  child.on('exit', (code, signal) => {
    exitDescription = describeExit(code, signal);
  });
  // Spawning /bin/sh itself failing is reported here; the exit handler covers the rest.
  child.on('error', (err) => {
    exitDescription ??= `could not be started: ${err.message}`;
  });

  let stopping: Promise<void> | null = null;
  const stop = async (): Promise<void> => {
    if (await waitForExit(child, 0)) return;
    signalIfAlive(pid, 'SIGTERM');
    if (!(await waitForExit(child, STOP_GRACE_MS))) {
      signalIfAlive(-pid, 'SIGKILL');
      await waitForExit(child, 2_000);
    }
    // The watchdog reaps the server before exiting, so this is normally empty at once; it is
    // the backstop for a server that forked helpers into the group.
    if (!(await waitForGroupGone(pid, 2_000))) signalIfAlive(-pid, 'SIGKILL');
  };

  const kill = async (): Promise<void> => {
    signalIfAlive(-pid, 'SIGKILL');
    await waitForExit(child, 2_000);
    await waitForGroupGone(pid, 2_000);
  };

  return {
    name: options.name,
    pid,
    logPath,
    exitDescription: () => exitDescription,
    stop: () => (stopping ??= stop()),
    kill: () => (stopping ??= kill()),
  };
}
