import Foundation
import Testing
@testable import Tributary

/// The muxer's driver: back-pressure for files, dropping for live sources, memory bounded either way.
@Suite struct StreamMuxerTests {
    func frame(_ source: Int, _ number: Int) -> Frame {
        Frame(sourceID: source, frameNumber: number, pts: UInt64(number), image: ImageBuffer.allocateHost(width: 4, height: 4))
    }

    @Test(.runningTimeLimit(minutes: 1))
    func aFileSourceBlocksWhenNobodyTakesBatches() throws {
        let ledger = FrameLedger(sourceCount: 1)
        let configuration = StreamMuxerConfiguration(batchSize: 1, width: 4, height: 4, batchedPushTimeoutMicroseconds: -1,
                                                     queueCapacityPerSource: 3)
        let muxer = StreamMuxer(configuration: configuration, sourceCount: 1, clock: ManualClock(), ledger: ledger)
        let pushed = Locked(0)
        let producer = WorkerThread(name: "producer") {
            for n in 0..<20 { muxer.push(frame(0, n), live: false); pushed.withValue { $0 += 1 } }
            muxer.sourceEnded(0)
        }
        usleep(300_000)
        // Each frame is a full batch; with two batches pending the producer waits.
        #expect(pushed.withValue { $0 } == configuration.maxPendingBatches)
        var numbers: [Int] = []
        while let batch = muxer.nextBatch() { numbers += batch.frames.map(\.frameNumber) }
        producer.join()
        #expect(numbers == Array(0..<20))
        #expect(ledger.counts(of: 0).delivered == 20)
    }

    @Test func aLiveSourceNeverBlocksAndCountsWhatItDrops() {
        let ledger = FrameLedger(sourceCount: 1)
        let configuration = StreamMuxerConfiguration(batchSize: 1, width: 4, height: 4, batchedPushTimeoutMicroseconds: -1,
                                                     queueCapacityPerSource: 3)
        let muxer = StreamMuxer(configuration: configuration, sourceCount: 1, clock: ManualClock(), ledger: ledger)
        for n in 0..<20 { ledger.recordDecoded(source: 0); muxer.push(frame(0, n), live: true) }
        muxer.sourceEnded(0)
        var numbers: [Int] = []
        while let batch = muxer.nextBatch() { numbers += batch.frames.map(\.frameNumber) }
        // The newest frames survive; every frame is either delivered or dropped.
        #expect(numbers == Array((20 - configuration.maxPendingBatches)..<20))
        let counts = ledger.counts(of: 0)
        #expect(counts.delivered == numbers.count)
        #expect(counts.dropped[DropReason.liveQueueFull.rawValue] == 20 - numbers.count)
        #expect(counts.unaccounted == 0)
    }

    /// A live source that has its next frame while the batch still waits for a late source sends
    /// that batch rather than dropping: with no timeout (−1) the batch would otherwise wait for
    /// ever and the live source lose a frame at each new one.
    @Test(.runningTimeLimit(minutes: 1))
    func aLiveSourceAheadOfALateOneSendsTheWaitingBatchInsteadOfDropping() {
        let ledger = FrameLedger(sourceCount: 2)
        let configuration = StreamMuxerConfiguration(batchSize: 2, width: 4, height: 4, batchedPushTimeoutMicroseconds: -1)
        let muxer = StreamMuxer(configuration: configuration, sourceCount: 2, clock: ManualClock(), ledger: ledger)
        for n in 0..<2 { ledger.recordDecoded(source: 0); muxer.push(frame(0, n), live: true) }
        #expect(muxer.nextBatch()?.frames.map(\.frameNumber) == [0], "frame 0 went alone when frame 1 came")
        ledger.recordDecoded(source: 1)
        muxer.push(frame(1, 0), live: true)
        #expect(muxer.nextBatch()?.frames.map { "\($0.sourceID):\($0.frameNumber)" } == ["0:1", "1:0"])
        for source in 0..<2 { #expect(ledger.counts(of: source).dropped.isEmpty && ledger.counts(of: source).unaccounted == 0) }
    }

    @Test func aPartialBatchGoesAfterTheTimeoutOnTheRealClock() {
        let ledger = FrameLedger(sourceCount: 2)
        let configuration = StreamMuxerConfiguration(batchSize: 2, width: 4, height: 4, batchedPushTimeoutMicroseconds: 20_000)
        let muxer = StreamMuxer(configuration: configuration, sourceCount: 2, ledger: ledger)
        muxer.push(frame(0, 0), live: false)
        let clock = MonotonicClock()
        let start = clock.now()
        let batch = muxer.nextBatch()
        let waited = Double(clock.now().nanoseconds(since: start)) / 1e6
        #expect(batch?.frames.map(\.sourceID) == [0])
        #expect(waited >= 15, "waited \(waited) ms for a 20 ms timeout")
    }

    /// Counts the frames alive: the muxer must let go of every batch it hands out, also when the
    /// producer is always ahead of a slow consumer (a retained backlog once grew without bound).
    final class CountedMemory: ImageMemoryOwner, @unchecked Sendable {
        static let alive = Locked(0)
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 16)
        init() { Self.alive.withValue { $0 += 1 } }
        deinit { bytes.deallocate(); Self.alive.withValue { $0 -= 1 } }
    }

    @Test(.runningTimeLimit(minutes: 1))
    func framesTakenDownstreamAreReleasedWhileTheProducerStaysAhead() {
        let ledger = FrameLedger(sourceCount: 1)
        let configuration = StreamMuxerConfiguration(batchSize: 1, width: 4, height: 4, batchedPushTimeoutMicroseconds: -1,
                                                     queueCapacityPerSource: 2)
        let muxer = StreamMuxer(configuration: configuration, sourceCount: 1, clock: ManualClock(), ledger: ledger)
        let producer = WorkerThread(name: "producer") {
            for n in 0..<60 {
                let memory = CountedMemory()
                let image = ImageBuffer(width: 4, height: 4, bytesPerRow: 16, storage: .host(memory.bytes), owner: memory)
                muxer.push(Frame(sourceID: 0, frameNumber: n, pts: nil, image: image), live: false)
            }
            muxer.sourceEnded(0)
        }
        var mostAlive = 0
        var taken = 0
        while let batch = muxer.nextBatch() {
            taken += batch.frames.count
            usleep(2_000)  // a slow consumer: the producer is always ahead
            mostAlive = max(mostAlive, CountedMemory.alive.withValue { $0 })
        }
        producer.join()
        #expect(taken == 60)
        // Pending batches, the producer's frame in hand and the batch being consumed.
        #expect(mostAlive <= configuration.maxPendingBatches + configuration.queueCapacityPerSource + 2, "at most \(mostAlive) frames alive")
    }

    // MARK: Sources that come and go

    /// Batch size 1 or more, waiting forever for a full batch (so nothing here depends on time).
    func dynamicConfiguration(batchSize: Int, queueCapacity: Int = 3, open: Bool = true) -> StreamMuxerConfiguration {
        StreamMuxerConfiguration(batchSize: batchSize, width: 4, height: 4, batchedPushTimeoutMicroseconds: -1,
                                 queueCapacityPerSource: queueCapacity, acceptsNewSources: open)
    }

    func sourcesAndNumbers(_ batch: FrameBatch?) -> [[Int]] { batch?.frames.map { [$0.sourceID, $0.frameNumber] } ?? [] }

    @Test(.runningTimeLimit(minutes: 1))
    func aReAddedCameraGetsANewIDAndItsFramesAreNumberedFromZero() throws {
        let ledger = FrameLedger(sourceCount: 2)
        let muxer = StreamMuxer(configuration: dynamicConfiguration(batchSize: 1), sourceCount: 1, clock: ManualClock(), ledger: ledger)
        for n in 0..<3 {
            muxer.push(frame(0, n), live: false)
            #expect(sourcesAndNumbers(muxer.nextBatch()) == [[0, n]])
        }
        #expect(muxer.removeSource(id: 0, policy: .drop) == 0)
        #expect(throws: StreamMuxerError.sourceIDNotNew(0, highestSoFar: 0)) { try muxer.addSource(id: 0) }
        // The camera reconnects: a new source (a new `VideoSource` numbers from 0) under a new id.
        try muxer.addSource(id: 1)
        #expect(muxer.sourceIDs == [1])
        for n in 0..<2 {
            muxer.push(frame(1, n), live: false)
            let batch = muxer.nextBatch()
            #expect(sourcesAndNumbers(batch) == [[1, n]])
            #expect(batch?.meta.frames.map(\.frameNumber) == [n])
        }
        muxer.closeInput()
        muxer.sourceEnded(1)
        #expect(muxer.nextBatch() == nil)
        #expect(ledger.counts(of: 0).delivered == 3)
        #expect(ledger.counts(of: 1).delivered == 2)
    }

    @Test(.runningTimeLimit(minutes: 1))
    func removingWithDropCountsTheQueuedFramesInTheLedger() {
        let ledger = FrameLedger(sourceCount: 2)
        let muxer = StreamMuxer(configuration: dynamicConfiguration(batchSize: 2, open: false), sourceCount: 2,
                                clock: ManualClock(), ledger: ledger)
        for n in 0..<3 { ledger.recordDecoded(source: 0); muxer.push(frame(0, n), live: false) }
        #expect(muxer.removeSource(id: 0, policy: .drop) == 3)
        #expect(muxer.removeSource(id: 0, policy: .drop) == 0, "already gone")
        let counts = ledger.counts(of: 0)
        #expect(counts.dropped == [DropReason.sourceRemoved.rawValue: 3])
        #expect(counts.unaccounted == 0)
        // Source 1 alone is now a full batch.
        muxer.push(frame(1, 0), live: false)
        #expect(sourcesAndNumbers(muxer.nextBatch()) == [[1, 0]])
        muxer.sourceEnded(1)
        #expect(muxer.nextBatch() == nil, "closed from the start: finished when the last source ended")
    }

    @Test(.runningTimeLimit(minutes: 1))
    func removingWithDrainLetsTheQueuedFramesGoOut() {
        let ledger = FrameLedger(sourceCount: 2)
        let muxer = StreamMuxer(configuration: dynamicConfiguration(batchSize: 2, open: false), sourceCount: 2,
                                clock: ManualClock(), ledger: ledger)
        muxer.push(frame(0, 0), live: false)
        muxer.push(frame(0, 1), live: false)
        #expect(muxer.removeSource(id: 0, policy: .drain) == 0)
        muxer.push(frame(0, 2), live: false)  // after removal: dropped, not queued
        muxer.push(frame(1, 0), live: false)
        #expect(sourcesAndNumbers(muxer.nextBatch()) == [[0, 0], [1, 0]])
        muxer.push(frame(1, 1), live: false)
        #expect(sourcesAndNumbers(muxer.nextBatch()) == [[0, 1], [1, 1]])
        #expect(muxer.sourceIDs == [1])
        muxer.sourceEnded(1)
        #expect(muxer.nextBatch() == nil)
        #expect(ledger.counts(of: 0).delivered == 2)
        #expect(ledger.counts(of: 0).dropped == [DropReason.sourceRemoved.rawValue: 1])
    }

    @Test(.runningTimeLimit(minutes: 1))
    func removingASourceWakesItsBlockedProducer() {
        let ledger = FrameLedger(sourceCount: 2)
        let muxer = StreamMuxer(configuration: dynamicConfiguration(batchSize: 2, queueCapacity: 1, open: false), sourceCount: 2,
                                clock: ManualClock(), ledger: ledger)
        muxer.push(frame(0, 0), live: false)  // waits for source 1, which sends nothing
        let returned = Locked(false)
        let producer = WorkerThread(name: "producer") {
            muxer.push(frame(0, 1), live: false)  // its queue is full: blocks
            returned.withValue { $0 = true }
        }
        usleep(200_000)
        #expect(!returned.withValue { $0 }, "the file source waits while its queue is full")
        #expect(muxer.removeSource(id: 0, policy: .drop) == 1)
        producer.join()
        #expect(ledger.counts(of: 0).dropped == [DropReason.sourceRemoved.rawValue: 2], "the queued frame and the one in hand")
        #expect(muxer.sourceIDs == [1])
    }

    @Test(.runningTimeLimit(minutes: 1))
    func anOpenMuxerWaitsWithNoSourcesAndFinishesAfterClose() throws {
        let ledger = FrameLedger(sourceCount: 1)
        let muxer = StreamMuxer(configuration: dynamicConfiguration(batchSize: 1), sourceCount: 0, clock: ManualClock(), ledger: ledger)
        let taken = Locked<[[Int]]>([])
        let done = Locked(false)
        let consumer = WorkerThread(name: "consumer") {
            while let batch = muxer.nextBatch() { taken.withValue { $0 += sourcesAndNumbers(batch) } }
            done.withValue { $0 = true }
        }
        usleep(100_000)
        #expect(!done.withValue { $0 }, "no source yet: waiting, not finished")
        try muxer.addSource(id: 0)
        muxer.push(frame(0, 0), live: false)
        muxer.removeSource(id: 0, policy: .drain)
        usleep(100_000)
        #expect(taken.withValue { $0 } == [[0, 0]])
        #expect(!done.withValue { $0 }, "the last source left: waiting for the next one")
        muxer.closeInput()
        consumer.join()
        #expect(done.withValue { $0 })
        #expect(throws: StreamMuxerError.inputClosed(sourceID: 1)) { try muxer.addSource(id: 1) }
    }

    @Test func aMuxerOfFixedInputsRefusesNewSources() {
        let muxer = StreamMuxer(configuration: dynamicConfiguration(batchSize: 1, open: false), sourceCount: 1,
                                clock: ManualClock(), ledger: FrameLedger(sourceCount: 2))
        #expect(throws: StreamMuxerError.inputClosed(sourceID: 1)) { try muxer.addSource(id: 1) }
        let empty = StreamMuxer(configuration: dynamicConfiguration(batchSize: 1, open: false), sourceCount: 0,
                                clock: ManualClock(), ledger: FrameLedger(sourceCount: 0))
        #expect(empty.nextBatch() == nil, "closed with no sources: finished at once")
    }

    @Test(.runningTimeLimit(minutes: 1))
    func shrinkingTheBatchSizeReleasesAWaitingBatch() {
        let muxer = StreamMuxer(configuration: dynamicConfiguration(batchSize: 2, open: false), sourceCount: 2,
                                clock: ManualClock(), ledger: FrameLedger(sourceCount: 2))
        muxer.push(frame(0, 0), live: false)
        muxer.setBatchSize(1)
        #expect(muxer.batchSize == 1)
        #expect(sourcesAndNumbers(muxer.nextBatch()) == [[0, 0]], "waits forever at size 2")
    }

    @Test func abortDropsTheQueuesOfAddedSourcesAndFinishesAnOpenMuxer() throws {
        let ledger = FrameLedger(sourceCount: 2)
        let muxer = StreamMuxer(configuration: dynamicConfiguration(batchSize: 2), sourceCount: 0, clock: ManualClock(), ledger: ledger)
        try muxer.addSource(id: 0)
        try muxer.addSource(id: 1)
        muxer.push(frame(0, 0), live: false)
        muxer.push(frame(0, 1), live: false)
        muxer.abort()
        #expect(muxer.nextBatch() == nil)
        #expect(ledger.counts(of: 0).dropped[DropReason.shutdown.rawValue] == 2)
    }
}
