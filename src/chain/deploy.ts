import { ethers } from 'ethers';
import { loadSequencerArtifact } from './artifact';

/**
 * Deploys a fresh Sequencer. The block number is returned so that readers can start
 * scanning for `BatchPinned` events there instead of from genesis.
 */
export async function deploySequencer(signer: ethers.Signer): Promise<{ address: string; blockNumber: number }> {
  const { abi, bytecode } = loadSequencerArtifact();
  const factory = new ethers.ContractFactory(abi, bytecode, signer);
  const contract = await factory.deploy();
  await contract.waitForDeployment();
  const tx = contract.deploymentTransaction();
  // waitForDeployment() only proves code exists at the address; the receipt gives the block.
  const receipt = tx ? await tx.wait() : null;
  if (!receipt) throw new Error('Sequencer deployment has no receipt');
  return { address: await contract.getAddress(), blockNumber: receipt.blockNumber };
}
