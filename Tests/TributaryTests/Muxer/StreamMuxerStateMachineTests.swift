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

    // MARK: Sources that come and go

    /// A machine whose input is open: sources may be added until `closeInput`.
    func openMachine(sources: Int, batchSize: Int, timeoutMicroseconds: Int = 33_000) -> Machine {
        Machine(configuration: .init(sourceCount: sources, batchSize: batchSize, pushTimeoutMicroseconds: timeoutMicroseconds,
                                     acceptsNewSources: true))
    }

    @Test func aSourceAddedMidBatchIsWaitedForWithinTheSameDeadline() {
        var m = openMachine(sources: 2, batchSize: 3)
        let start = clock.now()
        _ = m.frameArrived("a0", from: 0, at: start)
        clock.advance(byMicroseconds: 10_000)
        let added = m.sourceAdded(2, at: clock.now())
        #expect(added.batches.isEmpty)
        #expect(added.deadline == start.advanced(byNanoseconds: 33_000_000), "adding never makes the batch wait longer")
        let second = m.frameArrived("b0", from: 1, at: clock.now())
        #expect(second.batches.isEmpty, "two of the three sources now running: not full")
        let full = m.frameArrived("c0", from: 2, at: clock.now())
        #expect(full.batches.map(contents) == [["a0", "b0", "c0"]])
        #expect(full.batches[0].entries.map(\.sourceID) == [0, 1, 2])

        // A fourth source, and the batch size follows: when it is late, the batch goes partial at
        // the deadline of its first frame.
        _ = m.frameArrived("a1", from: 0, at: clock.now())
        clock.advance(byMicroseconds: 1000)
        _ = m.sourceAdded(3, at: clock.now())
        _ = m.setBatchSize(4, at: clock.now())
        _ = m.frameArrived("b1", from: 1, at: clock.now())
        #expect(m.frameArrived("c1", from: 2, at: clock.now()).batches.isEmpty, "three of four")
        clock.advance(byMicroseconds: 31_999)
        #expect(m.timeoutExpired(at: clock.now()).batches.isEmpty)
        clock.advance(byMicroseconds: 1)
        #expect(m.timeoutExpired(at: clock.now()).batches.map(contents) == [["a1", "b1", "c1"]])
    }

    @Test func removingTheSourceABatchWaitsForLetsTheBatchGoNow() {
        for policy in [SourceRemovalPolicy.drain, .drop] {
            var m = machine(sources: 3, timeoutMicroseconds: -1)
            _ = m.frameArrived("a0", from: 0, at: clock.now())
            _ = m.frameArrived("b0", from: 1, at: clock.now())
            let d = m.sourceRemoved(2, policy: policy, at: clock.now())
            #expect(d.batches.map(contents) == [["a0", "b0"]], "\(policy): source 2 sent nothing and is gone")
            #expect(d.dropped.isEmpty)
            #expect(m.sourceIDs == [0, 1])
            #expect(m.hasEnded(2))
        }
    }

    @Test func removingWithDropReturnsTheQueuedFramesAndStopsCountingTheSource() {
        var m = machine(sources: 3, timeoutMicroseconds: -1)
        _ = m.frameArrived("a0", from: 0, at: clock.now())
        _ = m.frameArrived("b0", from: 1, at: clock.now())
        _ = m.frameArrived("b1", from: 1, at: clock.now())
        let removed = m.sourceRemoved(1, policy: .drop, at: clock.now())
        #expect(removed.dropped == ["b0", "b1"])
        #expect(removed.batches.isEmpty, "still waiting for source 2")
        #expect(m.queuedCount(of: 1) == 0 && m.totalQueued == 1)
        let full = m.frameArrived("c0", from: 2, at: clock.now())
        #expect(full.batches.map(contents) == [["a0", "c0"]])
        #expect(full.batches[0].entries.map(\.sourceID) == [0, 2])
    }

    @Test func removingWithDrainLetsQueuedFramesGoOutThenForgetsTheSource() {
        var m = machine(sources: 2, timeoutMicroseconds: -1)
        _ = m.frameArrived("a0", from: 0, at: clock.now())
        _ = m.frameArrived("a1", from: 0, at: clock.now())
        let removed = m.sourceRemoved(0, policy: .drain, at: clock.now())
        #expect(removed.dropped.isEmpty && removed.batches.isEmpty, "its frames still count; source 1 is still awaited")
        #expect(m.hasEnded(0))
        #expect(m.frameArrived("b0", from: 1, at: clock.now()).batches.map(contents) == [["a0", "b0"]])
        #expect(m.sourceIDs == [0, 1], "source 0 still has a1 to send")
        #expect(m.frameArrived("b1", from: 1, at: clock.now()).batches.map(contents) == [["a1", "b1"]])
        #expect(m.sourceIDs == [1])
        #expect(m.frameArrived("b2", from: 1, at: clock.now()).batches.map(contents) == [["b2"]], "source 0 no longer counts")
    }

    @Test func aDroppedFirstFrameDoesNotRestartTheWait() {
        var m = machine(sources: 3, timeoutMicroseconds: 33_000)
        let start = clock.now()
        _ = m.frameArrived("a0", from: 0, at: start)
        clock.advance(byMicroseconds: 10_000)
        _ = m.frameArrived("b0", from: 1, at: clock.now())
        clock.advance(byMicroseconds: 10_000)
        let removed = m.sourceRemoved(0, policy: .drop, at: clock.now())
        #expect(removed.dropped == ["a0"])
        #expect(removed.deadline == start.advanced(byNanoseconds: 33_000_000))
        clock.advance(byMicroseconds: 13_000)
        #expect(m.timeoutExpired(at: clock.now()).batches.map(contents) == [["b0"]])
    }

    @Test func theLastSourceRemovedLeavesAnOpenMachineWaitingForANewOne() {
        var m = openMachine(sources: 1, batchSize: 1)
        #expect(m.frameArrived("a0", from: 0, at: clock.now()).batches.map(contents) == [["a0"]])
        _ = m.frameArrived("a1", from: 0, at: clock.now())  // a batch of one goes at once: nothing left
        let removed = m.sourceRemoved(0, policy: .drop, at: clock.now())
        #expect(removed.dropped.isEmpty && !removed.isFinished && removed.deadline == nil)
        #expect(m.sourceIDs.isEmpty && !m.isFinished)
        clock.advance(byMicroseconds: 3_600_000_000)
        #expect(!m.timeoutExpired(at: clock.now()).isFinished)

        // The camera comes back under a new id; the old one is never reused.
        #expect(m.highestSourceID == 0)
        _ = m.sourceAdded(1, at: clock.now())
        let back = m.frameArrived("x0", from: 1, at: clock.now())
        #expect(back.batches.map(contents) == [["x0"]])
        #expect(back.batches[0].entries.map(\.sourceID) == [1])
        #expect(back.batches[0].batchID == 2, "batch ids keep counting across the gap")
        #expect(!m.closeInput(at: clock.now()).isFinished, "source 1 still runs")
        #expect(m.sourceEnded(1, at: clock.now()).isFinished)
    }

    @Test func anOpenEmptyMachineWaitsAndFinishesAfterClose() {
        var m = openMachine(sources: 0, batchSize: 4)
        #expect(!m.isFinished)
        clock.advance(byMicroseconds: 3_600_000_000)
        let waited = m.timeoutExpired(at: clock.now())
        #expect(waited.batches.isEmpty && !waited.isFinished && waited.deadline == nil)
        #expect(m.closeInput(at: clock.now()).isFinished)
        #expect(m.isFinished && !m.isAcceptingSources)

        // Closed from the start (today's fixed inputs) with no source: nothing to wait for.
        #expect(machine(sources: 0, batchSize: 1).isFinished)
    }

    @Test func closingWaitsForTheFramesStillQueued() {
        var m = openMachine(sources: 2, batchSize: 2, timeoutMicroseconds: -1)
        _ = m.frameArrived("a0", from: 0, at: clock.now())
        _ = m.sourceEnded(0, at: clock.now())
        #expect(!m.closeInput(at: clock.now()).isFinished, "a0 is queued and source 1 runs")
        let last = m.sourceRemoved(1, policy: .drain, at: clock.now())
        #expect(last.batches.map(contents) == [["a0"]])
        #expect(last.isFinished)
    }

    @Test func batchSizeGrowingAndShrinking() {
        var m = machine(sources: 3, batchSize: 2, timeoutMicroseconds: -1)
        _ = m.setBatchSize(3, at: clock.now())
        _ = m.frameArrived("a0", from: 0, at: clock.now())
        #expect(m.frameArrived("b0", from: 1, at: clock.now()).batches.isEmpty, "grown to 3: two frames are not full")
        let shrunk = m.setBatchSize(2, at: clock.now())
        #expect(shrunk.batches.map(contents) == [["a0", "b0"]], "the waiting batch is full at the new size")
        #expect(m.configuration.batchSize == 2)
        _ = m.setBatchSize(3, at: clock.now())
        _ = m.frameArrived("a1", from: 0, at: clock.now())
        _ = m.frameArrived("b1", from: 1, at: clock.now())
        #expect(m.frameArrived("c0", from: 2, at: clock.now()).batches.map(contents) == [["a1", "b1", "c0"]])
    }

    @Test func roundRobinFollowsIDsAcrossGapsAndRemovals() {
        var m = openMachine(sources: 0, batchSize: 4, timeoutMicroseconds: -1)
        for id in [3, 7, 12, 20] { _ = m.sourceAdded(id, at: clock.now()) }
        // Three of four ready, then a batch of two: served from the round-robin start.
        _ = m.frameArrived("p0", from: 3, at: clock.now())
        _ = m.frameArrived("q0", from: 7, at: clock.now())
        _ = m.frameArrived("r0", from: 12, at: clock.now())
        let first = m.setBatchSize(2, at: clock.now())
        #expect(first.batches.map(contents) == [["p0", "q0"]])
        // Source 3 leaves and 25 joins: the start moves on by id to 7, the source after 3, not
        // to whatever now sits where 7 used to be in the list.
        _ = m.sourceRemoved(3, policy: .drop, at: clock.now())
        _ = m.sourceAdded(25, at: clock.now())
        _ = m.setBatchSize(4, at: clock.now())
        _ = m.frameArrived("q1", from: 7, at: clock.now())
        _ = m.frameArrived("s0", from: 20, at: clock.now())
        let second = m.setBatchSize(2, at: clock.now())
        #expect(second.batches.map(contents) == [["q1", "r0"]])
        #expect(second.batches[0].entries.map(\.sourceID) == [7, 12])
        // Next the start is past 7: 12 has nothing, so 20 and 25 go before 7.
        _ = m.setBatchSize(4, at: clock.now())
        _ = m.frameArrived("q2", from: 7, at: clock.now())
        _ = m.frameArrived("t0", from: 25, at: clock.now())
        let third = m.setBatchSize(2, at: clock.now())
        #expect(third.batches.map(contents) == [["s0", "t0"]])
        #expect(m.queuedCount(of: 7) == 1)
    }

    /// Real-time streams with jitter: a batch waits for a late source while an early one already
    /// has its next frame. The waiting batch goes then, partial, and the early frame starts the next.
    @Test func aSourceWithItsNextFrameSendsTheBatchStillWaitingForALateOne() {
        var m = machine(sources: 3, timeoutMicroseconds: 33_000)
        _ = m.frameArrived("a0", from: 0, at: clock.now())
        clock.advance(byMicroseconds: 5_000)
        _ = m.frameArrived("b0", from: 1, at: clock.now())
        clock.advance(byMicroseconds: 26_000)  // 31 ms: c0 is late, the deadline not yet reached
        let overflow = m.sourceOverflowing(0, at: clock.now())
        #expect(overflow.batches.map(contents) == [["a0", "b0"]], "the batch goes without the late source")
        #expect(overflow.deadline == nil && m.totalQueued == 0)
        let next = m.frameArrived("a1", from: 0, at: clock.now())
        #expect(next.batches.isEmpty)
        #expect(next.deadline == clock.now().advanced(byNanoseconds: 33_000_000), "a1 starts the next batch's wait")
        clock.advance(byMicroseconds: 2_000)
        _ = m.frameArrived("c0", from: 2, at: clock.now())
        let full = m.frameArrived("b1", from: 1, at: clock.now())
        #expect(full.batches.map(contents) == [["a1", "b1", "c0"]], "the late frame goes in the next batch, nothing dropped")
    }

    @Test func anOverflowOfASourceWithNothingQueuedSendsNothing() {
        var m = machine(sources: 2, timeoutMicroseconds: 33_000)
        _ = m.frameArrived("a0", from: 0, at: clock.now())
        let decision = m.sourceOverflowing(1, at: clock.now())
        #expect(decision.batches.isEmpty)
        #expect(decision.deadline == clock.now().advanced(byNanoseconds: 33_000_000), "the batch keeps waiting for source 1")
    }

    /// 128 real-time streams, each frame ±3 ms off its 30-fps slot, phases spread over the
    /// period, the consumer always ready: a live source whose queue (one frame) is full first
    /// sends the waiting batch, and only drops if that did not make room — as the driver does.
    /// Nothing is dropped and no frame waits longer than the push timeout. (Without
    /// `sourceOverflowing` the same streams drop 577 of their 19 200 frames.)
    @Test func realTimeStreamsWithJitterLoseNoFrameAndWaitAtMostTheTimeout() {
        typealias Timed = StreamMuxerStateMachine<UInt64>  // a frame is its arrival time
        var m = Timed(configuration: .init(sourceCount: 128, batchSize: 128, pushTimeoutMicroseconds: 33_000))
        var random = SeededGenerator(seed: 7)
        let period = 33_333_333.0
        let phases = (0..<128).map { _ in Double.random(in: 0..<1, using: &random) * period }
        var arrivals: [(time: UInt64, source: Int)] = []
        for source in 0..<128 {
            for k in 0..<150 {  // 5 s
                let jitter = (Double.random(in: 0..<1, using: &random) * 2 - 1) * 3e6
                arrivals.append((UInt64(1e9 + phases[source] + Double(k) * period + jitter), source))
            }
        }
        arrivals.sort { $0.time < $1.time }
        var waits: [UInt64] = [], dropped = 0, deadline: MonotonicInstant?
        func take(_ decision: Timed.Decision, at time: UInt64) {
            for batch in decision.batches { waits += batch.entries.map { time - $0.element } }
            deadline = decision.deadline
        }
        for arrival in arrivals {
            while let due = deadline, due.nanoseconds <= arrival.time { take(m.timeoutExpired(at: due), at: due.nanoseconds) }
            let now = MonotonicInstant(nanoseconds: arrival.time)
            if m.queuedCount(of: arrival.source) > 0 { take(m.sourceOverflowing(arrival.source, at: now), at: arrival.time) }
            if m.dropOldest(of: arrival.source) != nil { dropped += 1 }
            take(m.frameArrived(arrival.time, from: arrival.source, at: now), at: arrival.time)
        }
        #expect(dropped == 0)
        #expect(waits.count + m.totalQueued == arrivals.count)
        #expect((waits.max() ?? 0) <= 33_000_000, "longest wait \(Double(waits.max() ?? 0) / 1e6) ms")
    }
}
