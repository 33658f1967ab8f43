import Foundation
import Testing
@testable import Tributary

/// The fault matrix's cases that need a made input or a full disk (docs/reliability.md): each
/// runs the real app beside a good input, which must be delivered in full.
@Suite struct FaultMatrixTests {
    /// Folders `disk` (where the tmpfs goes) and `keep` in `folder`.
    static func diskFolders(in folder: URL) throws -> (disk: String, keep: String) {
        let disk = folder.appendingPathComponent("disk").path, keep = folder.appendingPathComponent("keep").path
        for path in [disk, keep] { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        return (disk, keep)
    }

    /// Runs `arguments` through the app inside its own mount namespace, where `disk` is a tmpfs
    /// of `size` (as root; `unshare -r` maps an ordinary user to root there). What the app left on
    /// the disk is copied to `keep` before the namespace, and the tmpfs with it, goes.
    static func runOnSmallDisk(size: String, disk: String, keep: String, _ arguments: [String], timeout: Double) throws -> ProcessResult {
        let quoted = ([TestMedia.appBinary] + arguments).map { "'\($0)'" }.joined(separator: " ")
        let script = """
            mount -t tmpfs -o size=\(size) none '\(disk)' || exit 99
            \(quoted); status=$?
            cp -r '\(disk)/.' '\(keep)/'
            exit $status
            """
        return try runProcess("/usr/bin/unshare", ["-rm", "/bin/sh", "-c", script], timeout: timeout)
    }

    /// An MP4 output on a disk that fills (a 5 MB tmpfs): the error names the path and says the
    /// run goes on; the sources and the metadata sink deliver every frame; exit 1; what was
    /// written before the disk filled plays.
    @Test(.runningTimeLimit(minutes: 4)) func anOutputOnAFullDiskIsNamedAndTheRestGoesOn() throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (disk, keep) = try Self.diskFolders(in: folder)
        let meta = folder.appendingPathComponent("frames.jsonl").path
        let result = try Self.runOnSmallDisk(size: "5m", disk: disk, keep: keep, [
            "-i", TestMedia.h264, TestMedia.avi, "--no-display", "--no-detector", "-s", "--width", "320", "--height", "240",
            "--tiler-width", "1280", "--tiler-height", "480", "-o", "\(disk)/out.mp4", "--meta-out", meta], timeout: 220)
        try #require(result.status != 99, "cannot mount a tmpfs here: \(result.standardError)")
        #expect(result.status == 1, "\(result.standardError)")
        #expect(result.standardError.contains("No space left") && result.standardError.contains("(output \(disk)/out.mp4)")
                && result.standardError.contains("the run goes on without it"), "\(result.standardError)")
        #expect(result.standardOutput.contains("source 0 (\(TestMedia.h264)): decoded 795, delivered 795, dropped 0"), "\(result.standardOutput.suffix(400))")
        #expect(result.standardOutput.contains("source 1 (\(TestMedia.avi)): decoded 795, delivered 795, dropped 0"))
        let lines = try String(contentsOfFile: meta, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2 * 795, "the metadata sink went on: \(lines.count) lines")
        let kept = "\(keep)/out.mp4"
        let size = (try FileManager.default.attributesOfItem(atPath: kept)[.size] as? NSNumber)?.intValue ?? 0
        #expect(size > 4_000_000, "the disk filled: \(size) bytes")
        let frames = try runProcess("/usr/bin/ffprobe", ["-v", "error", "-count_frames", "-select_streams", "v", "-show_entries",
                                                         "stream=nb_read_frames", "-of", "csv=p=0", kept], timeout: 60)
        #expect((Int(frames.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) >= 30,
                "what was written before the disk filled plays: \(frames.standardOutput) \(frames.standardError)")
    }

    /// `--save-frames` on a disk that fills: the saver's failure is said once, naming a path, and
    /// the run goes on to the end of both inputs; exit 1; every JPEG written is whole.
    @Test(.runningTimeLimit(minutes: 4)) func savedFramesOnAFullDiskAreSaidAndTheRunGoesOn() throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (disk, keep) = try Self.diskFolders(in: folder)
        // The detector chooses the frames: the first 150 frames of two inputs keep the run short.
        let first = folder.appendingPathComponent("first.mp4").path, second = folder.appendingPathComponent("second.avi").path
        for (input, output) in [(TestMedia.h264, first), (TestMedia.avi, second)] {
            let made = try runProcess("/usr/bin/ffmpeg", ["-v", "error", "-y", "-i", input, "-frames:v", "150", "-c", "copy", output], timeout: 60)
            try #require(made.status == 0, "\(made.standardError)")
        }
        let result = try Self.runOnSmallDisk(size: "400k", disk: disk, keep: keep, [
            "-i", first, second, "--no-display", "-s", "--width", "640", "--height", "360",
            "--save-frames", "\(disk)/frames"], timeout: 200)
        try #require(result.status != 99, "cannot mount a tmpfs here: \(result.standardError)")
        #expect(result.status == 1, "\(result.standardError)")
        let said = result.standardError.split(separator: "\n").filter { $0.contains("No space left") }
        #expect(said.count == 1 && said[0].contains("(output \(disk)/frames/stream_")
                && said[0].contains("the frames that cannot be written are skipped"), "\(result.standardError)")
        #expect(result.standardOutput.contains("source 0 (\(first)): decoded 150, delivered 150, dropped 0"), "\(result.standardOutput.suffix(400))")
        #expect(result.standardOutput.contains("source 1 (\(second)): decoded 150, delivered 150, dropped 0"))
        let saved = FileManager.default.enumerator(atPath: "\(keep)/frames")?.compactMap { $0 as? String } ?? []
        #expect(saved.contains { $0.hasSuffix(".jpg") }, "some frames were saved before the disk filled: \(saved)")
        #expect(!saved.contains { $0.contains(".partial") || $0.hasSuffix(".tmp") }, "no half-written file: \(saved)")
        for name in saved where name.hasSuffix(".jpg") {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: "\(keep)/frames/\(name)"))
            #expect(bytes.prefix(2) == Data([0xFF, 0xD8]) && bytes.suffix(2) == Data([0xFF, 0xD9]), "\(name) is a whole JPEG")
        }
    }

    /// A faststart MP4 (index first) cut in half plays to the cut and would end quietly: it is
    /// said to have ended early, and the frames it lacks are counted as the decoder's losses.
    @Test(.runningTimeLimit(minutes: 2)) func aCutFaststartFileIsSaidToEndEarly() throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let faststart = folder.appendingPathComponent("faststart.mp4").path, cut = folder.appendingPathComponent("cut.mp4").path
        let made = try runProcess("/usr/bin/ffmpeg", ["-v", "error", "-y", "-i", TestMedia.h264, "-c", "copy", "-movflags", "+faststart", faststart], timeout: 60)
        try #require(made.status == 0, "\(made.standardError)")
        let whole = try Data(contentsOf: URL(fileURLWithPath: faststart))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: cut))
        let result = try runProcess(TestMedia.appBinary, ["-i", cut, TestMedia.avi, "--no-display", "--no-detector", "-s",
                                                          "--width", "320", "--height", "240"], timeout: 90)
        #expect(result.status == 0, "every frame that could be decoded was delivered: \(result.standardError)")
        #expect(result.standardError.contains("ended early: ") && result.standardError.contains("of the 795 frames its container announces")
                && result.standardError.contains(cut), "\(result.standardError)")
        let line = result.standardOutput.split(separator: "\n").first { $0.hasPrefix("source 0 (\(cut)):") }.map(String.init) ?? ""
        let delivered = line.split(separator: " ").firstIndex(of: "delivered").map { Int(line.split(separator: " ")[$0 + 1].dropLast()) ?? 0 } ?? 0
        #expect(delivered > 300 && delivered < 500, "\(line)")
        #expect(line.hasSuffix("dropped: decoder (\(795 - delivered))"), "the frames it lacks are counted: \(line)")
        #expect(result.standardOutput.contains("source 1 (\(TestMedia.avi)): decoded 795, delivered 795, dropped 0"))
    }

    /// A stream no installed decoder takes (the AVI's codec tag changed to one nobody knows): "no
    /// decoder for <type> in <uri>", exit 1, the good input in full.
    @Test(.runningTimeLimit(minutes: 2)) func aCodecWithoutADecoderIsNamed() throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let unknown = folder.appendingPathComponent("unknown-codec.avi").path
        var bytes = try Data(contentsOf: URL(fileURLWithPath: TestMedia.avi)).prefix(1_000_000)
        // The codec tag sits in the stream header and the bitmap header, both in the first kilobytes.
        var replaced = 0
        for tag in [Data("DIV3".utf8), Data("div3".utf8)] {
            while let range = bytes.range(of: tag, in: bytes.startIndex..<(bytes.startIndex + 8192)) {
                bytes.replaceSubrange(range, with: Data("ZZZ9".utf8))
                replaced += 1
            }
        }
        try #require(replaced == 2, "vtest.avi's codec tag (DIV3) not found")
        try Data(bytes).write(to: URL(fileURLWithPath: unknown))
        let result = try runProcess(TestMedia.appBinary, ["-i", unknown, TestMedia.h264, "--no-display", "--no-detector", "-s",
                                                          "--width", "320", "--height", "240"], timeout: 90)
        #expect(result.status == 1)
        #expect(result.standardError.contains("no decoder for video/x-avi-unknown, fourcc=ZZZ9 in \(unknown)"), "\(result.standardError)")
        #expect(result.standardOutput.contains("source 1 (\(TestMedia.h264)): decoded 795, delivered 795, dropped 0"), "\(result.standardOutput.suffix(300))")
    }

    @Test func theUndecodableTypeIsReadFromDecodebinsWarning() {
        #expect(VideoSource.undecodableType(warning: "No decoder available for type 'video/x-avi-unknown, fourcc=(int)962222682'.")
                == "video/x-avi-unknown, fourcc=ZZZ9")
        #expect(VideoSource.undecodableType(warning: "No decoder available for type 'video/x-h266, stream-format=(string)byte-stream'.")
                == "video/x-h266, stream-format=(string)byte-stream")
        #expect(VideoSource.undecodableType(warning: "No decoder available for type 'video/x-avi-unknown, fourcc=(int)1'.")
                == "video/x-avi-unknown, fourcc=(int)1", "a tag that is not letters stays a number")
        #expect(VideoSource.undecodableType(warning: "Delayed linking failed.") == nil)
    }
}
