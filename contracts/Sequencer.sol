// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Sequencer
/// @notice Gives Lockstep nodes a single, shared total order for their pins.
/// @dev A pin is an opaque 32-byte value: a masked context computed off chain by the
///      parties of a process instance. Without the off-chain secret it cannot be linked
///      to an instance, a definition, a step or a party, so publishing it here reveals
///      nothing except that *something* was sequenced by `author`.
///
///      The contract deliberately keeps no storage. Everything the nodes need (the pins,
///      their order and the submitting address) is carried by the `BatchPinned` event,
///      whose position in the chain — (block, log index, index in batch) — is the order.
///      Avoiding SSTOREs keeps the cost per pin close to the calldata and log-data cost.
contract Sequencer {
    /// @notice Upper bound on pins per batch, so a single transaction stays well inside
    ///         block gas limits and an RPC node can always return the log.
    uint256 public constant MAX_BATCH = 1000;

    /// @notice The batch was empty: pinning nothing would only burn gas and emit noise.
    error EmptyBatch();

    /// @notice The batch holds more than `MAX_BATCH` pins.
    /// @param size number of pins submitted
    /// @param max the allowed maximum
    error BatchTooLarge(uint256 size, uint256 max);

    /// @notice Emitted once per accepted batch.
    /// @param author the submitting account (indexed so a node can filter its own batches)
    /// @param batchHash keccak256 of the tightly packed pins, a cheap identifier for the batch
    /// @param pins the opaque masked contexts, in the order the author chose
    event BatchPinned(address indexed author, bytes32 batchHash, bytes32[] pins);

    /// @notice Sequence a batch of pins.
    /// @param pins opaque 32-byte masked contexts; duplicates are allowed and simply
    ///        sequenced twice (deduplication is the nodes' business, not the chain's)
    function pinBatch(bytes32[] calldata pins) external {
        uint256 n = pins.length;
        if (n == 0) revert EmptyBatch();
        if (n > MAX_BATCH) revert BatchTooLarge(n, MAX_BATCH);
        // abi.encodePacked of bytes32[] is the plain concatenation of the 32-byte words,
        // so off-chain code can recompute it as keccak256(concat(pins)).
        bytes32 batchHash = keccak256(abi.encodePacked(pins));
        emit BatchPinned(msg.sender, batchHash, pins);
    }
}
