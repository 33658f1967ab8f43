import Foundation
import Logging
import Testing
@testable import Tributary
import TributarySample

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
    @Test(.runningTimeLimit(minutes: 5))
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

/// INT8 (network-mode=1) against FP32 on the same real frames (not the calibration frames).
@Suite(.serialized) struct INT8DetectorTests {
    @Test(.runningTimeLimit(minutes: 5))
    func int8AgreesWithFP32() throws {
        try TestMedia.requireMedia()
        let logger = Logger(label: "test")
        let fp32Configuration = try InferConfiguration.load(path: DetectorTests.configPath)
        var int8Configuration = fp32Configuration
        int8Configuration.networkMode = 1
        let int8Path = try #require(int8Configuration.int8OnnxFile)
        #expect(FileManager.default.fileExists(atPath: int8Path), "set-up makes \(int8Path)")
        let int8 = try Detector.load(configuration: int8Configuration, logger: logger)
        let configuration = PipelineConfiguration(
            inputs: [try SourceURI(TestMedia.h264), try SourceURI(TestMedia.avi)],
            muxer: StreamMuxerConfiguration(batchSize: 2, width: 640, height: 480, batchedPushTimeoutMicroseconds: -1),
            tilerWidth: 640, tilerHeight: 240, outputs: [.discard], perfIntervalNanoseconds: 0)
        let pipeline = try Pipeline(configuration: configuration, detector: try Detector.load(configuration: fp32Configuration, logger: logger),
                                    logger: logger)
        var fp32Objects = 0, matched = 0, frames = 0, countsWithinOne = 0
        var failure: Error?
        pipeline.onBatch = { batch in
            guard frames < 48 else { return }
            do {
                let quantised = try int8.detect(batch.frames)
                for (meta, int8Detections) in zip(batch.meta.frames, quantised) {
                    frames += 1
                    if abs(meta.objects.count - int8Detections.count) <= 1 { countsWithinOne += 1 }
                    var used = Set<Int>()
                    for object in meta.objects {
                        fp32Objects += 1
                        let best = int8Detections.indices.filter { !used.contains($0) && int8Detections[$0].classID == object.classID }
                            .max { Clustering.iou(object.rect, int8Detections[$0].rect) < Clustering.iou(object.rect, int8Detections[$1].rect) }
                        if let best, Clustering.iou(object.rect, int8Detections[best].rect) >= 0.5 { matched += 1; used.insert(best) }
                    }
                }
            } catch { failure = error }
            if frames >= 48 { pipeline.requestStop(signal: SIGINT) }
        }
        _ = pipeline.run()
        #expect(failure == nil)
        #expect(frames >= 48 && fp32Objects > 100)
        let matchedShare = Double(matched) / Double(max(fp32Objects, 1))
        let countShare = Double(countsWithinOne) / Double(max(frames, 1))
        print("INT8 vs FP32: \(matched)/\(fp32Objects) FP32 detections matched (\(matchedShare)), counts within ±1 on \(countsWithinOne)/\(frames) frames")
        #expect(matchedShare >= 0.95)
        #expect(countShare >= 0.95)
    }
}
