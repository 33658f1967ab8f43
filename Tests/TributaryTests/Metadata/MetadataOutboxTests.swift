import Testing
@testable import Tributary

/// A network sink's decisions, event by event: memory, spool, replay, drop. No I/O.
@Suite struct MetadataOutboxTests {
    typealias Outbox = MetadataOutbox<Int>

    @Test func connectedItSendsInBatchesInOrder() {
        var outbox = Outbox(memoryCapacity: 100, batchLimit: 4)
        outbox.connectionChanged(true)
        #expect(outbox.published(Array(0..<10)) == 0)
        #expect(outbox.nextStep() == .send(count: 4))
        #expect(outbox.take(4) == [0, 1, 2, 3])
        outbox.sent(4)
        #expect(outbox.nextStep() == .send(count: 4))
        #expect(outbox.take(4) == [4, 5, 6, 7])
        outbox.sent(4)
        #expect(outbox.nextStep() == .send(count: 2))
        #expect(outbox.take(2) == [8, 9])
        outbox.sent(2)
        #expect(outbox.nextStep() == .idle)
        #expect(outbox.counts == .init(published: 10, sent: 10, spooled: 0, replayed: 0, dropped: 0))
    }

    @Test func disconnectedItSpoolsAndReplaysTheSpoolFirstWhenBack() {
        var outbox = Outbox(memoryCapacity: 100, batchLimit: 8)
        _ = outbox.published(Array(0..<5))
        #expect(outbox.nextStep() == .spool(count: 5), "down: to disk")
        outbox.spooled(outbox.take(5).count)
        _ = outbox.published([5, 6])
        outbox.connectionChanged(true)
        #expect(outbox.nextStep() == .replay, "back: the spool goes before newer messages")
        outbox.replayed(5)
        #expect(outbox.nextStep() == .send(count: 2))
        #expect(outbox.take(2) == [5, 6])
        outbox.sent(2)
        #expect(outbox.counts == .init(published: 7, sent: 2, spooled: 5, replayed: 5, dropped: 0))
        #expect(outbox.spoolBacklog == 0)
    }

    @Test func aBatchLostInFlightIsSpooledAndReplayed() {
        var outbox = Outbox(memoryCapacity: 100, batchLimit: 8)
        outbox.connectionChanged(true)
        _ = outbox.published(Array(0..<3))
        let batch = outbox.take(3)
        outbox.connectionChanged(false)  // the send failed
        outbox.spooled(batch.count)
        #expect(outbox.spoolBacklog == 3)
        outbox.connectionChanged(true)
        #expect(outbox.nextStep() == .replay)
    }

    @Test func fullMemoryAndAFullSpoolDropTheOldestAndCountThem() {
        var outbox = Outbox(memoryCapacity: 4, batchLimit: 8)
        #expect(outbox.published(Array(0..<6)) == 2, "the pipeline never waits: the oldest go")
        #expect(outbox.take(4) == [2, 3, 4, 5])
        outbox.spooled(4)
        outbox.spoolDropped(3)
        #expect(outbox.spoolBacklog == 1)
        #expect(outbox.counts.dropped == 5)
    }
}
