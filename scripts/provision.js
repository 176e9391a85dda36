#!/usr/bin/env node
'use strict';
/**
 * Provisions the local servers the Lockstep stack runs: the Temporal CLI (dev server), FerretDB
 * (MongoDB wire protocol on SQLite, used when no `mongod` is installed) and anvil (dev chain);
 * and Chromium for the browser test of the Temporal UI (Debian's package, never a download).
 *
 * Runs from npm `postinstall`, before TypeScript is compiled, so it is plain CommonJS with no
 * dependencies. It is also `require`d by the stack (see provision.d.ts) so that versions and
 * cache paths have a single source of truth.
 *
 * Go-built tools land in `${XDG_CACHE_HOME:-~/.cache}/lockstep/bin/<tool>-<version>/<tool>`:
 * keyed by version so an upgrade never reuses a stale binary, and per user (not per clone) so
 * fresh clones and CI runners on the same machine reuse a build that takes minutes.
 */
const childProcess = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const VERSIONS = Object.freeze({ temporal: '1.5.1', ferretdb: '1.24.2' });

/**
 * Our changes to a tool's source (see FERRETDB_PATCHES), named in its cache folder so that a
 * binary built before a change is never reused.
 */
const BUILD_REVISIONS = Object.freeze({ ferretdb: 'lockstep.1' });

/**
 * FerretDB 1.24.2's SQLite backend looks documents up by `_id` with `_ferretdb_sjson->'$._id'`,
 * while the unique index it creates for `_id` is on `_ferretdb_sjson->"_id"`. SQLite matches an
 * index to a query by the expression's text, so every find, update and delete by `_id` scanned
 * the whole table, parsing each row's JSON (its `explain` says `SCAN`; updates by `_id` took 50 ms
 * at 10,000 documents). `->'_id'` means the same (a bare label is read as `$._id`) and is the
 * index's expression, so the lookup becomes an index search. Each patch must find its text, or
 * the build stops: a new version needs its patches looked at again.
 */
const FERRETDB_PATCHES = Object.freeze([
  {
    file: 'internal/backends/sqlite/metadata/metadata.go',
    from: `IDColumn = DefaultColumn + "->'$._id'"`,
    to: `IDColumn = DefaultColumn + "->'_id'"`,
  },
]);

const GO_PACKAGES = Object.freeze({
  temporal: `github.com/temporalio/cli/cmd/temporal@v${VERSIONS.temporal}`,
  ferretdbModule: `github.com/FerretDB/FerretDB@v${VERSIONS.ferretdb}`,
});

const ROOT = path.resolve(__dirname, '..');
const IS_WINDOWS = process.platform === 'win32';

function exeName(name) {
  return IS_WINDOWS ? `${name}.exe` : name;
}

function log(line) {
  process.stdout.write(`[lockstep setup] ${line}\n`);
}

function cacheBinRoot() {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'lockstep', 'bin');
}

/** Where the Go-built tool of the pinned version (and our patches to it) lives, whether or not it exists yet. */
function cachedBinaryPath(tool) {
  const version = VERSIONS[tool];
  if (!version) throw new Error(`no pinned version for ${tool}`);
  const revision = BUILD_REVISIONS[tool] ? `-${BUILD_REVISIONS[tool]}` : '';
  return path.join(cacheBinRoot(), `${tool}-${version}${revision}`, exeName(tool));
}

function isExecutableFile(file) {
  try {
    if (!fs.statSync(file).isFile()) return false;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Like `which`: the first executable called `name` on PATH, or null. */
function findOnPath(name) {
  const dirs = (process.env.PATH || '').split(path.delimiter).filter(Boolean);
  for (const dir of dirs) {
    const candidate = path.join(dir, exeName(name));
    if (isExecutableFile(candidate)) return candidate;
  }
  return null;
}

/** Node's platform/arch names mapped to the suffix of the `@foundry-rs/anvil-*` packages. */
function anvilPackageName() {
  const arch = { x64: 'amd64', arm64: 'arm64' }[process.arch] || process.arch;
  return `@foundry-rs/anvil-${process.platform}-${arch}`;
}

/**
 * The native anvil binary from the platform package npm installed as an optional dependency.
 * The `anvil` on PATH inside npm scripts is the wrapper package's JS shim, which may try to
 * download a binary, so PATH is deliberately not consulted.
 */
function findAnvil() {
  let manifest;
  try {
    manifest = require.resolve(`${anvilPackageName()}/package.json`, { paths: [ROOT] });
  } catch {
    return null;
  }
  const binary = path.join(path.dirname(manifest), 'bin', exeName('anvil'));
  return isExecutableFile(binary) ? binary : null;
}

/**
 * The binary the stack should run for `tool`, or null when it is not available.
 * temporal and mongod: PATH first (a user's own install wins), then (temporal) the cache.
 * ferretdb: the cache only, because a `ferretdb` on PATH may be v2, which has no SQLite handler.
 * anvil: node_modules only.
 */
function resolveBinary(tool) {
  switch (tool) {
    case 'temporal': {
      const cached = cachedBinaryPath('temporal');
      return findOnPath('temporal') || (isExecutableFile(cached) ? cached : null);
    }
    case 'ferretdb': {
      const cached = cachedBinaryPath('ferretdb');
      return isExecutableFile(cached) ? cached : null;
    }
    case 'mongod':
      return findOnPath('mongod');
    case 'anvil':
      return findAnvil();
    case 'chromium':
      return findChromium();
    default:
      throw new Error(`unknown tool ${tool}`);
  }
}

/** LOCKSTEP_CHROMIUM, else a Chromium on PATH (Debian's package installs /usr/bin/chromium). */
function findChromium() {
  const given = process.env.LOCKSTEP_CHROMIUM;
  if (given) return isExecutableFile(given) ? given : null;
  return findOnPath('chromium') || findOnPath('chromium-browser');
}

const CHROMIUM_HOW_TO =
  'install Debian\'s chromium (`sudo apt-get install chromium`), or point LOCKSTEP_CHROMIUM at a Chromium or Chrome binary';

/**
 * Chromium for the browser test. As root on Debian (a container, a CI runner) it is installed
 * with apt-get; anywhere else this only says how, because installing system packages needs
 * rights npm should not assume. Never fatal: only the browser test needs it, and it fails
 * with the same advice when Chromium is missing.
 */
async function provisionChromium() {
  const existing = findChromium();
  if (existing) return { path: existing, how: process.env.LOCKSTEP_CHROMIUM ? 'LOCKSTEP_CHROMIUM' : 'PATH' };
  if (process.env.LOCKSTEP_CHROMIUM) {
    log(`warning: LOCKSTEP_CHROMIUM=${process.env.LOCKSTEP_CHROMIUM} is not an executable file`);
    return null;
  }
  const aptGet = findOnPath('apt-get');
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (process.env.LOCKSTEP_SKIP_CHROMIUM === '1' || !aptGet || !isRoot || !fs.existsSync('/etc/debian_version')) {
    log(`chromium not found (only the Temporal UI browser test needs it): ${CHROMIUM_HOW_TO}`);
    return null;
  }
  log('installing chromium with apt-get (root on Debian; LOCKSTEP_SKIP_CHROMIUM=1 skips this)…');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => run(aptGet, ['install', '-y', '--no-install-recommends', 'chromium'], { env });
  try {
    await install();
  } catch {
    // A fresh image often has no package lists yet.
    try {
      await run(aptGet, ['update'], { env });
      await install();
    } catch (err) {
      log(`warning: could not install chromium: ${err.message.split('\n')[0]}; ${CHROMIUM_HOW_TO}`);
      return null;
    }
  }
  const installed = findChromium();
  if (!installed) log(`warning: apt-get installed chromium but it is not on PATH; ${CHROMIUM_HOW_TO}`);
  return installed ? { path: installed, how: 'apt-get' } : null;
}

/** `go` from PATH, or from the default tarball location (postinstall may run without a login PATH). */
function findGo() {
  const onPath = findOnPath('go');
  if (onPath) return onPath;
  const usual = path.join(IS_WINDOWS ? 'C:\\Program Files\\Go' : '/usr/local/go', 'bin', exeName('go'));
  return isExecutableFile(usual) ? usual : null;
}

function formatElapsed(ms) {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/**
 * Runs a command, capturing its output so a failure can show it, and printing a heartbeat
 * because a first Go build is silent for minutes and looks hung otherwise.
 */
function run(command, args, options) {
  return new Promise((resolve, reject) => {
    const child = childProcess.spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    const started = Date.now();
    const heartbeat = setInterval(() => log(`  …still working (${formatElapsed(Date.now() - started)})`), 30_000);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', (err) => {
      clearInterval(heartbeat);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearInterval(heartbeat);
      if (code === 0) return resolve(stdout);
      const status = signal ? `signal ${signal}` : `exit code ${code}`;
      reject(new Error(`${command} ${args.join(' ')} failed (${status}):\n${stderr.trim() || stdout.trim()}`));
    });
  });
}

function goEnv(extra) {
  // Both tools are pure Go (SQLite via modernc), so no C compiler is needed.
  return { ...process.env, CGO_ENABLED: '0', GO111MODULE: 'on', ...extra };
}

function missingGoError(tool) {
  return new Error(
    `${tool} not found and Go is not installed, so it cannot be built.\n` +
      `  Install Go 1.25 or newer (https://go.dev/dl/) and run \`npm run setup\`,\n` +
      `  or put a ${tool} binary on PATH.`,
  );
}

function uniqueTempName(finalPath) {
  return `${finalPath}.tmp-${process.pid}-${Date.now()}`;
}

async function buildTemporal(go) {
  const finalPath = cachedBinaryPath('temporal');
  const finalDir = path.dirname(finalPath);
  fs.mkdirSync(finalDir, { recursive: true });
  // `go install` writes straight into GOBIN under the final name; a private GOBIN plus a rename
  // keeps an interrupted build from leaving a half-written binary at the cached path.
  const tempBin = uniqueTempName(path.join(finalDir, 'gobin'));
  fs.mkdirSync(tempBin, { recursive: true });
  try {
    await run(go, ['install', GO_PACKAGES.temporal], { cwd: os.tmpdir(), env: goEnv({ GOBIN: tempBin }) });
    fs.renameSync(path.join(tempBin, exeName('temporal')), finalPath);
  } finally {
    fs.rmSync(tempBin, { recursive: true, force: true });
  }
  return finalPath;
}

function makeTreeWritable(dir) {
  // The Go module cache is read-only; the copy must be writable to add version.txt and to delete it.
  fs.chmodSync(dir, fs.statSync(dir).mode | 0o200);
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) makeTreeWritable(full);
    else if (entry.isFile()) fs.chmodSync(full, fs.statSync(full).mode | 0o200);
  }
}

/** Applies FERRETDB_PATCHES to a copy of FerretDB's source; throws if a patch's text is not there. */
function patchFerretDB(sourceDir) {
  for (const patch of FERRETDB_PATCHES) {
    const file = path.join(sourceDir, patch.file);
    const text = fs.readFileSync(file, 'utf8');
    if (text.split(patch.from).length !== 2) throw new Error(`cannot patch FerretDB: ${patch.file} does not contain ${patch.from} exactly once`);
    fs.writeFileSync(file, text.replace(patch.from, patch.to));
  }
}

/**
 * FerretDB cannot be built with a plain `go install …@v1.24.2`: the proxy refuses the version list
 * that the deprecation check asks for, and the module zip lacks build/version/version.txt, so the
 * binary panics at start. Building from a copy of the downloaded module avoids both, and lets
 * FERRETDB_PATCHES make its `_id` lookups use its `_id` index.
 */
async function buildFerretDB(go) {
  const version = `v${VERSIONS.ferretdb}`;
  const finalPath = cachedBinaryPath('ferretdb');
  fs.mkdirSync(path.dirname(finalPath), { recursive: true });
  const tempPath = uniqueTempName(finalPath);
  const downloaded = JSON.parse(
    await run(go, ['mod', 'download', '-json', GO_PACKAGES.ferretdbModule], { cwd: os.tmpdir(), env: goEnv() }),
  );
  if (!downloaded.Dir) throw new Error(`go mod download gave no directory: ${downloaded.Error || 'unknown error'}`);
  const sourceCopy = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-ferretdb-'));
  try {
    fs.cpSync(downloaded.Dir, sourceCopy, { recursive: true });
    makeTreeWritable(sourceCopy);
    fs.writeFileSync(path.join(sourceCopy, 'build', 'version', 'version.txt'), `${version}\n`);
    patchFerretDB(sourceCopy);
    await run(go, ['build', '-buildvcs=false', '-o', tempPath, './cmd/ferretdb'], { cwd: sourceCopy, env: goEnv() });
    // A binary that starts but panics on --version would fail much later, inside the stack.
    const reported = await run(tempPath, ['--version'], {});
    if (!reported.includes(version)) throw new Error(`built ferretdb reports an unexpected version:\n${reported}`);
    fs.renameSync(tempPath, finalPath);
  } finally {
    fs.rmSync(tempPath, { force: true });
    fs.rmSync(sourceCopy, { recursive: true, force: true });
  }
  return finalPath;
}

/** Ensures one Go-built tool exists; returns where it is and how it was found. */
async function provisionGoTool(tool, build) {
  const existing = resolveBinary(tool);
  if (existing) return { path: existing, how: existing === cachedBinaryPath(tool) ? 'cache' : 'PATH' };
  const go = findGo();
  if (!go) throw missingGoError(tool);
  const name = `${tool} v${VERSIONS[tool]}${BUILD_REVISIONS[tool] ? ` (${BUILD_REVISIONS[tool]})` : ''}`;
  log(`building ${name} with go (takes a few minutes on a new machine)…`);
  const started = Date.now();
  const built = await build(go);
  log(`built ${name} in ${formatElapsed(Date.now() - started)}: ${built}`);
  return { path: built, how: 'built' };
}

/**
 * Provisions every tool the local stack may need. temporal and anvil are always required;
 * FerretDB only when there is no mongod (a failure to build it is then just a warning).
 */
async function provisionAll() {
  const summary = {};
  summary.temporal = await provisionGoTool('temporal', buildTemporal);

  const mongod = resolveBinary('mongod');
  summary.mongod = mongod ? { path: mongod, how: 'PATH' } : null;
  try {
    summary.ferretdb = await provisionGoTool('ferretdb', buildFerretDB);
  } catch (err) {
    if (!mongod) throw err;
    log(`warning: could not provision ferretdb (not needed, mongod is on PATH): ${err.message}`);
    summary.ferretdb = null;
  }

  const anvil = resolveBinary('anvil');
  if (!anvil) {
    throw new Error(
      `anvil not found: the optional dependency ${anvilPackageName()} is not installed.\n` +
        '  Run `npm install` without --omit=optional / --no-optional (anvil may not support this platform).',
    );
  }
  summary.anvil = { path: anvil, how: 'node_modules' };
  summary.chromium = await provisionChromium();
  return summary;
}

function printSummary(summary) {
  log('binaries used by the local stack (and chromium, by the browser test):');
  for (const tool of ['temporal', 'mongod', 'ferretdb', 'anvil', 'chromium']) {
    const entry = summary[tool];
    let text;
    if (entry) text = `${entry.path} (${entry.how})`;
    else if (tool === 'mongod') text = 'not on PATH (FerretDB is used instead)';
    else if (tool === 'chromium') text = 'not available (only the browser test needs it)';
    else text = 'not available';
    log(`  ${tool.padEnd(8)} ${text}`);
  }
}

async function main() {
  if (process.env.LOCKSTEP_SKIP_PROVISION === '1') {
    log('LOCKSTEP_SKIP_PROVISION=1: skipping provisioning');
    return;
  }
  printSummary(await provisionAll());
}

module.exports = { VERSIONS, resolveBinary, cachedBinaryPath, provisionAll, CHROMIUM_HOW_TO };

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`[lockstep setup] error: ${err.message}\n`);
    process.exitCode = 1;
  });
}
