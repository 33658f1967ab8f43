import DequeModule

/// The merge decisions of `SharedOutput` and nothing else: no locks, no threads. Each shard hands
/// over its batches in order; the k-th batches of every shard still running are merged, in shard
/// order, into one; a shard may be at most `depth` batches ahead (its producer waits: the pace is
/// the slowest shard's); a finished shard stops counting once its queue is empty, so it never
/// stalls the others; when every shard has finished and every batch went out, the merge is done.
public struct SharedOutputMergeStateMachine<Batch> {
    /// What `next()` says.
    public enum Next {
        /// One batch of every shard still running, in shard order.
        case merged([Batch])
        /// A running shard has no batch waiting yet.
        case waiting
        /// Every shard finished and every batch went out.
        case finished
    }

    public let depth: Int
    private var queues: [Deque<Batch>]
    private var ended: [Bool]

    public init(shardCount: Int, depth: Int) {
        precondition(shardCount > 0 && depth > 0)
        self.depth = depth
        queues = Array(repeating: [], count: shardCount)
        ended = Array(repeating: false, count: shardCount)
    }

    /// Whether `shard` may hand over a batch now (fewer than `depth` of its batches wait).
    public func accepts(fromShard shard: Int) -> Bool { queues[shard].count < depth }

    public mutating func batchArrived(_ batch: Batch, fromShard shard: Int) {
        precondition(!ended[shard], "batch from shard \(shard) after it finished")
        queues[shard].append(batch)
    }

    /// The shard sends no more batches; the others go on without it.
    public mutating func shardFinished(_ shard: Int) { ended[shard] = true }

    /// The next merge, when every running shard has a batch waiting; takes those batches.
    public mutating func next() -> Next {
        let running = queues.indices.filter { !ended[$0] || !queues[$0].isEmpty }
        if running.isEmpty { return .finished }
        guard running.allSatisfy({ !queues[$0].isEmpty }) else { return .waiting }
        return .merged(running.map { queues[$0].removeFirst() })
    }
}
