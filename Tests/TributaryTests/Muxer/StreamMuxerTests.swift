import Foundation
import Testing
@testable import Tributary

/// The muxer's driver: back-pressure for files, dropping for live sources, memory bounded either way.
@Suite struct StreamMuxerTests {
    func frame(_ source: Int, _ number: Int) -> Frame {
        Frame(sourceID: source, frameNumber: number, pts: UInt64(number), image: ImageBuffer.allocateHost(width: 4, height: 4))
    }

    @Test(.timeLimit(.minutes(1)))
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

    @Test(.timeLimit(.minutes(1)))
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
}
