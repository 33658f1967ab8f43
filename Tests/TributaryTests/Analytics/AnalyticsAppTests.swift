import Foundation
import Testing
@testable import Tributary

/// The app with the tracker and a line across the sample's street: its cumulative crossing counts
/// rise as people walk through the middle (the sample's own lines, as deepstream-nvdsanalytics-test
/// prints them).
@Suite(.serialized) struct AnalyticsAppTests {
    @Test(.runningTimeLimit(minutes: 3))
    func crossingCountsRiseOnTheSample() throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let clip = folder.appendingPathComponent("clip.mp4").path
        try makeShortSampleClip(at: clip, frames: 300)
        // The shipped detector config with absolute model paths, and the tracker on.
        let shipped = try String(contentsOfFile: DetectorTests.configPath, encoding: .utf8)
        let detector = shipped.replacingOccurrences(of: "../models/", with: TestMedia.path("models") + "/") + "\n[tracker]\ntracker-type=sort\nmin-hits=2\n"
        let detectorPath = folder.appendingPathComponent("pgie.txt").path
        try detector.write(toFile: detectorPath, atomically: true, encoding: .utf8)
        // A vertical line through the middle of the 768 × 576 scene, counted both ways.
        let analytics = """
            [property]
            config-width=768
            config-height=576
            [line-crossing-stream-0]
            line-crossing-East=300;300;468;300;384;0;384;576
            line-crossing-West=468;300;300;300;384;0;384;576
            class-id=0
            [roi-filtering-stream-0]
            roi-Left=0;0;384;0;384;576;0;576
            class-id=0
            """
        let analyticsPath = folder.appendingPathComponent("analytics.txt").path
        try analytics.write(toFile: analyticsPath, atomically: true, encoding: .utf8)
        let result = try runProcess(TestMedia.appBinary, ["-i", clip, "-c", detectorPath, "--analytics", analyticsPath, "--analytics-lines",
                                                          "--no-display", "--perf-interval", "0", "--width", "768", "--height", "576"], timeout: 150)
        #expect(result.status == 0, "stderr: \(result.standardError)")
        let totals = result.standardOutput.split(separator: "\n").filter { $0.hasPrefix("Linecrossing Cumulative: ") }.map { line in
            line.matches(of: /'\w+': (\d+)/).reduce(0) { $0 + (Int($1.1) ?? 0) }
        }
        #expect(totals.count == 300, "one analytics block a frame")
        #expect((totals.last ?? 0) >= 3 && totals == totals.sorted(), "cumulative crossings rise: \(totals.last ?? 0) at the end")
        #expect(result.standardOutput.contains("Objs in ROI: {'Left': "))
        #expect(result.standardOutput.contains("Frame Number= 299 "))
    }
}
