/**
 * Pieces of the local stack that need no server: how a Temporal dev server that lost one of its
 * ports to another process is recognised (it is then started again on fresh ports), and how a
 * test and the processes it starts draw their ports from different halves of the test's band.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePorts } from '../src/stack/ports';
import { lostPort } from '../src/stack/temporal-server';

describe('a Temporal dev server that lost a port', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-stack-units-'));
  const log = path.join(dir, 'temporal.log');
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  // The line temporal 1.5.1 printed when a CI run's metrics port was taken between check and bind.
  const taken = (port: number) => `time=2026-11-21T15:28:52.241 level=ERROR msg="can't set metrics port ${port}: listen tcp 127.0.0.1:${port}: bind: address already in use"\n`;

  test('is recognised from its own start in the log, for the ports it was given only', () => {
    fs.writeFileSync(log, `--- earlier start\n${taken(20111)}--- this start\n`);
    const from = fs.statSync(log).size;
    fs.appendFileSync(log, taken(20646));
    expect(lostPort(log, from, [20500, 20646])).toBe(true);
    // Another port (the caller's, or an earlier start's): not ours to pick again.
    expect(lostPort(log, from, [20111, 20500])).toBe(false);
    expect(lostPort(log, 0, [20111])).toBe(true);
  });

  test('is not recognised in a start that failed for another reason, or with no log', () => {
    fs.writeFileSync(log, 'level=ERROR msg="unable to open database file: no such file or directory" port 20646\n');
    expect(lostPort(log, 0, [20646])).toBe(false);
    expect(lostPort(path.join(dir, 'missing.log'), 0, [20646])).toBe(false);
  });
});

test("a process a test starts draws its ports from the other half of the test's band", async () => {
  const mine = await freePorts(30);
  // The built module, as the CLI a test runs would load it, started with the test's environment as the tests start theirs.
  const script = `require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'src', 'stack', 'ports.js'))}).freePorts(30).then((p) => console.log(JSON.stringify(p)))`;
  const theirs = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env } })) as number[];
  expect(Math.max(...mine)).toBeLessThan(Math.min(...theirs));
});
