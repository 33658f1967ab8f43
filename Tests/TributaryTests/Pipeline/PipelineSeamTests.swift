import Foundation
import Logging
import Testing
@testable import Tributary

/// A source of frames made in memory: `frames` solid frames (then end-of-stream, or a failure
/// after `failAfter`), or endless until stopped. No GStreamer, no media.
final class InMemorySource: FrameSource, @unchecked Sendable {
    let id: Int
    let uri: SourceURI
    let isLive: Bool
    var frameRate: (numerator: Int, denominator: Int)? { (30, 1) }
    private let frames: Int?
    private let failAfter: Int?
    /// Stops delivering after this many frames and hangs until stopped (a frozen camera).
    private let stallAfter: Int?
    private let stopped = Locked(false)
    private let started = Locked(false)

    init(id: Int, uri: SourceURI, frames: Int?, failAfter: Int? = nil, live: Bool = false, stallAfter: Int? = nil) {
        self.id = id
        self.uri = uri
        self.frames = frames
        self.failAfter = failAfter
        self.isLive = live
        self.stallAfter = stallAfter
    }

    func start() { started.withValue { $0 = true } }
    func requestStop() { stopped.withValue { $0 = true } }

    func run(ledger: FrameLedger, times: StageTimes?, deliver: (Frame) -> Void) -> SourceEnd {
        precondition(started.withValue { $0 }, "run before start")
        var number = 0
        while frames.map({ number < $0 }) ?? true, !stopped.withValue({ $0 }) {
            if let failAfter, number == failAfter { return .failed(element: "in-memory", message: "failed after \(failAfter) frames") }
            if let stallAfter, number == stallAfter {
                while !stopped.withValue({ $0 }) { usleep(1000) }
                break
            }
            let image = ImageBuffer.allocateHost(width: 8, height: 4)
            image.withMutableHostView { $0.fill(RGBA(r: UInt8(id * 40 % 256), g: 0, b: 0)) }
            ledger.recordDecoded(source: id)
            deliver(Frame(sourceID: id, frameNumber: number, pts: UInt64(number) * 33_333_333, image: image))
            number += 1
            if frames == nil { usleep(1000) }  // endless: about a frame a millisecond
        }
        return .endOfStream
    }
}

/// An output stage that records what reaches it, and can fail at a given batch.
final class RecordingOutput: OutputStage, @unchecked Sendable {
    struct Recorded: Equatable { let sources: [Int]; let frameNumbers: [Int]; let shown: [Int] }
    let batches = Locked<[Recorded]>([])
    let frameRates = Locked<[Int]>([])
    let finished = Locked<[Bool]>([])
    var tap: (any TiledFrameTap)?
    var rtspURLs: [String] { [] }
    private let failAt: Int?
    /// At this batch one of its outputs fails alone (`OutputFailures`): the run goes on.
    private let outputFailsAt: Int?

    struct Failure: Error, Equatable { let batch: Int }

    init(failAt: Int? = nil, outputFailsAt: Int? = nil) {
        self.failAt = failAt
        self.outputFailsAt = outputFailsAt
    }

    func start(frameRate: (numerator: Int, denominator: Int)?) { frameRates.withValue { $0.append(frameRate?.numerator ?? 0) } }

    func output(_ batch: FrameBatch) throws {
        let count = batches.withValue { recorded -> Int in
            recorded.append(Recorded(sources: batch.frames.map(\.sourceID), frameNumbers: batch.frames.map(\.frameNumber),
                                     shown: batch.sourcesPresent))
            return recorded.count
        }
        if let failAt, count == failAt { throw Failure(batch: count) }
        if let outputFailsAt, count == outputFailsAt {
            throw OutputFailures([OutputFailure(target: "/full/out.mp4", message: "filesink0: No space left on the resource.")])
        }
    }

    func finish(failed: Bool) throws { finished.withValue { $0.append(failed) } }
}

/// The pipeline with its sources and output replaced (the seam): ordering, failures, sources
/// that come and go, and stop — without GStreamer, media or a model.
@Suite struct PipelineSeamTests {
    let logger = Logger(label: "test")

    /// A URI for a source whose frames are made in memory: only a name (it must exist to parse).
    static func placeholderURI() throws -> SourceURI { try SourceURI("/dev/null") }

    func configuration(inputs: Int, batchSize: Int, open: Bool = false) throws -> PipelineConfiguration {
        var configuration = PipelineConfiguration(
            inputs: try (0..<inputs).map { _ in try Self.placeholderURI() },
            muxer: StreamMuxerConfiguration(batchSize: batchSize, width: 8, height: 4, batchedPushTimeoutMicroseconds: -1,
                                            acceptsNewSources: open),
            outputs: [.discard], perfIntervalNanoseconds: 0)
        configuration.batchSizeFollowsSources = open
        return configuration
    }

    func pipeline(_ configuration: PipelineConfiguration, output: RecordingOutput,
                  source: @escaping @Sendable (Int, SourceURI) -> InMemorySource) throws -> Pipeline {
        try Pipeline(configuration: configuration, logger: logger, sources: { source($0, $1) }, output: output)
    }

    @Test(.runningTimeLimit(minutes: 1))
    func everyFrameReachesTheOutputOnceInOrder() throws {
        let output = RecordingOutput()
        let pipeline = try pipeline(configuration(inputs: 3, batchSize: 3), output: output) { InMemorySource(id: $0, uri: $1, frames: 50) }
        let outcome = pipeline.run()
        #expect(outcome.succeeded && outcome.batches == 50)
        let batches = output.batches.withValue { $0 }
        #expect(batches.count == 50)
        #expect(batches.allSatisfy { $0.sources == [0, 1, 2] && $0.shown == [0, 1, 2] })
        #expect(batches.enumerated().allSatisfy { index, batch in batch.frameNumbers == [index, index, index] })
        #expect(output.frameRates.withValue { $0 } == [30], "the frame rate reaches the output once, before its first batch")
        #expect(output.finished.withValue { $0 } == [false])
        for id in 0..<3 { #expect(outcome.ledger.counts(of: id) == FrameLedger.SourceCounts(decoded: 50, delivered: 50)) }
    }

    @Test(.runningTimeLimit(minutes: 1))
    func aFailingSourceEndsAloneAndTheOthersFinish() throws {
        let output = RecordingOutput()
        let pipeline = try pipeline(configuration(inputs: 2, batchSize: 2), output: output) { id, uri in
            InMemorySource(id: id, uri: uri, frames: 30, failAfter: id == 1 ? 5 : nil)
        }
        let outcome = pipeline.run()
        #expect(outcome.sourceFailures.map(\.source) == [1])
        #expect(outcome.sourceFailures.first?.description == "in-memory: failed after 5 frames (source 1: /dev/null)")
        #expect(outcome.ledger.counts(of: 0).delivered == 30, "source 0 loses nothing")
        #expect(outcome.ledger.counts(of: 1).delivered == 5)
        #expect(output.batches.withValue { $0 }.flatMap(\.sources).filter { $0 == 0 }.count == 30)
    }

    @Test(.runningTimeLimit(minutes: 1))
    func anOutputFailureStopsTheSourcesAndIsTheOutcomesError() throws {
        let output = RecordingOutput(failAt: 3)
        let pipeline = try pipeline(configuration(inputs: 2, batchSize: 2), output: output) { InMemorySource(id: $0, uri: $1, frames: nil) }
        let outcome = pipeline.run()  // endless sources: only the failure ends the run
        #expect(outcome.sinkFailure as? RecordingOutput.Failure == RecordingOutput.Failure(batch: 3))
        #expect(!outcome.succeeded && outcome.sourceFailures.isEmpty)
        #expect(output.batches.withValue { $0.count } == 3, "nothing reaches the output after its failure")
        #expect(output.finished.withValue { $0 } == [true])
        for id in 0..<2 { #expect(outcome.ledger.counts(of: id).unaccounted == 0, "\(outcome.ledger.counts(of: id))") }
    }

    @Test(.runningTimeLimit(minutes: 1))
    func anOutputThatFailsAloneIsToldAndTheRunGoesOnToTheEnd() throws {
        let output = RecordingOutput(outputFailsAt: 4)
        let pipeline = try pipeline(configuration(inputs: 2, batchSize: 2), output: output) { InMemorySource(id: $0, uri: $1, frames: 40) }
        let told = Locked<[String]>([])
        pipeline.onEvent = { event in if case .outputFailed(let failure) = event { told.withValue { $0.append(failure.description) } } }
        let outcome = pipeline.run()
        let expected = "filesink0: No space left on the resource. (output /full/out.mp4)"
        #expect(told.withValue { $0 } == [expected], "said once, as it happened")
        #expect(outcome.outputFailures.map(\.description) == [expected])
        #expect(outcome.sinkFailure == nil && outcome.sourceFailures.isEmpty)
        #expect(!outcome.succeeded, "a run that lost an output does not succeed (exit 1)")
        #expect(output.batches.withValue { $0.count } == 40, "every batch still goes out")
        #expect(output.finished.withValue { $0 } == [false], "the output is finished normally: the others finalise their files")
        for id in 0..<2 { #expect(outcome.ledger.counts(of: id) == FrameLedger.SourceCounts(decoded: 40, delivered: 40)) }
    }

    @Test(.runningTimeLimit(minutes: 1))
    func sourcesAddedAndRemovedChangeTheBatchesAndTheGrid() throws {
        let output = RecordingOutput()
        let pipeline = try pipeline(configuration(inputs: 0, batchSize: 1, open: true), output: output) { InMemorySource(id: $0, uri: $1, frames: nil) }
        let run = BackgroundRun(pipeline)
        func batchesNow() -> Int { output.batches.withValue { $0.count } }
        let a = try pipeline.addSource(try Self.placeholderURI(), cameraID: "a")
        #expect(BackgroundRun.waitFor(timeout: 10) { batchesNow() > 10 })
        let b = try pipeline.addSource(try Self.placeholderURI(), cameraID: "b")
        #expect(BackgroundRun.waitFor(timeout: 10) { output.batches.withValue { $0.last?.sources == [a, b] } })
        pipeline.removeSource(a, policy: .drop)
        let afterRemoval = batchesNow()
        #expect(BackgroundRun.waitFor(timeout: 10) { batchesNow() > afterRemoval + 10 })
        pipeline.removeSource(b)
        pipeline.closeInput()
        let outcome = try #require(run.finish(timeout: 20))
        #expect(outcome.succeeded && outcome.interruptedBy == nil)

        let batches = output.batches.withValue { $0 }
        var grids: [[Int]] = []
        for batch in batches where grids.last != batch.shown { grids.append(batch.shown) }
        #expect(grids == [[a], [a, b], [b]], "\(grids)")
        #expect(batches.contains { $0.sources == [a, b] }, "the batch size followed to 2")
        #expect(batches.suffix(5).allSatisfy { $0.sources == [b] })
        for id in [a, b] { #expect(outcome.ledger.counts(of: id).unaccounted == 0, "\(outcome.ledger.counts(of: id))") }
    }

    /// nvmultiurisrcbin's `max-batch-size`: the batch follows the sources present up to the cap,
    /// and the sources beyond it are taken in later batches, none left behind.
    @Test(.runningTimeLimit(minutes: 1))
    func theBatchFollowsTheSourcesUpToItsMaximum() throws {
        let output = RecordingOutput()
        var configuration = try configuration(inputs: 0, batchSize: 1, open: true)
        configuration.maxBatchSize = 2
        let pipeline = try pipeline(configuration, output: output) { InMemorySource(id: $0, uri: $1, frames: nil) }
        let run = BackgroundRun(pipeline)
        let ids = try (0..<3).map { _ in try pipeline.addSource(try Self.placeholderURI()) }
        func seen() -> [Int: Int] {
            output.batches.withValue { batches in batches.suffix(60).flatMap(\.sources).reduce(into: [:]) { $0[$1, default: 0] += 1 } }
        }
        #expect(BackgroundRun.waitFor(timeout: 10) { output.batches.withValue { $0.count } > 100 && seen().keys.sorted() == ids })
        pipeline.closeInput()
        pipeline.requestStop(signal: 0)
        let outcome = try #require(run.finish(timeout: 20))
        let batches = output.batches.withValue { $0 }
        #expect(batches.allSatisfy { $0.sources.count <= 2 }, "never more than the cap")
        #expect(batches.contains { $0.sources.count == 2 }, "the batch grew to the cap")
        let counts = seen()
        #expect(ids.allSatisfy { (counts[$0] ?? 0) >= 20 }, "each of the 3 sources goes out, none starved: \(counts)")
        for id in ids { #expect(outcome.ledger.counts(of: id).unaccounted == 0, "\(outcome.ledger.counts(of: id))") }
    }

    /// What happens is told as events (the app prints the sample's lines for them): `**PERF`
    /// rates by stream id, a source's failure, the output's failure.
    @Test(.runningTimeLimit(minutes: 1))
    func theOwnerIsToldWhatHappensAsEvents() throws {
        var configuration = try configuration(inputs: 2, batchSize: 2)
        configuration.perfIntervalNanoseconds = 20_000_000
        let output = RecordingOutput(failAt: 40)
        let pipeline = try Pipeline(configuration: configuration, logger: logger, sources: { id, uri in
            InMemorySource(id: id, uri: uri, frames: nil, failAfter: id == 1 ? 30 : nil)
        }, output: output)
        let events = Locked<[String]>([])
        pipeline.onEvent = { event in
            let text: String
            switch event {
            case .liveSource(let id): text = "live \(id)"
            case .sourceFailed(let failure): text = "source failed \(failure.source)"
            case .sourceState(let status): text = "state \(status.sourceID) \(status.state.rawValue)"
            case .stageFailed(let error): text = "stage failed \(error)"
            case .outputFailed(let failure): text = "output failed \(failure.target)"
            case .perf(let rates): text = "perf \(rates.map(\.stream))"
            }
            events.withValue { $0.append(text) }
        }
        let outcome = pipeline.run()
        let told = events.withValue { $0 }
        #expect(told.contains("source failed 1"))
        #expect(told.contains("stage failed \(RecordingOutput.Failure(batch: 40))"))
        #expect(told.contains("perf [0, 1]"), "\(told)")
        #expect(!told.contains { $0.hasPrefix("live") }, "no live source")
        #expect(outcome.sourceFailures.map(\.source) == [1])
    }

    @Test(.runningTimeLimit(minutes: 1))
    func aStopEndsEndlessSourcesWithEveryFrameAccountedFor() throws {
        let output = RecordingOutput()
        let pipeline = try pipeline(configuration(inputs: 3, batchSize: 3), output: output) { InMemorySource(id: $0, uri: $1, frames: nil) }
        let run = BackgroundRun(pipeline)
        #expect(BackgroundRun.waitFor(timeout: 10) { output.batches.withValue { $0.count } > 20 })
        pipeline.requestStop(signal: SIGTERM)
        let outcome = try #require(run.finish(timeout: 20))
        #expect(outcome.interruptedBy == SIGTERM && outcome.sourceFailures.isEmpty)
        #expect(output.finished.withValue { $0 } == [false], "the output is finalised after a stop")
        for id in 0..<3 { #expect(outcome.ledger.counts(of: id).unaccounted == 0, "\(outcome.ledger.counts(of: id))") }
    }

    @Test(.runningTimeLimit(minutes: 1))
    func aLiveSourceThatFreezesIsRebuiltAndItsFrameNumbersContinue() throws {
        var configuration = try configuration(inputs: 2, batchSize: 2)
        configuration.muxer.batchedPushTimeoutMicroseconds = 20_000
        var policy = SourceRecoveryPolicy(reconnectIntervalSeconds: 0.3)
        policy.initialBackoffNanoseconds = 100_000_000
        configuration.recovery = policy
        let output = RecordingOutput()
        let builds = Locked<[Int: Int]>([:])
        let pipeline = try pipeline(configuration, output: output) { id, uri in
            // Source 0 is a camera that freezes after 20 frames the first time; source 1 a file.
            let build = builds.withValue { b -> Int in defer { b[id, default: 0] += 1 }; return b[id, default: 0] }
            return InMemorySource(id: id, uri: uri, frames: nil, live: id == 0, stallAfter: id == 0 && build == 0 ? 20 : nil)
        }
        let states = Locked<[String]>([])
        pipeline.onEvent = { event in
            if case .sourceState(let status) = event, status.sourceID == 0 { states.withValue { $0.append(status.state.rawValue) } }
        }
        let run = BackgroundRun(pipeline)
        let recovered = BackgroundRun.waitFor(timeout: 10) { pipeline.sourceStatuses.first?.reconnects == 1 }
        let numbersAfter = BackgroundRun.waitFor(timeout: 10) {
            output.batches.withValue { $0.flatMap { zip($0.sources, $0.frameNumbers).filter { $0.0 == 0 }.map(\.1) } }.contains(25)
        }
        pipeline.requestStop(signal: SIGINT)
        let outcome = try #require(run.finish(timeout: 20))
        #expect(recovered)
        #expect(numbersAfter)
        #expect(builds.withValue { $0 } == [0: 2, 1: 1], "the camera rebuilt once, the file never")
        #expect(states.withValue { $0 }.starts(with: ["streaming", "stalled", "backing-off", "connecting", "streaming"]), "\(states.withValue { $0 })")
        let numbers = output.batches.withValue { $0.flatMap { zip($0.sources, $0.frameNumbers).filter { $0.0 == 0 }.map(\.1) } }
        // A live source's frames may be dropped when its queue is full (counted in the ledger): the
        // numbers that arrive rise strictly — no restart from 0 after the rebuild, none repeated.
        #expect(zip(numbers, numbers.dropFirst()).allSatisfy { $0 < $1 } && numbers.contains { $0 >= 20 },
                "frame numbers continue across the rebuild: \(numbers.count) frames, first \(numbers.prefix(3)), last \(numbers.suffix(3))")
        let camera0 = outcome.ledger.counts(of: 0)
        #expect(camera0.delivered == numbers.count && camera0.decoded == numbers.count + camera0.droppedTotal)
        #expect(outcome.sourceFailures.isEmpty)
        for id in 0..<2 { #expect(outcome.ledger.counts(of: id).unaccounted == 0) }
        let camera = outcome.ledger.counts(of: 0)
        #expect(camera.reconnects == 1 && camera.gapNanoseconds >= 300_000_000, "the ledger counts the reconnect and its gap (≥ the 0.3 s stall): \(camera)")
        #expect(outcome.ledger.counts(of: 1).reconnects == 0)
    }
}
