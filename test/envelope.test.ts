/** Sealing and verifying envelopes and invitations: what a node checks before it believes a peer. */
import { Wallet } from 'ethers';
import { sealEnvelope, sealInvitation, newSecret } from '../src/envelope/seal';
import { verifyEnvelope, verifyInvitation } from '../src/envelope/verify';
import { hashJson } from '../src/envelope/canonical';
import { contextOf, tagOf, stepLeaf } from '../src/chain/pins';
import type { NetworkFile } from '../src/model/network';
import type { InstanceHeader } from '../src/model/instance';

const acme = Wallet.createRandom();
const globex = Wallet.createRandom();
const network: NetworkFile = {
  chain: { rpcUrl: 'http://127.0.0.1:1', chainId: 31337, sequencer: '0x0000000000000000000000000000000000000001', deployBlock: 0, confirmations: 1 },
  temporal: { address: '127.0.0.1:1' },
  mongodb: { uri: 'mongodb://127.0.0.1:1' },
  parties: {
    acme: { name: 'acme', address: acme.address, namespace: 'acme', database: 'a', apiUrl: 'http://127.0.0.1:2', dxUrl: 'http://127.0.0.1:3' },
    globex: { name: 'globex', address: globex.address, namespace: 'globex', database: 'g', apiUrl: 'http://127.0.0.1:4', dxUrl: 'http://127.0.0.1:5' },
  },
};

const fields = {
  instanceId: 'i-1',
  definitionHash: hashJson({ id: 'd' }),
  step: 'order',
  author: 'acme',
  nonce: 1,
  proposedAt: '2026-01-01T00:00:00.000Z',
  salt: hashJson('salt'),
  input: { sku: 'A', quantity: 2 },
};

test('a sealed envelope verifies, and sealing is deterministic', () => {
  const a = sealEnvelope(acme, fields);
  const b = sealEnvelope(acme, fields);
  expect(a).toEqual(b);
  expect(() => verifyEnvelope(network, a)).not.toThrow();
  expect(a.envelope).not.toHaveProperty('input');
});

test('key order does not change the hash (RFC 8785)', () => {
  const a = sealEnvelope(acme, { ...fields, input: { quantity: 2, sku: 'A' } });
  expect(a.hash).toBe(sealEnvelope(acme, fields).hash);
});

test('an envelope signed by another key than the claimed author is refused', () => {
  const forged = sealEnvelope(globex, fields); // claims author acme, signed by globex
  expect(() => verifyEnvelope(network, forged)).toThrow(/not acme's/);
});

test('a tampered envelope, hash or payload is refused', () => {
  const sealed = sealEnvelope(acme, fields);
  expect(() => verifyEnvelope(network, { ...sealed, envelope: { ...sealed.envelope, step: 'pay' } })).toThrow(/hash mismatch/);
  expect(() => verifyEnvelope(network, { ...sealed, data: { ...sealed.data!, input: { sku: 'B', quantity: 2 } } })).toThrow(/does not match the envelope/);
  expect(() => verifyEnvelope(network, { ...sealed, signature: '0x1234' })).toThrow(/malformed/);
});

test("a step's output is sealed with its input: covered by the data hash, absent when there is none", () => {
  const plain = sealEnvelope(acme, fields);
  expect(plain.data).toEqual({ salt: fields.salt, input: fields.input });
  expect(plain.envelope.inputHash).toBe(hashJson({ salt: fields.salt, input: fields.input }));
  const decided = sealEnvelope(acme, { ...fields, output: { approved: true } });
  expect(decided.data).toEqual({ salt: fields.salt, input: fields.input, output: { approved: true } });
  expect(decided.envelope.inputHash).not.toBe(plain.envelope.inputHash);
  expect(() => verifyEnvelope(network, decided)).not.toThrow();
  expect(() => verifyEnvelope(network, { ...decided, data: { ...decided.data!, output: { approved: false } } })).toThrow(/does not match the envelope/);
  expect(() => verifyEnvelope(network, { ...decided, data: { salt: fields.salt, input: fields.input } })).toThrow(/does not match the envelope/);
});

test('an envelope from a party outside the network is refused', () => {
  const stranger = sealEnvelope(Wallet.createRandom(), { ...fields, author: 'mallory' });
  expect(() => verifyEnvelope(network, stranger)).toThrow(/unknown party "mallory"/);
});

test('invitations verify against the creator; a forged one is refused', () => {
  const header: InstanceHeader = { id: 'i-1', definitionId: 'd', definitionHash: fields.definitionHash, roles: { buyer: 'acme', seller: 'globex' }, createdBy: 'acme', createdAt: fields.proposedAt };
  const secret = newSecret();
  expect(() => verifyInvitation(network, sealInvitation(acme, header, secret))).not.toThrow();
  expect(() => verifyInvitation(network, sealInvitation(globex, header, secret))).toThrow(/not acme's/);
  expect(() => verifyInvitation(network, { ...sealInvitation(acme, header, secret), header: { ...header, roles: { buyer: 'globex', seller: 'acme' } } })).toThrow(/not acme's/);
});

test('tags of one instance are unlinkable without the secret; participants recompute them', () => {
  const s1 = newSecret();
  const s2 = newSecret();
  const tags = [1, 2, 3].map((n) => tagOf(contextOf(s1, 'acme', n)));
  expect(tags.every((t) => /^0x[0-9a-f]{16}$/.test(t))).toBe(true);
  expect(new Set(tags).size).toBe(3);
  // A participant, holding the secret, derives exactly the same tags.
  expect([1, 2, 3].map((n) => tagOf(contextOf(s1, 'acme', n)))).toEqual(tags);
  // Another instance, another author: unrelated tags.
  expect(tagOf(contextOf(s2, 'acme', 1))).not.toBe(tags[0]);
  expect(tagOf(contextOf(s1, 'globex', 1))).not.toBe(tags[0]);
  // The leaf binds the envelope hash and hides it.
  const hash = sealEnvelope(acme, fields).hash;
  expect(stepLeaf(s1, 'acme', 1, hash)).not.toBe(stepLeaf(s1, 'acme', 1, hashJson('other')));
  expect(stepLeaf(s1, 'acme', 1, hash)).not.toContain(hash.slice(2, 18));
});
