import Foundation
import Logging
import Testing
@testable import Tributary

/// Several detection workers (each its own ONNX Runtime session) take turns on batches; the
/// batches must still reach the probe in order with the objects one worker would give them.
@Suite(.serialized) struct DetectionWorkersTests {
    struct Seen { var order: [String] = []; var objects: [String: [ObjectMeta]] = [:] }

    func run(workers: Int, batches: Int) throws -> (seen: Seen, stages: [String]) {
        let logger = Logger(label: "test")
        let detector = try Detector.load(configuration: try InferConfiguration.load(path: DetectorTests.configPath), logger: logger)
        var configuration = PipelineConfiguration(
            inputs: [try SourceURI(TestMedia.h264), try SourceURI(TestMedia.avi)],
            muxer: StreamMuxerConfiguration(batchSize: 2, width: 640, height: 480, batchedPushTimeoutMicroseconds: -1),
            tilerWidth: 640, tilerHeight: 240, outputs: [.discard], perfIntervalNanoseconds: 0)
        configuration.detectionWorkers = workers
        configuration.measureStages = true
        let pipeline = try Pipeline(configuration: configuration, detector: detector, logger: logger)
        var seen = Seen()
        var count = 0
        pipeline.probe = { batch in
            count += 1
            for frame in batch.meta.frames where count <= batches {
                let key = "s\(frame.sourceID)f\(frame.frameNumber)"
                seen.order.append(key)
                seen.objects[key] = frame.objects
            }
            if count == batches { pipeline.requestStop(signal: SIGINT) }
        }
        let outcome = pipeline.run()
        #expect(outcome.succeeded)
        return (seen, pipeline.stageReport())
    }

    @Test(.runningTimeLimit(minutes: 5))
    func twoWorkersKeepOrderAndResults() throws {
        try TestMedia.requireMedia()
        let one = try run(workers: 1, batches: 8)
        let two = try run(workers: 2, batches: 8)
        let expectedOrder = (0..<8).flatMap { ["s0f\($0)", "s1f\($0)"] }
        #expect(one.seen.order == expectedOrder)
        #expect(two.seen.order == expectedOrder, "batches leave the workers in order")
        var compared = 0
        for key in expectedOrder {
            let a = one.seen.objects[key] ?? [], b = two.seen.objects[key] ?? []
            #expect(a.count == b.count, "\(key): \(a.count) vs \(b.count) objects")
            for (x, y) in zip(a, b) {
                #expect(x.classID == y.classID && abs(x.confidence - y.confidence) < 1e-3 && Clustering.iou(x.rect, y.rect) > 0.99)
                compared += 1
            }
        }
        #expect(compared > 16, "vtest shows several people in every frame")
        // Stage times: both workers' inference is counted, one call per batch.
        let inference = try #require(two.stages.first { $0.hasPrefix("detect: inference") })
        let calls = inference.split(separator: " ", omittingEmptySubsequences: true).dropFirst(2).dropFirst(2).first
        #expect(calls.flatMap { Int($0) } ?? 0 >= 8, "\(inference)")
    }
}
