import Foundation
import Testing
@testable import Tributary

/// The `imagedata-multistream` binary as a user runs it: exit codes, messages, output files.
@Suite(.serialized) struct AppTests {
    @Test(arguments: ["/no/such/file.mp4", "nosuchscheme://camera/1"])
    func aBadURIFailsFastNamingIt(uri: String) throws {
        let result = try runProcess(TestMedia.appBinary, ["-i", uri, "--no-display"], timeout: 20)
        #expect(!result.timedOut)
        #expect(result.seconds < 5)
        #expect(result.status != 0)
        #expect(result.standardError.contains(uri), "stderr: \(result.standardError)")
    }

    /// `-i ""` is what the user gave wrong (exit 2), not the working directory as a file.
    @Test func anEmptyURIIsAUsageError() throws {
        let result = try runProcess(TestMedia.appBinary, ["-i", "", "--no-display"], timeout: 20)
        #expect(result.status == 2, "stderr: \(result.standardError)")
        #expect(result.standardError.contains("the URI is empty") && !result.standardError.contains("directory"), "\(result.standardError)")
    }

    /// `--process-per-gpu` shards over GPUs into one output each: without --gpus, or with
    /// --single-output, it is refused before anything starts.
    @Test(arguments: [["--process-per-gpu"], ["--process-per-gpu", "--gpus", "2", "--single-output"]])
    func processPerGPUNeedsGPUsAndSeparateOutputs(flags: [String]) throws {
        let result = try runProcess(TestMedia.appBinary, ["-i", TestMedia.h264, "--no-display"] + flags, timeout: 20)
        #expect(!result.timedOut && result.seconds < 5)
        #expect(result.status != 0)
        #expect(result.standardError.contains("--process-per-gpu"), "stderr: \(result.standardError)")
    }

    @Test func aFileThatIsNoVideoFailsWithTheElementAndURI() throws {
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let broken = folder.appendingPathComponent("broken.mp4").path
        try Data(repeating: 7, count: 4096).write(to: URL(fileURLWithPath: broken))
        let result = try runProcess(TestMedia.appBinary, ["-i", broken, "--no-display"], timeout: 20)
        #expect(!result.timedOut && result.seconds < 5)
        #expect(result.status == 1)
        #expect(result.standardError.contains("Error: "))
        #expect(result.standardError.contains(broken))
    }

    /// An MP4 cut short before its index (a copy that stopped, a crash of the writer): refused
    /// naming it, exit 1, the good input beside it in full.
    @Test func aTruncatedMP4IsRefusedNamingIt() throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let cut = folder.appendingPathComponent("cut.mp4").path
        try Data(try Data(contentsOf: URL(fileURLWithPath: TestMedia.h264)).prefix(3_000_000)).write(to: URL(fileURLWithPath: cut))
        let result = try runProcess(TestMedia.appBinary, ["-i", cut, TestMedia.avi, "--no-display", "--no-detector", "-s",
                                                          "--width", "320", "--height", "240"], timeout: 60)
        #expect(result.status == 1)
        #expect(result.standardError.contains("Error: ") && result.standardError.contains(cut), "\(result.standardError)")
        #expect(result.standardOutput.contains("source 1 (\(TestMedia.avi)): decoded 795, delivered 795, dropped 0"))
    }

    /// An audio-only file beside a good input: "no video stream in <uri>", exit 1, the other input
    /// delivered in full.
    @Test func anAudioOnlyFileIsSaidToHaveNoVideo() throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let audio = folder.appendingPathComponent("tone.m4a").path
        let made = try runProcess("/usr/bin/ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=2", audio], timeout: 30)
        #expect(made.status == 0, "\(made.standardError)")
        let result = try runProcess(TestMedia.appBinary, ["-i", audio, TestMedia.avi, "--no-display", "--no-detector", "-s",
                                                          "--width", "320", "--height", "240"], timeout: 60)
        #expect(result.status == 1)
        #expect(result.standardError.contains("no video stream in \(audio)"), "\(result.standardError)")
        #expect(!result.standardError.contains("Internal data stream error"), "\(result.standardError)")
        #expect(result.standardOutput.contains("source 1 (\(TestMedia.avi)): decoded 795, delivered 795, dropped 0"), "\(result.standardOutput.suffix(300))")
    }

    @Test func endToEndPrintsTheSamplesLinesAndWritesAPlayableMP4() throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("out.mp4").path
        let result = try runProcess(TestMedia.appBinary, ["-i", TestMedia.h264, TestMedia.avi, "--no-detector", "--width", "320", "--height", "240",
                                                          "--tiler-width", "640", "--tiler-height", "240", "--perf-interval", "1",
                                                          "-o", output], timeout: 240)
        #expect(result.status == 0, "stderr: \(result.standardError)")
        let lines = result.standardOutput.split(separator: "\n")
        #expect(lines.filter { $0.hasPrefix("Frame Number= ") }.count == 2 * TestMedia.sampleFrameCount)
        #expect(lines.contains { $0.hasPrefix("**PERF:  {'stream0': ") && $0.contains("'stream1': ") })
        #expect(lines.contains("End-of-stream"))
        #expect(lines.contains { $0.contains("decoded 795, delivered 795, dropped 0") })
        let info = try discover(output)
        #expect(info.contains("H.264"))
        #expect(info.contains("Width: 640") && info.contains("Height: 240"))
        #expect(info.contains("Duration: 0:01:19"), "the input lasts 79.5 s: \(info)")
    }

    @Test(arguments: [(SIGINT, Int32(130)), (SIGTERM, Int32(143))])
    func aSignalStopsCleanlyAndLeavesAPlayableMP4(signal: Int32, expectedStatus: Int32) throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("interrupted.mp4").path
        let result = try runProcess(TestMedia.appBinary, ["-i", TestMedia.h264, "--file-loop", "-s", "--width", "320", "--height", "240",
                                                          "--config", TestMedia.path("configs/yolov3_tiny_pgie_config.txt"),
                                                          "--tiler-width", "320", "--tiler-height", "240", "-o", output],
                                    timeout: 60, signal: signal, signalAfter: 3)
        #expect(!result.timedOut)
        #expect(result.status == expectedStatus, "stderr: \(result.standardError)")
        let info = try discover(output)
        #expect(info.contains("H.264") && info.contains("Width: 320"), "\(info)")
        #expect(!info.contains("Duration: 0:00:00.000000000"))
    }

    /// A SIGKILL (or a power cut) mid-run: the MP4 written so far plays up to its last 1-s
    /// fragment, in FFmpeg and in GStreamer; a clean end leaves one normal MP4 (no fragments).
    @Test func aSIGKILLLeavesAnMP4ThatPlaysAndACleanEndANormalOne() throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let killed = folder.appendingPathComponent("killed.mp4").path
        let result = try runProcess(TestMedia.appBinary, ["-i", TestMedia.h264, "--file-loop", "-s", "--no-detector", "--width", "320", "--height", "240",
                                                          "--tiler-width", "320", "--tiler-height", "240", "-o", killed],
                                    timeout: 60, signal: SIGKILL, signalAfter: 6)
        #expect(result.status == 128 + SIGKILL || result.status == -1 || result.status == SIGKILL, "killed: \(result.status)")
        let frames = try runProcess("/usr/bin/ffprobe", ["-v", "error", "-count_frames", "-select_streams", "v", "-show_entries",
                                                         "stream=nb_read_frames", "-of", "csv=p=0", killed], timeout: 60)
        let count = Int(frames.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        #expect(count >= 60, "FFmpeg reads the frames before the kill: \(count); \(frames.standardError)")
        let decoded = try runProcess("/usr/bin/gst-launch-1.0", ["-q", "filesrc", "location=\(killed)", "!", "qtdemux", "!", "h264parse", "!",
                                                                 "avdec_h264", "!", "fakesink"], timeout: 60)
        #expect(decoded.status == 0, "GStreamer plays it: \(decoded.standardError)")
        #expect(Self.topLevelBoxes(killed).contains("moof"), "fragments while recording")

        let clean = folder.appendingPathComponent("clean.mp4").path
        let run = try runProcess(TestMedia.appBinary, ["-i", TestMedia.h264, "-s", "--no-detector", "--width", "320", "--height", "240",
                                                       "--tiler-width", "320", "--tiler-height", "240", "-o", clean], timeout: 120)
        #expect(run.status == 0, "\(run.standardError)")
        let boxes = Self.topLevelBoxes(clean)
        #expect(boxes.contains("moov") && !boxes.contains("moof"), "one index, no fragments: \(boxes)")
        #expect(try discover(clean).contains("Seekable: yes"))
    }

    /// The top-level boxes of an MP4 file, in order.
    static func topLevelBoxes(_ path: String) -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        var boxes: [String] = [], offset = 0
        while offset + 8 <= data.count {
            var size = data[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
            if size == 1, offset + 16 <= data.count { size = data[offset + 8..<offset + 16].reduce(0) { $0 << 8 | Int($1) } }
            boxes.append(String(decoding: data[offset + 4..<offset + 8], as: UTF8.self))
            guard size >= 8 else { break }
            offset += size
        }
        return boxes
    }

    /// `timeout` sends SIGTERM to the child and then to its process group: the second copy,
    /// microseconds later, is the same request and must not cut the MP4 short.
    @Test func aDuplicatedSIGTERMStillFinalisesTheMP4() throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("twice.mp4").path
        // Two streams with the detector: the clean stop takes longer than the 50 ms between the
        // copies (with nothing queued it can finish first and hide a second-signal exit).
        let result = try runProcess(TestMedia.appBinary, ["-i", TestMedia.h264, TestMedia.h264, "--file-loop", "-s",
                                                          "--config", TestMedia.path("configs/yolov3_tiny_pgie_config.txt"),
                                                          "--width", "640", "--height", "360", "--tiler-width", "1280", "--tiler-height", "360",
                                                          "-o", output],
                                    timeout: 60, signal: SIGTERM, signalAfter: 4, signalCopies: 2)
        #expect(!result.timedOut)
        #expect(result.status == 143, "stderr: \(result.standardError)")
        #expect(result.standardOutput.contains("End-of-stream"), "the summary is printed: \(result.standardOutput.suffix(400))")
        #expect(!result.standardError.contains("exiting now"), "\(result.standardError)")
        let info = try discover(output)
        #expect(info.contains("H.264") && info.contains("Width: 1280"), "\(info)")
        #expect(!info.contains("Duration: 0:00:00.000000000"))
    }

    /// An RTSP camera nobody answers for, given one retry: it is given up, named, exit 1; the good
    /// input beside it is delivered in full.
    @Test func anUnreachableCameraIsGivenUpAfterItsRetriesAndNamed() throws {
        try TestMedia.requireMedia()
        let camera = "rtsp://127.0.0.1:1/nobody"
        let result = try runProcess(TestMedia.appBinary, ["-i", camera, TestMedia.avi, "--rtsp-reconnect-attempts", "1", "--no-display",
                                                          "--no-detector", "-s", "--width", "320", "--height", "240"], timeout: 60)
        #expect(!result.timedOut && result.status == 1, "stderr: \(result.standardError)")
        #expect(result.standardError.contains("gave up after 1 attempt") && result.standardError.contains("Error: ")
                && result.standardError.contains(camera), "\(result.standardError)")
        #expect(result.standardOutput.contains("source 1 (\(TestMedia.avi)): decoded 795, delivered 795, dropped 0"))
    }

    /// Sixteen inputs at once (one of them a path with spaces and non-ASCII letters): every frame
    /// of each delivered, exit 0, no hang.
    @Test func sixteenInputsAtOnceAreEachDeliveredInFull() throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let clip = folder.appendingPathComponent("a clip é.mp4").path
        try makeShortSampleClip(at: clip, frames: 6)
        let result = try runProcess(TestMedia.appBinary, ["-i"] + Array(repeating: clip, count: 16)
                                    + ["--no-detector", "--no-display", "-s", "--width", "160", "--height", "120"], timeout: 120)
        #expect(!result.timedOut && result.status == 0, "stderr: \(result.standardError.suffix(600))")
        for id in 0..<16 {
            #expect(result.standardOutput.contains("source \(id) (\(clip)): decoded 6, delivered 6, dropped 0"), "source \(id)")
        }
    }

    /// Negative values as the README writes them (`--batched-push-timeout -1`), not only `=-1`.
    @Test func negativeOptionValuesParse() throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let clip = folder.appendingPathComponent("clip.mp4").path
        try makeShortSampleClip(at: clip, frames: 6)
        let result = try runProcess(TestMedia.appBinary, ["-i", clip, "--no-detector", "--no-display", "--batched-push-timeout", "-1",
                                                          "--perf-interval", "0", "--width", "320", "--height", "240"], timeout: 60)
        #expect(result.status == 0, "stderr: \(result.standardError)")
        #expect(result.standardOutput.contains("Frame Number= 5 "), "\(result.standardOutput)")
        #expect(!result.standardOutput.contains("**PERF"))
    }

    /// Usage errors (an unknown flag, a value out of range, a missing value) exit 2 like every
    /// other error in what the user gave, not the parser's 64.
    @Test(arguments: [["--no-such-flag"], ["--batch-size", "0"], ["--width"], ["--device", "tpu"], ["--width", "0"],
                      ["--batched-push-timeout", "-5"], ["--perf-interval", "-1"], ["-i"], ["--devices", "gpu0"],
                      ["--devices", "cpu,cuda:0"], ["--device", "cpu", "--gpus", "2"]])
    func usageErrorsExitTwo(flags: [String]) throws {
        let result = try runProcess(TestMedia.appBinary, ["-i", TestMedia.h264, "--no-display"] + flags, timeout: 20)
        #expect(result.status == 2, "stderr: \(result.standardError)")
        #expect(result.standardError.contains("Error: "), "\(result.standardError)")
        #expect(result.standardError.contains("Usage: "), "\(result.standardError)")
    }

    /// The app on the two test inputs (no detector, 320×240 muxer) sharded over two host
    /// pipelines (`--devices cpu,cpu`), with `flags`.
    private func runOnTwoHostShards(_ flags: [String], tilerWidth: Int = 320, output: String, timeout: Double,
                                    signal: Int32? = nil, signalAfter: Double = 0, detector: Bool = false) throws -> ProcessResult {
        try runProcess(TestMedia.appBinary, ["--devices", "cpu,cpu"]
                                        + (detector ? [] : ["--no-detector"]) + [
                                        "-i", TestMedia.h264, TestMedia.avi, "-s", "--width", "320", "--height", "240",
                                        "--tiler-width", "\(tilerWidth)", "--tiler-height", "240", "-o", output] + flags,
                       timeout: timeout, signal: signal, signalAfter: signalAfter)
    }

    /// `--devices cpu,cpu` in one process: the inputs split in
    /// two shards, each with its own output file, every frame accounted for under its global
    /// source id.
    @Test func gpusShardsTheInputsWithAnOutputEach() throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("sharded.mp4").path
        let result = try runOnTwoHostShards([], output: output, timeout: 120)
        #expect(result.status == 0, "stderr: \(result.standardError)")
        #expect(result.standardOutput.contains("source 0 (\(TestMedia.h264)): decoded 795, delivered 795, dropped 0"), "\(result.standardOutput)")
        #expect(result.standardOutput.contains("source 1 (\(TestMedia.avi)): decoded 795, delivered 795, dropped 0"), "\(result.standardOutput)")
        for shard in ["cpu0", "cpu1"] {
            let info = try discover(folder.appendingPathComponent("sharded-\(shard).mp4").path)
            #expect(info.contains("Duration: 0:01:19"), "\(shard): the inputs last 79.5 s: \(info)")
        }
    }

    /// With the detector over two shards, each shard's muxer batches its own sources: the
    /// sample's batch-size warning compares the config with that count (1), not every input's (2).
    @Test func shardedBatchSizeWarningNamesTheShardsSources() throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try runOnTwoHostShards([], output: folder.appendingPathComponent("warn.mp4").path, timeout: 60,
                                            signal: SIGINT, signalAfter: 3, detector: true)
        // The config's batch-size=1 is each shard's one source: nothing to override.
        #expect(!result.standardOutput.contains("Overriding infer-config batch-size"), "\(result.standardOutput)")
        #expect(result.status == 130, "stderr: \(result.standardError)")
    }

    /// `--devices cpu,cpu --single-output`: one MP4 of the tiler's size for both shards.
    @Test func singleOutputWritesOneFileForEveryShard() throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("single.mp4").path
        let result = try runOnTwoHostShards(["--single-output"], tilerWidth: 640, output: output, timeout: 120)
        #expect(result.status == 0, "stderr: \(result.standardError)")
        let info = try discover(output)
        #expect(info.contains("Width: 640") && info.contains("Duration: 0:01:19"), "\(info)")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        #expect(files == ["single.mp4"], "no per-GPU files: \(files)")
    }

    /// `--devices cpu,cpu --process-per-gpu`: one process per shard, each writing its own MP4; SIGINT to
    /// the parent reaches both, and both files play.
    @Test func processPerGPUPassesSIGINTOnAndEachShardFinishesItsMP4() throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("shards.mp4").path
        let result = try runOnTwoHostShards(["--process-per-gpu", "--file-loop"], output: output, timeout: 60, signal: SIGINT, signalAfter: 3)
        #expect(!result.timedOut)
        #expect(result.status == 130, "stderr: \(result.standardError)")
        #expect(result.standardOutput.contains("One process per device: "))
        #expect(result.standardOutput.components(separatedBy: "End-of-stream").count == 3, "\(result.standardOutput)")
        for shard in ["cpu0", "cpu1"] {
            let info = try discover(folder.appendingPathComponent("shards-\(shard).mp4").path)
            #expect(info.contains("H.264") && info.contains("Width: 320"), "\(shard): \(info)")
        }
    }
}
