#!/usr/bin/env node
'use strict';
/**
 * Compiles every contracts/*.sol with solc-js (offline, pinned by package.json) and writes
 * one artifact per contract to contracts/build/<Name>.json.
 *
 * Runs before `tsc` in `npm run build`, so it must be fast when nothing changed: an artifact
 * is reused when the hashes of every source it was built from and the compiler settings
 * still match. Compiler errors abort the build with solc's own formatted messages.
 */
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

// Loading solc-js instantiates an ~8 MB emscripten module (~0.6 s); a no-op build should not
// pay for it, so the up-to-date check uses the package version and solc loads on demand.
const SOLC_PACKAGE_VERSION = require('solc/package.json').version;
let solcModule;
function solc() {
  if (!solcModule) {
    solcModule = require('solc');
    const full = solcModule.version();
    if (!full.startsWith(`${SOLC_PACKAGE_VERSION}+`)) {
      throw new Error(`solc reports ${full} but package.json of solc says ${SOLC_PACKAGE_VERSION}`);
    }
  }
  return solcModule;
}

const ROOT = path.resolve(__dirname, '..');
const CONTRACTS_DIR = path.join(ROOT, 'contracts');
const BUILD_DIR = path.join(CONTRACTS_DIR, 'build');

// Part of every artifact: changing any of these must force a rebuild.
const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'cancun',
};

/** True when an artifact's `compiler` block was produced by this solc with these settings. */
function sameCompiler(compiler) {
  if (!compiler || typeof compiler.version !== 'string') return false;
  if (!compiler.version.startsWith(`${SOLC_PACKAGE_VERSION}+`)) return false;
  return (
    JSON.stringify(compiler.optimizer) === JSON.stringify(SETTINGS.optimizer) &&
    compiler.evmVersion === SETTINGS.evmVersion
  );
}

function sha256(text) {
  return crypto.createHash('sha256').update(text).digest('hex');
}

/** Reads an import relative to contracts/; refuses paths that escape it. */
function readSource(unitName) {
  const file = path.resolve(CONTRACTS_DIR, unitName);
  if (!file.startsWith(CONTRACTS_DIR + path.sep)) throw new Error(`import outside contracts/: ${unitName}`);
  return fs.readFileSync(file, 'utf8');
}

function findImports(unitName) {
  try {
    return { contents: readSource(unitName) };
  } catch (err) {
    return { error: err.message };
  }
}

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Existing artifacts built from `unitName`, or undefined if any is missing or stale. */
function upToDateArtifacts(unitName, sourceHash) {
  if (!fs.existsSync(BUILD_DIR)) return undefined;
  const artifacts = fs
    .readdirSync(BUILD_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => readJson(path.join(BUILD_DIR, f)))
    .filter((a) => a && a.sourceFile === unitName);
  if (artifacts.length === 0) return undefined;
  const fresh = artifacts.every((a) => {
    if (a.sourceHash !== sourceHash) return false;
    if (!sameCompiler(a.compiler)) return false;
    // Imported files count too: a change in a base contract changes the bytecode.
    return Object.entries(a.sources || {}).every(([unit, hash]) => {
      try {
        return sha256(readSource(unit)) === hash;
      } catch {
        return false;
      }
    });
  });
  return fresh ? artifacts : undefined;
}

/** Write-then-rename so a concurrent reader (a test, the stack) never sees half a file. */
function writeAtomic(file, text) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

function compile(unitName, source) {
  const input = {
    language: 'Solidity',
    sources: { [unitName]: { content: source } },
    settings: {
      optimizer: SETTINGS.optimizer,
      evmVersion: SETTINGS.evmVersion,
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
    },
  };
  const output = JSON.parse(solc().compile(JSON.stringify(input), { import: findImports }));
  const diagnostics = output.errors || [];
  for (const d of diagnostics.filter((e) => e.severity !== 'error')) {
    process.stderr.write(d.formattedMessage || d.message);
  }
  const errors = diagnostics.filter((e) => e.severity === 'error');
  if (errors.length > 0) {
    const text = errors.map((e) => e.formattedMessage || e.message).join('\n');
    throw new Error(`solc failed on ${unitName}:\n${text}`);
  }
  return output;
}

function main() {
  const files = fs
    .readdirSync(CONTRACTS_DIR)
    .filter((f) => f.endsWith('.sol'))
    .sort();
  if (files.length === 0) throw new Error(`no .sol files in ${CONTRACTS_DIR}`);
  fs.mkdirSync(BUILD_DIR, { recursive: true });

  for (const unitName of files) {
    const source = readSource(unitName);
    const sourceHash = sha256(source);

    const cached = upToDateArtifacts(unitName, sourceHash);
    if (cached) {
      for (const a of cached) console.log(`contracts: ${a.contractName} up to date (${unitName})`);
      continue;
    }

    const output = compile(unitName, source);
    // Hashes of every source unit solc read (the file itself plus its imports).
    const sources = {};
    for (const unit of Object.keys(output.sources || {}).sort()) sources[unit] = sha256(readSource(unit));

    const contracts = output.contracts[unitName] || {};
    const names = Object.keys(contracts).sort();
    if (names.length === 0) throw new Error(`solc produced no contracts for ${unitName}`);
    for (const contractName of names) {
      const c = contracts[contractName];
      const artifact = {
        contractName,
        abi: c.abi,
        bytecode: `0x${c.evm.bytecode.object}`,
        deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
        compiler: { version: solc().version(), ...SETTINGS },
        sourceHash,
        sourceFile: unitName,
        sources,
      };
      writeAtomic(path.join(BUILD_DIR, `${contractName}.json`), JSON.stringify(artifact, null, 2) + '\n');
      const size = c.evm.deployedBytecode.object.length / 2;
      console.log(`contracts: compiled ${contractName} (${unitName}, ${size} bytes runtime, solc ${solc().version()})`);
    }
  }
}

try {
  main();
} catch (err) {
  console.error(err.message);
  process.exit(1);
}
