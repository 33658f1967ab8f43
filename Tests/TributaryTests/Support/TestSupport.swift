import Foundation
import Testing
@testable import Tributary

/// Paths and helpers shared by the integration tests, which run on the real sample media and
/// real GStreamer made by `scripts/setup.sh`.
enum TestMedia {
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func path(_ relative: String) -> String { repositoryRoot.appendingPathComponent(relative).path }

    static var h264: String { path("media/sample_720p_h264.mp4") }
    static var h265: String { path("media/sample_h265.mp4") }
    static var avi: String { path("media/vtest.avi") }
    static let sampleFrameCount = 795

    /// The app binary of the current build (`swift build` puts it beside the test bundle): the
    /// one beside this test bundle first, so a build with its own `--scratch-path` tests its own app.
    static var appBinary: String {
        let beside = Bundle.main.executableURL.map {
            $0.resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("imagedata-multistream").path
        }
        let candidates = (beside.map { [$0] } ?? []) + [".build/debug/imagedata-multistream", ".build/release/imagedata-multistream"].map(path)
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }

    static func requireMedia() throws {
        for file in [h264, h265, avi] where !FileManager.default.fileExists(atPath: file) {
            Issue.record("missing \(file): run scripts/setup.sh (make test does)")
            throw CancellationError()
        }
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// The result of running a program to its end.
struct ProcessResult {
    var status: Int32
    var standardOutput: String
    var standardError: String
    var seconds: Double
    var timedOut: Bool
}

/// Runs a program with a time limit (killed past it); optionally sends `signal` after `signalAfter`
/// seconds, `signalCopies` times (as `timeout` does: the child, then its group).
func runProcess(_ executable: String, _ arguments: [String], timeout: Double, signal: Int32? = nil, signalAfter: Double = 0,
                signalCopies: Int = 1) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.currentDirectoryURL = TestMedia.repositoryRoot
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let outData = LockedData(), errData = LockedData()
    out.fileHandleForReading.readabilityHandler = { outData.append($0.availableData) }
    err.fileHandleForReading.readabilityHandler = { errData.append($0.availableData) }
    let start = Date()
    try process.run()
    var signalled = false
    var timedOut = false
    while process.isRunning {
        let elapsed = Date().timeIntervalSince(start)
        if let signal, !signalled, elapsed >= signalAfter {
            for copy in 0..<signalCopies {
                // 50 ms apart: copies pending at once merge in the kernel, and each must arrive.
                if copy > 0 { usleep(50_000) }
                kill(process.processIdentifier, signal)
            }
            signalled = true
        }
        if elapsed > timeout { timedOut = true; process.terminate(); break }
        usleep(20_000)
    }
    process.waitUntilExit()
    let seconds = Date().timeIntervalSince(start)
    out.fileHandleForReading.readabilityHandler = nil
    err.fileHandleForReading.readabilityHandler = nil
    outData.append(out.fileHandleForReading.readDataToEndOfFile())
    errData.append(err.fileHandleForReading.readDataToEndOfFile())
    return ProcessResult(status: process.terminationStatus, standardOutput: outData.string, standardError: errData.string,
                         seconds: seconds, timedOut: timedOut)
}

final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func append(_ more: Data) { lock.lock(); data.append(more); lock.unlock() }
    var string: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }
}

/// Writes a small H.264 MP4 of one solid colour with GStreamer's videotestsrc.
func makeSolidColourVideo(at path: String, argb: UInt32, width: Int = 160, height: Int = 120, frames: Int = 10) throws {
    let result = try runProcess("/usr/bin/timeout", ["60", "gst-launch-1.0", "-q",
        "videotestsrc", "pattern=solid-color", "foreground-color=\(argb)", "num-buffers=\(frames)", "!",
        "video/x-raw,width=\(width),height=\(height),framerate=10/1", "!", "videoconvert", "!",
        "x264enc", "speed-preset=ultrafast", "!", "mp4mux", "!", "filesink", "location=\(path)"], timeout: 90)
    guard result.status == 0 else { throw PipelineError.invalidArgument("gst-launch failed: \(result.standardError)") }
}

/// What `gst-discoverer-1.0` says of a media file.
func discover(_ path: String) throws -> String {
    let result = try runProcess("/usr/bin/timeout", ["60", "gst-discoverer-1.0", path], timeout: 90)
    return result.standardOutput + result.standardError
}

/// Runs a pipeline on a background thread so the test can watch and stop it.
final class BackgroundRun: @unchecked Sendable {
    private let done = Locked<PipelineOutcome?>(nil)
    private var thread: WorkerThread?

    init(_ pipeline: Pipeline) {
        thread = WorkerThread(name: "test-run") { [done] in
            let outcome = pipeline.run()
            done.withValue { $0 = outcome }
        }
    }

    /// Waits up to `timeout` seconds for `condition`; true if it held.
    @discardableResult
    static func waitFor(timeout: Double, _ condition: () -> Bool) -> Bool {
        let start = Date()
        while Date().timeIntervalSince(start) < timeout {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }

    func finish(timeout: Double) -> PipelineOutcome? {
        BackgroundRun.waitFor(timeout: timeout) { done.withValue { $0 != nil } }
        guard done.withValue({ $0 != nil }) else { return nil }
        thread?.join()
        return done.withValue { $0 }
    }
}

/// The first `frames` frames of the sample as a small H.264 MP4, for tests that run the detector
/// (a debug build infers a few frames a second). Cut by FFmpeg (set-up installs it): GStreamer's
/// `identity eos-after` gave the last frame a duration of seconds now and then, and one clip in
/// a CI run decoded to a frame fewer than asked.
func makeShortSampleClip(at path: String, frames: Int) throws {
    let result = try runProcess("/usr/bin/timeout", ["60", "/usr/bin/ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", TestMedia.avi,
        "-frames:v", "\(frames)", "-an", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", path], timeout: 90)
    guard result.status == 0 else { throw PipelineError.invalidArgument("ffmpeg failed: \(result.standardError)") }
}
