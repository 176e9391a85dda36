import type { Definition } from './definition';
import type { Envelope, StepData } from './envelope';
import type { InstanceHeader } from './instance';
import type { PinReceipt } from './pin';

export const EVIDENCE_FORMAT = 'lockstep-evidence/1';

/**
 * Where a step's pin sits on chain, as the exporter claims it. A verifier re-reads every field
 * from the chain; none of them is trusted.
 */
export interface PinReference {
  chainId: number;
  /** Address of the Sequencer contract that emitted the `BatchPinned` event. */
  contract: string;
  blockNumber: number;
  blockHash: string;
  transactionHash: string;
  logIndex: number;
  /** Position of the step's tag inside the batch. */
  index: number;
  /** The 8-byte tag, first 8 bytes of keccak256(secret ‖ author ‖ nonce). */
  tag: string;
}

/** One decided step of the instance, as the exporting party holds it. */
export interface EvidenceStep {
  /** Position in the decided history (0-based): the chain order the exporter applied. */
  seq: number;
  status: 'confirmed' | 'rejected';
  rejection?: { code: string; message: string; winner?: string };
  envelope: Envelope;
  /** keccak256(canonical(envelope)). */
  hash: string;
  /** The author's EIP-191 signature over `hash`. */
  signature: string;
  /** Only for steps the exporter may read; otherwise `envelope.inputHash` stands for the data. */
  data?: StepData;
  /** Merkle proof that the batch root commits to this envelope at `pin.index`. */
  receipt: PinReceipt;
  pin: PinReference;
}

/**
 * An evidence bundle (`lockstep export`): everything a third party needs to check an instance's
 * history against the chain without trusting the party that exported it. It includes the
 * instance's pin secret, which links this instance's tags on chain (and only this instance's).
 */
export interface EvidenceBundle {
  format: typeof EVIDENCE_FORMAT;
  exportedBy: string;
  exportedAt: string;
  chain: { chainId: number; sequencer: string; deployBlock: number; confirmations: number };
  /** Signing address of each participant. An arbiter should check them against a source it trusts. */
  parties: Record<string, { address: string }>;
  definition: { hash: string; document: Definition };
  instance: {
    header: InstanceHeader;
    /** The creator's signature over keccak256(canonical(header)). */
    signature: string;
    /** The per-instance pin secret: needed to recompute tags and Merkle leaves. */
    secret: string;
  };
  steps: EvidenceStep[];
}

const hex = (bytes?: number) => ({ type: 'string', pattern: bytes ? `^0x[0-9a-fA-F]{${bytes * 2}}$` : '^0x[0-9a-fA-F]*$' });
const count = { type: 'integer', minimum: 0 };

/** The bundle's shape (JSON Schema 2020-12): checked before anything in it is believed. */
export const evidenceBundleSchema = {
  type: 'object',
  required: ['format', 'exportedBy', 'chain', 'parties', 'definition', 'instance', 'steps'],
  properties: {
    format: { const: EVIDENCE_FORMAT },
    exportedBy: { type: 'string' },
    chain: {
      type: 'object',
      required: ['chainId', 'sequencer', 'deployBlock', 'confirmations'],
      properties: { chainId: count, sequencer: hex(20), deployBlock: count, confirmations: { type: 'integer', minimum: 1 } },
    },
    parties: { type: 'object', additionalProperties: { type: 'object', required: ['address'], properties: { address: hex(20) } } },
    definition: { type: 'object', required: ['hash', 'document'], properties: { hash: hex(32), document: { type: 'object' } } },
    instance: {
      type: 'object',
      required: ['header', 'signature', 'secret'],
      properties: {
        header: { type: 'object', required: ['id', 'definitionId', 'definitionHash', 'roles', 'createdBy', 'createdAt'] },
        signature: hex(),
        secret: hex(32),
      },
    },
    steps: {
      type: 'array',
      items: {
        type: 'object',
        required: ['seq', 'status', 'envelope', 'hash', 'signature', 'receipt', 'pin'],
        properties: {
          seq: count,
          status: { enum: ['confirmed', 'rejected'] },
          envelope: { type: 'object', required: ['v', 'instanceId', 'definitionHash', 'step', 'author', 'nonce', 'proposedAt', 'inputHash'], properties: { nonce: { type: 'integer', minimum: 1 }, author: { type: 'string' }, step: { type: 'string' } } },
          hash: hex(32),
          signature: hex(),
          data: { type: 'object', required: ['salt', 'input'] },
          receipt: { type: 'object', required: ['root', 'index', 'count', 'proof'], properties: { root: hex(32), index: count, count, proof: { type: 'array', items: hex(32) } } },
          pin: {
            type: 'object',
            required: ['chainId', 'contract', 'blockNumber', 'blockHash', 'transactionHash', 'logIndex', 'index', 'tag'],
            properties: { chainId: count, contract: hex(20), blockNumber: count, blockHash: hex(32), transactionHash: hex(32), logIndex: count, index: count, tag: hex(8) },
          },
        },
      },
    },
  },
} as const;
