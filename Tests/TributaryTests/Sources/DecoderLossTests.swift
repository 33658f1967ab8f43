import Foundation
import Testing
@testable import Tributary

/// Frames the decoder loses (a corrupt bitstream) are counted from the gaps in a file's
/// timestamps, said once with the input named, and shown in the summary as `dropped: decoder (N)`.
@Suite struct DecoderLossTests {
    @Test func stepsOfAboutKIntervalsAreKMinusOneFramesMissing() throws {
        var gaps = try #require(TimestampGaps(frameRate: (30, 1)))
        let frame = 33_333_333.0
        func at(_ n: Double) -> UInt64 { UInt64(n * frame) }
        #expect(gaps.missing(before: at(0)) == 0, "the first frame")
        #expect(gaps.missing(before: at(1)) == 0)
        #expect(gaps.missing(before: at(2.4)) == 0, "jitter under half an interval")
        #expect(gaps.missing(before: at(5)) == 2, "frames 3 and 4")
        #expect(gaps.missing(before: at(4)) == 0, "a step back is no loss")
        #expect(gaps.missing(before: at(6)) == 0, "counted from the furthest frame")
        #expect(gaps.missing(before: at(16)) == 9)
        #expect(TimestampGaps(frameRate: (0, 1)) == nil, "a variable rate has no gaps to count")
    }

    /// 64 KiB of (seeded) noise in the middle of the 720p sample: the decoder conceals or drops a
    /// few frames; they are counted, and the good input beside it is complete.
    @Test func aCorruptBitstreamsLostFramesAreCountedAndNamed() throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let corrupt = folder.appendingPathComponent("corrupt.mp4").path
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: TestMedia.h264)))
        var random = SeededGenerator(seed: 64)
        for i in 0..<65_536 { bytes[bytes.count / 2 + i] = UInt8(truncatingIfNeeded: random.next()) }
        try Data(bytes).write(to: URL(fileURLWithPath: corrupt))
        let result = try runProcess(TestMedia.appBinary, ["-i", corrupt, TestMedia.avi, "--no-display", "--no-detector", "-s",
                                                          "--width", "320", "--height", "240"], timeout: 120)
        #expect(result.status == 0, "every frame that could be decoded was delivered: \(result.standardError)")
        let summary = result.standardOutput + result.standardError
        let line = summary.split(separator: "\n").first { $0.hasPrefix("source 0 (") }.map(String.init) ?? ""
        let decoded = Int(line.firstMatch(of: /decoded (\d+)/)?.1 ?? "") ?? 0
        let lost = Int(line.firstMatch(of: /dropped: decoder \((\d+)\)/)?.1 ?? "") ?? 0
        #expect(lost > 0 && decoded + lost == 795, "every frame of the container accounted for: \(line)")
        #expect(result.standardError.contains("the decoder lost") && result.standardError.contains(corrupt), "\(result.standardError)")
        #expect(summary.contains("source 1 (\(TestMedia.avi)): decoded 795, delivered 795, dropped 0\n"), "the good input in full")
    }
}
