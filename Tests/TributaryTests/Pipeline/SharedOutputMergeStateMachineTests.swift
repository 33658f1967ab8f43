import Testing
@testable import Tributary

/// The shared output's merge decisions, event by event (no threads, no GStreamer).
@Suite struct SharedOutputMergeStateMachineTests {
    typealias Machine = SharedOutputMergeStateMachine<String>

    func merged(_ next: Machine.Next) -> [String]? {
        if case .merged(let batches) = next { return batches }
        return nil
    }

    func isWaiting(_ next: Machine.Next) -> Bool { if case .waiting = next { return true } else { return false } }
    func isFinished(_ next: Machine.Next) -> Bool { if case .finished = next { return true } else { return false } }

    @Test func theKthBatchesOfEveryShardMergeInShardOrder() {
        var m = Machine(shardCount: 3, depth: 2)
        m.batchArrived("c0", fromShard: 2)
        m.batchArrived("a0", fromShard: 0)
        #expect(isWaiting(m.next()), "shard 1 has sent nothing yet")
        m.batchArrived("b0", fromShard: 1)
        #expect(merged(m.next()) == ["a0", "b0", "c0"])
        #expect(isWaiting(m.next()))
    }

    @Test func aShardAheadWaitsAtTheDepth() {
        var m = Machine(shardCount: 2, depth: 1)
        #expect(m.accepts(fromShard: 0))
        m.batchArrived("a0", fromShard: 0)
        #expect(!m.accepts(fromShard: 0), "one batch waiting: shard 0 waits for shard 1")
        #expect(m.accepts(fromShard: 1))
        m.batchArrived("b0", fromShard: 1)
        #expect(merged(m.next()) == ["a0", "b0"])
        #expect(m.accepts(fromShard: 0) && m.accepts(fromShard: 1))
    }

    @Test func aFinishedShardStopsCountingOnceItsBatchesWentOut() {
        var m = Machine(shardCount: 2, depth: 2)
        m.batchArrived("a0", fromShard: 0)
        m.batchArrived("a1", fromShard: 0)
        m.batchArrived("b0", fromShard: 1)
        m.shardFinished(1)
        #expect(merged(m.next()) == ["a0", "b0"], "shard 1's last batch still merges")
        #expect(merged(m.next()) == ["a1"], "then shard 0 goes on alone")
        #expect(isWaiting(m.next()))
        m.shardFinished(0)
        #expect(isFinished(m.next()))
    }

    @Test func everyShardFinishedWithNothingQueuedIsDone() {
        var m = Machine(shardCount: 2, depth: 1)
        m.shardFinished(0)
        #expect(isWaiting(m.next()), "shard 1 still runs")
        m.shardFinished(1)
        #expect(isFinished(m.next()))
    }
}
