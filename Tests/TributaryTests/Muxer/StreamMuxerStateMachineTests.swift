import Testing
@testable import Tributary

/// The muxer's batching rules, driven event by event on a manual clock: no threads, no sleeps.
@Suite struct StreamMuxerStateMachineTests {
    typealias Machine = StreamMuxerStateMachine<String>
    let clock = ManualClock()

    func machine(sources: Int, batchSize: Int? = nil, timeoutMicroseconds: Int = 33_000) -> Machine {
        Machine(configuration: .init(sourceCount: sources, batchSize: batchSize ?? sources, pushTimeoutMicroseconds: timeoutMicroseconds))
    }

    func contents(_ batch: Machine.Batch) -> [String] { batch.entries.map(\.element) }

    @Test func fullBatchGoesAtOnceOrderedBySource() {
        var m = machine(sources: 3)
        #expect(m.frameArrived("b0", from: 1, at: clock.now()).batches.isEmpty)
        clock.advance(byMicroseconds: 1000)
        #expect(m.frameArrived("c0", from: 2, at: clock.now()).batches.isEmpty)
        let decision = m.frameArrived("a0", from: 0, at: clock.now())
        #expect(decision.batches.count == 1)
        #expect(contents(decision.batches[0]) == ["a0", "b0", "c0"])
        #expect(decision.batches[0].entries.map(\.sourceID) == [0, 1, 2])
        #expect(decision.batches[0].batchID == 0)
        #expect(decision.deadline == nil)
    }

    @Test func partialBatchWaitsForTheTimeoutFromTheFirstFrame() {
        var m = machine(sources: 3, timeoutMicroseconds: 33_000)
        let start = clock.now()
        let first = m.frameArrived("a0", from: 0, at: start)
        #expect(first.batches.isEmpty)
        #expect(first.deadline == start.advanced(byNanoseconds: 33_000_000))
        clock.advance(byMicroseconds: 10_000)
        let second = m.frameArrived("b0", from: 1, at: clock.now())
        #expect(second.batches.isEmpty)
        #expect(second.deadline == start.advanced(byNanoseconds: 33_000_000), "the deadline counts from the first frame")
        clock.advance(byMicroseconds: 22_999)
        #expect(m.timeoutExpired(at: clock.now()).batches.isEmpty, "1 µs early: nothing goes")
        clock.advance(byMicroseconds: 1)
        let expired = m.timeoutExpired(at: clock.now())
        #expect(expired.batches.count == 1)
        #expect(contents(expired.batches[0]) == ["a0", "b0"])
        #expect(expired.deadline == nil)
        #expect(m.totalQueued == 0)
    }

    @Test func minusOneWaitsForeverForAFullBatch() {
        var m = machine(sources: 2, timeoutMicroseconds: -1)
        let d = m.frameArrived("a0", from: 0, at: clock.now())
        #expect(d.deadline == nil)
        clock.advance(byMicroseconds: 3_600_000_000)
        #expect(m.timeoutExpired(at: clock.now()).batches.isEmpty)
        let full = m.frameArrived("b0", from: 1, at: clock.now())
        #expect(full.batches.count == 1)
        #expect(contents(full.batches[0]) == ["a0", "b0"])
    }

    @Test func aSourceAtEndOfStreamNeverStallsTheOthers() {
        var m = machine(sources: 2, timeoutMicroseconds: -1)
        _ = m.sourceEnded(1, at: clock.now())
        let d = m.frameArrived("a0", from: 0, at: clock.now())
        #expect(d.batches.count == 1, "with source 1 ended, one frame from source 0 is a full batch")
        #expect(contents(d.batches[0]) == ["a0"])
    }

    @Test func endOfStreamReleasesAWaitingPartialBatch() {
        var m = machine(sources: 2, timeoutMicroseconds: -1)
        #expect(m.frameArrived("a0", from: 0, at: clock.now()).batches.isEmpty)
        let d = m.sourceEnded(1, at: clock.now())
        #expect(d.batches.count == 1)
        #expect(contents(d.batches[0]) == ["a0"])
        #expect(!d.isFinished)
    }

    @Test func finishesOnlyWhenEverySourceEndedAndEverythingWentOut() {
        var m = machine(sources: 2, timeoutMicroseconds: -1)
        _ = m.frameArrived("a0", from: 0, at: clock.now())
        _ = m.frameArrived("a1", from: 0, at: clock.now())
        var d = m.sourceEnded(0, at: clock.now())
        #expect(!d.isFinished && d.batches.isEmpty, "source 1 is still running and has sent nothing")
        d = m.sourceEnded(1, at: clock.now())
        #expect(d.isFinished)
        #expect(d.batches.map(contents) == [["a0", "a1"]], "the queued frames of the source that is ahead go out together")
        #expect(m.isFinished)
    }

    @Test func atMostOneFramePerSourceUnlessASourceIsAhead() {
        var m = machine(sources: 2, batchSize: 2, timeoutMicroseconds: 33_000)
        _ = m.frameArrived("a0", from: 0, at: clock.now())
        _ = m.frameArrived("a1", from: 0, at: clock.now())
        let d = m.frameArrived("b0", from: 1, at: clock.now())
        #expect(d.batches.map(contents) == [["a0", "b0"]])
        #expect(m.queuedCount(of: 0) == 1)
        #expect(d.deadline != nil, "the frame left behind starts the next batch's wait")

        // A bigger batch than sources: the source that is ahead fills the room.
        var big = machine(sources: 2, batchSize: 4, timeoutMicroseconds: 33_000)
        _ = big.frameArrived("a0", from: 0, at: clock.now())
        _ = big.frameArrived("a1", from: 0, at: clock.now())
        _ = big.frameArrived("a2", from: 0, at: clock.now())
        let e = big.frameArrived("b0", from: 1, at: clock.now())
        #expect(e.batches.map(contents) == [["a0", "a1", "a2", "b0"]])
    }

    @Test func batchSmallerThanSourcesIsFullAndRotatesFairly() {
        var m = machine(sources: 3, batchSize: 2, timeoutMicroseconds: -1)
        _ = m.frameArrived("a0", from: 0, at: clock.now())
        #expect(m.frameArrived("b0", from: 1, at: clock.now()).batches.map(contents) == [["a0", "b0"]])
        _ = m.frameArrived("a1", from: 0, at: clock.now())
        #expect(m.frameArrived("c0", from: 2, at: clock.now()).batches.map(contents) == [["a1", "c0"]])
        // Every source has frames queued: the round-robin start has moved on, so source 0 is not
        // always first served.
        _ = m.frameArrived("b1", from: 1, at: clock.now())
        let served = m.frameArrived("c1", from: 2, at: clock.now()).batches.map(contents)
        #expect(served == [["b1", "c1"]])
        #expect(m.totalQueued == 0)
    }

    @Test func batchIDsCountUp() {
        var m = machine(sources: 1)
        var ids: [Int] = []
        for i in 0..<5 { ids += m.frameArrived("f\(i)", from: 0, at: clock.now()).batches.map(\.batchID) }
        #expect(ids == [0, 1, 2, 3, 4])
    }

    @Test func droppingTheOldestFrameOfALiveSource() {
        var m = machine(sources: 2, timeoutMicroseconds: -1)
        _ = m.frameArrived("a0", from: 0, at: clock.now())
        _ = m.frameArrived("a1", from: 0, at: clock.now())
        #expect(m.dropOldest(of: 0) == "a0")
        let d = m.frameArrived("b0", from: 1, at: clock.now())
        #expect(d.batches.map(contents) == [["a1", "b0"]])
    }
}
