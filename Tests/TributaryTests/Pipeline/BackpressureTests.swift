import Foundation
import Logging
import Testing
@testable import Tributary

/// A probe that takes 200 ms a batch (user code slower than the sources): what waits is bounded
/// — file sources slow down to the probe's pace and lose nothing, live sources keep their newest
/// frames and count the oldest dropped — so memory cannot grow with the run.
@Suite(.serialized) struct BackpressureTests {
    let logger = Logger(label: "test")

    /// Runs `pipeline` while sampling its frames in flight (decoded, not yet delivered or dropped)
    /// every 10 ms; stops it after `stopAfter` seconds if given. Returns the outcome and the most in flight.
    func run(_ pipeline: Pipeline, sources: Int, stopAfter: Double? = nil) -> (PipelineOutcome, Int) {
        let most = Locked(0), done = Locked(false)
        let sampler = WorkerThread(name: "sampler") {
            let start = Date()
            while !done.withValue({ $0 }) {
                let inFlight = (0..<sources).map { pipeline.ledger.counts(of: $0).unaccounted }.reduce(0, +)
                most.withValue { $0 = max($0, inFlight) }
                if let stopAfter, Date().timeIntervalSince(start) > stopAfter { pipeline.requestStop(signal: SIGINT) }
                usleep(10_000)
            }
        }
        let outcome = pipeline.run()
        done.withValue { $0 = true }
        sampler.join()
        return (outcome, most.withValue { $0 })
    }

    func configuration(inputs: Int) throws -> PipelineConfiguration {
        PipelineConfiguration(inputs: try (0..<inputs).map { _ in try PipelineSeamTests.placeholderURI() },
                              muxer: StreamMuxerConfiguration(batchSize: inputs, width: 8, height: 4, batchedPushTimeoutMicroseconds: 40_000),
                              outputs: [.discard], perfIntervalNanoseconds: 0)
    }

    @Test(.runningTimeLimit(minutes: 1))
    func fileSourcesWaitForASlowProbeAndLoseNothing() throws {
        let output = RecordingOutput()
        let pipeline = try Pipeline(configuration: configuration(inputs: 2), logger: logger,
                                    sources: { InMemorySource(id: $0, uri: $1, frames: 15) }, output: output)
        pipeline.probe = { _ in usleep(200_000) }
        let (outcome, inFlight) = run(pipeline, sources: 2)
        #expect(outcome.succeeded)
        for id in 0..<2 { #expect(outcome.ledger.counts(of: id) == FrameLedger.SourceCounts(decoded: 15, delivered: 15), "source \(id)") }
        // The sources made their frames as fast as they could, yet no more than a few waited at once.
        #expect(inFlight <= 8, "frames in flight at most \(inFlight)")
    }

    @Test(.runningTimeLimit(minutes: 1))
    func liveSourcesKeepTheNewestAndCountTheOldestDropped() throws {
        let output = RecordingOutput()
        let pipeline = try Pipeline(configuration: configuration(inputs: 2), logger: logger,
                                    sources: { InMemorySource(id: $0, uri: $1, frames: nil, live: true) }, output: output)
        pipeline.probe = { _ in usleep(200_000) }
        let (outcome, inFlight) = run(pipeline, sources: 2, stopAfter: 2.5)
        for id in 0..<2 {
            let counts = outcome.ledger.counts(of: id)
            // About a frame a millisecond in, five batches a second out: nearly all dropped, and said so.
            #expect(counts.dropped[DropReason.liveQueueFull.rawValue, default: 0] > 500, "\(counts)")
            #expect(counts.delivered >= 5 && counts.delivered <= 20, "\(counts)")
            #expect(counts.unaccounted == 0, "every frame accounted for: \(counts)")
        }
        #expect(inFlight <= 8, "frames in flight at most \(inFlight)")
    }

    /// `realTime`: files stand for cameras, so a late one drops its oldest frame (counted) as a
    /// live source does, instead of waiting as a file does.
    @Test(.runningTimeLimit(minutes: 1))
    func realTimeFileSourcesDropTheirOldestAsCamerasDo() throws {
        var configuration = try configuration(inputs: 2)
        configuration.realTime = true
        let pipeline = try Pipeline(configuration: configuration, logger: logger,
                                    sources: { InMemorySource(id: $0, uri: $1, frames: nil) }, output: RecordingOutput())
        pipeline.probe = { _ in usleep(200_000) }
        let (outcome, _) = run(pipeline, sources: 2, stopAfter: 2.5)
        for id in 0..<2 {
            let counts = outcome.ledger.counts(of: id)
            #expect(counts.dropped[DropReason.liveQueueFull.rawValue, default: 0] > 500, "\(counts)")
            #expect(counts.unaccounted == 0, "every frame accounted for: \(counts)")
        }
    }
}
