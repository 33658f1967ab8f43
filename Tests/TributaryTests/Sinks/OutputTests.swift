import Foundation
import Logging
import Testing
@testable import Tributary
import TributarySample

/// Frame saving and RTSP out, end to end.
@Suite(.serialized) struct OutputTests {
    /// The shipped config with the detector running only every 30th batch: exactly the frames the
    /// saver looks at with one source, so a debug build gets through the whole sample quickly.
    func everyThirtiethFrameConfig(in folder: URL) throws -> String {
        var text = try String(contentsOfFile: TestMedia.path("configs/yolov3_tiny_pgie_config.txt"), encoding: .utf8)
        text = text.replacingOccurrences(of: "../models/", with: TestMedia.path("models") + "/")
            .replacingOccurrences(of: "\ninterval=0\n", with: "\ninterval=29\n")
        let path = folder.appendingPathComponent("every30.txt").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test(.runningTimeLimit(minutes: 4))
    func savesFramesAsTheSampleDoes() throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = try everyThirtiethFrameConfig(in: folder)
        let target = folder.appendingPathComponent("frames").path
        let arguments = ["-i", TestMedia.h264, "--no-display", "-s", "-c", config, "--width", "1280", "--height", "720",
                         "--tiler-width", "640", "--tiler-height", "360", "--save-frames", target]
        let result = try runProcess(TestMedia.appBinary, arguments, timeout: 200)
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains("Frames will be saved in  \(target)"))
        let saved = try FileManager.default.contentsOfDirectory(atPath: target + "/stream_0").sorted()
        #expect(!saved.isEmpty, "the sample has objects of confidence 0.3–0.4 on frames that are multiples of 30")
        for name in saved {
            #expect(name.hasPrefix("frame_") && name.hasSuffix(".jpg"))
            #expect(Int(name.dropFirst(6).dropLast(4)).map { $0 % 30 == 0 } == true, "\(name) is a multiple of 30")
        }
        let info = try discover(target + "/stream_0/" + saved[0])
        #expect(info.contains("JPEG") && info.contains("Width: 1280") && info.contains("Height: 720"), "\(info)")

        // The folder now exists: a second run refuses it with the sample's message.
        let again = try runProcess(TestMedia.appBinary, arguments, timeout: 30)
        #expect(again.status != 0)
        #expect(again.standardError.contains("The output folder \(target) already exists. Please remove it first."))
    }

    @Test func theCaptionIsTheSamples() {
        let object = ObjectMeta(classID: 0, label: "person", confidence: 0.3456, rect: Rect(left: 0, top: 0, width: 1, height: 1), detectorID: 1)
        #expect(SampleFrameSaving.caption(for: object) == "person,C=0.35")
    }

    @Test(.runningTimeLimit(minutes: 2))
    func servesTheTiledStreamOverRTSP() throws {
        try TestMedia.requireMedia()
        let configuration = PipelineConfiguration(
            inputs: [try SourceURI(TestMedia.h264), try SourceURI(TestMedia.avi)],
            muxer: StreamMuxerConfiguration(batchSize: 2, width: 320, height: 240), tilerWidth: 640, tilerHeight: 240,
            outputs: [.rtsp(address: "127.0.0.1", port: 0)], fileLoop: true, perfIntervalNanoseconds: 0)
        let pipeline = try Pipeline(configuration: configuration, logger: Logger(label: "test"))
        let url = try #require(pipeline.rtspURLs.first)
        #expect(url.hasPrefix("rtsp://127.0.0.1:") && url.hasSuffix("/ds-test"))
        let run = BackgroundRun(pipeline)
        // A real client: GStreamer's discoverer plays the stream over RTSP and reports what it got.
        let info = try discover(url)
        pipeline.requestStop(signal: SIGINT)
        let outcome = run.finish(timeout: 30)
        #expect(info.contains("H.264"), "\(info)")
        #expect(info.contains("Width: 640") && info.contains("Height: 240"), "\(info)")
        #expect(outcome?.sinkFailure == nil)
    }

    /// Two MP4 outputs, one of them on a device that is always full (`/dev/full`): that one fails
    /// alone, once, naming it; the other is written to the end and plays; every frame is delivered.
    @Test(.runningTimeLimit(minutes: 2))
    func anOutputThatFailsStopsAloneAndTheOtherIsWrittenToTheEnd() throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let good = folder.appendingPathComponent("good.mp4").path
        let configuration = PipelineConfiguration(
            inputs: [try SourceURI(TestMedia.h264)], muxer: StreamMuxerConfiguration(batchSize: 1, width: 320, height: 240),
            tilerWidth: 320, tilerHeight: 240, outputs: [.mp4(path: "/dev/full"), .mp4(path: good)], perfIntervalNanoseconds: 0)
        let pipeline = try Pipeline(configuration: configuration, logger: Logger(label: "test"))
        let told = Locked<[OutputFailure]>([])
        pipeline.onEvent = { event in if case .outputFailed(let failure) = event { told.withValue { $0.append(failure) } } }
        let outcome = pipeline.run()
        #expect(told.withValue { $0 } == outcome.outputFailures)
        #expect(outcome.outputFailures.map(\.target) == ["/dev/full"], "\(outcome.outputFailures)")
        #expect(outcome.outputFailures.first?.message.contains("No space left") == true, "\(outcome.outputFailures)")
        #expect(outcome.sinkFailure == nil && !outcome.succeeded)
        #expect(outcome.ledger.counts(of: 0) == FrameLedger.SourceCounts(decoded: 795, delivered: 795))
        let info = try discover(good)
        #expect(info.contains("H.264") && info.contains("Duration: 0:01:19"), "the other output has every frame (79.5 s): \(info)")
    }
}
