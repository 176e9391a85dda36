// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Sequencer
/// @notice Gives Lockstep nodes one shared total order for their steps.
/// @dev A batch is a Merkle root plus one 8-byte tag per step, packed. A tag is the first 8 bytes
///      of a masked context that only an instance's participants can compute (from the instance's
///      secret, the author and the author's step number), so outsiders cannot link two tags to one
///      instance, party or step. The root commits to every step's envelope hash; each participant
///      checks its own steps against it with a Merkle proof it receives privately.
///
///      No storage: everything nodes need is in the event, whose position in the chain (block,
///      log index, index of the tag in the batch) is the order. Tags are short because calldata
///      dominates the cost: at 100 steps a batch costs well under 600 gas per step.
contract Sequencer {
    /// @notice Upper bound on steps per batch, so a transaction stays well inside block limits.
    uint256 public constant MAX_BATCH = 1000;
    uint256 private constant TAG_BYTES = 8;

    /// @notice The tags are empty or not a whole number of 8-byte tags.
    error MalformedTags(uint256 length);

    /// @notice The batch holds more than `MAX_BATCH` tags.
    error BatchTooLarge(uint256 size, uint256 max);

    /// @notice Emitted once per accepted batch.
    /// @param author the submitting account (indexed, so a node can find its own batches)
    /// @param root Merkle root over the batch's leaves, one per tag, in tag order
    /// @param tags the packed 8-byte tags, in the order the author chose
    event BatchPinned(address indexed author, bytes32 root, bytes tags);

    /// @notice Sequence a batch.
    function pinBatch(bytes32 root, bytes calldata tags) external {
        uint256 length = tags.length;
        if (length == 0 || length % TAG_BYTES != 0) revert MalformedTags(length);
        if (length / TAG_BYTES > MAX_BATCH) revert BatchTooLarge(length / TAG_BYTES, MAX_BATCH);
        emit BatchPinned(msg.sender, root, tags);
    }
}
