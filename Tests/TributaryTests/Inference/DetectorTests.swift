import Foundation
import Logging
import Testing
@testable import Tributary

/// The detector on real frames with the real model, against an independent Python reference.
@Suite(.serialized) struct DetectorTests {
    static var configPath: String { TestMedia.path("configs/yolov3_tiny_pgie_config.txt") }
    let logger = Logger(label: "test")

    func loadDetector(interval: Int = 0) throws -> Detector {
        var configuration = try InferConfiguration.load(path: Self.configPath)
        configuration.interval = interval
        return try Detector.load(configuration: configuration, logger: logger)
    }

    /// Runs two sources through the pipeline with the detector, writes the first `perSource`
    /// frames of each (raw RGBA) and their detections for the reference to check.
    @Test(.timeLimit(.minutes(5)))
    func matchesAnIndependentReferenceOnRealFrames() throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let perSource = 12
        let configuration = PipelineConfiguration(
            inputs: [try SourceURI(TestMedia.h264), try SourceURI(TestMedia.avi)],
            muxer: StreamMuxerConfiguration(batchSize: 2, width: 640, height: 480, batchedPushTimeoutMicroseconds: -1),
            tilerWidth: 640, tilerHeight: 240, outputs: [.discard], perfIntervalNanoseconds: 0)
        let pipeline = try Pipeline(configuration: configuration, detector: try loadDetector(), logger: logger)
        var frameList = "", detections = ""
        var dumped = 0
        var batchSizes: [Int] = []
        pipeline.onBatch = { batch in
            batchSizes.append(batch.frames.count)
            for (frame, meta) in zip(batch.frames, batch.meta.frames) where frame.frameNumber < perSource {
                let name = "s\(frame.sourceID)_f\(frame.frameNumber)"
                frame.image.withHostView { view in
                    var bytes = Data(capacity: view.width * view.height * 4)
                    for y in 0..<view.height { bytes.append(contentsOf: view.row(y)) }
                    try? bytes.write(to: folder.appendingPathComponent(name + ".rgba"))
                }
                frameList += "\(name) \(frame.image.width) \(frame.image.height)\n"
                for o in meta.objects {
                    detections += "\(name) \(o.classID) \(o.confidence) \(o.rect.left) \(o.rect.top) \(o.rect.width) \(o.rect.height)\n"
                }
                dumped += 1
            }
            if dumped >= 2 * perSource { pipeline.requestStop(signal: SIGINT) }
        }
        let outcome = pipeline.run()
        #expect(outcome.detectorFailure == nil)
        #expect(dumped == 2 * perSource)
        #expect(batchSizes.prefix(perSource).allSatisfy { $0 == 2 }, "the detector ran on batches of two")
        try frameList.write(to: folder.appendingPathComponent("frames.txt"), atomically: true, encoding: .utf8)
        try detections.write(to: folder.appendingPathComponent("swift.txt"), atomically: true, encoding: .utf8)
        let lines = detections.split(separator: "\n")
        #expect(lines.count >= 2 * perSource, "vtest shows several people in every frame")

        let result = try runProcess(TestMedia.path(".deps/venv/bin/python"),
                                    [TestMedia.path("tests/python/reference_detector.py"), folder.path, Self.configPath], timeout: 300)
        #expect(result.status == 0, "\(result.standardOutput)\(result.standardError)")
        #expect(result.standardOutput.contains("PASS"))
        print(result.standardOutput)
    }

    @Test func intervalSkipsBatches() throws {
        let detector = try loadDetector(interval: 2)
        let image = ImageBuffer.allocateHost(width: 64, height: 48)
        var withObjects: [Int] = []
        // A frame with a person-sized blob is not needed: the count of runs is visible in which
        // batches got metadata written at all, so mark them with a sentinel first.
        for index in 0..<7 {
            var batch = FrameBatch(batchID: index, frames: [Frame(sourceID: 0, frameNumber: index, pts: nil, image: image)])
            let sentinel = ObjectMeta(classID: -1, label: "sentinel", confidence: 1, rect: Rect(left: 0, top: 0, width: 1, height: 1), detectorID: 0)
            batch.meta.frames[0].objects = [sentinel]
            try detector.process(&batch)
            if batch.meta.frames[0].objects.first?.label != "sentinel" { withObjects.append(index) }
        }
        #expect(withObjects == [0, 3, 6], "interval=2 runs on every third batch")
    }

    @Test func cocoClassesMapToTheSamplesFour() {
        func object(_ label: String) -> ObjectMeta {
            ObjectMeta(classID: 0, label: label, confidence: 1, rect: Rect(left: 0, top: 0, width: 1, height: 1), detectorID: 1)
        }
        let counts = SampleClass.counts(["person", "car", "truck", "bus", "bicycle", "motorcycle", "stop sign", "traffic light", "dog", "person"].map(object))
        #expect(counts[.person] == 2)
        #expect(counts[.vehicle] == 3)
        #expect(counts[.twoWheeler] == 2)
        #expect(counts[.roadSign] == 2)
    }
}
