/**
 * Baseline (b): one plain pin transaction per step (a batch of one: one tag, one root), with the
 * same workload shape as Lockstep (instances × steps, `concurrency` at a time, each step waiting
 * for N confirmations before the next). Its latency is the chain's own floor on this machine.
 */
import { hexlify, randomBytes, Wallet } from 'ethers';
import { SequencerClient } from '../../src/chain/sequencer';
import { merkleRoot } from '../../src/chain/merkle';
import type { BlockClock } from '../block-clock';
import { drive, type DriveResult, type Workload } from '../driver';

export interface PinTarget {
  rpcUrl: string;
  chainId: number;
  sequencer: string;
  privateKey: string;
  confirmations: number;
}

export async function runPinBaseline(target: PinTarget, clock: BlockClock, workload: Workload, onStep: (done: number) => void): Promise<DriveResult> {
  const wallet = new Wallet(target.privateKey, clock.rpc);
  const sequencer = new SequencerClient({ rpcUrl: target.rpcUrl, address: target.sequencer, chainId: target.chainId });
  let nonce = await clock.rpc.getTransactionCount(wallet.address, 'pending');
  const feeData = await clock.rpc.getFeeData();
  try {
    const runner = {
      start: () => Promise.resolve(null),
      step: async (_context: null, instance: number, k: number) => {
        const requestedAt = Date.now();
        const tag = hexlify(randomBytes(8));
        const signed = await wallet.signTransaction({
          to: target.sequencer,
          data: sequencer.encodeBatch(merkleRoot([hexlify(randomBytes(32))]), [tag]),
          nonce: nonce++,
          gasLimit: 100_000,
          maxFeePerGas: (feeData.maxFeePerGas ?? 2_000_000_000n) * 2n,
          maxPriorityFeePerGas: feeData.maxPriorityFeePerGas ?? 1_000_000_000n,
          chainId: target.chainId,
          type: 2,
        });
        const tx = await clock.rpc.broadcastTransaction(signed);
        const acceptedAt = Date.now();
        const finalAt = await clock.finalAt(tx.hash, target.confirmations);
        return { instance, k, requestedAt, acceptedAt, finalAt };
      },
    };
    return await drive(workload, runner, onStep);
  } finally {
    sequencer.destroy();
  }
}
