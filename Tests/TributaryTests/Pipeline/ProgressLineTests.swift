import Foundation
import Logging
import Testing
@testable import Tributary
import TributarySample

/// The progress line of `imagedata-multistream`: its text and redraw rate (pure), the totals a
/// file source learns from its container, and the app in a pseudo-terminal and piped.
@Suite(.serialized) struct ProgressLineTests {
    // MARK: The text

    @Test func knownTotalsGivePercentageRateAndTimeLeft() {
        let line = ProgressLine(inputs: [.init(done: 365, total: 795), .init(done: 365, total: 795)], elapsedSeconds: 10)
        // 730 frames in 10 s: 73 fps; 860 left: 11.8 s.
        #expect(line.text == "[ 45%] 730/1590 frames, 73.0 fps, ETA 0:12 | stream0 365/795  stream1 365/795")
    }

    @Test func oneInputHasNoPerInputPart() {
        let line = ProgressLine(inputs: [.init(done: 5, total: 795)], elapsedSeconds: 1)
        #expect(line.text == "[  0%] 5/795 frames, 5.0 fps, ETA 2:38")
    }

    /// `--file-loop`, or a container without a duration: counts and rate, no total made up.
    @Test func anUnknownTotalGivesCountsAndRateOnly() {
        let line = ProgressLine(inputs: [.init(done: 100, total: nil), .init(done: 100, total: 795)], elapsedSeconds: 4)
        #expect(line.text == "200 frames, 50.0 fps | stream0 100  stream1 100/795")
        #expect(ProgressLine(inputs: [.init(done: 7, total: nil)], elapsedSeconds: 2).text == "7 frames, 3.5 fps")
    }

    @Test func theFinalLineGivesTheTimeTheRunTook() {
        let line = ProgressLine(inputs: [.init(done: 795, total: 795)], elapsedSeconds: 125, finished: true)
        #expect(line.text == "[100%] 795/795 frames, 6.36 fps, in 2:05")
    }

    /// The container's total is an estimate: a few frames more never give 101 % or a negative ETA.
    @Test func framesPastTheTotalStopAtAHundredPercent() {
        let line = ProgressLine(inputs: [.init(done: 800, total: 795)], elapsedSeconds: 8)
        #expect(line.text == "[100%] 800/795 frames, 100.0 fps, ETA 0:00")
    }

    @Test func noTimeYetGivesNoRateAndNoETA() {
        #expect(ProgressLine(inputs: [.init(done: 0, total: 795)], elapsedSeconds: 0).text == "[  0%] 0/795 frames, 0.0 fps")
    }

    @Test func hoursShowAsHoursMinutesSeconds() {
        let line = ProgressLine(inputs: [.init(done: 1, total: 3726)], elapsedSeconds: 1)
        #expect(line.text.hasSuffix("ETA 1:02:05"), "\(line.text)")
    }

    /// A line wider than the terminal would wrap and could not be redrawn in place: it is cut,
    /// the run's figures first.
    @Test func aLongLineIsCutToTheTerminalWidth() {
        let line = ProgressLine(inputs: Array(repeating: .init(done: 100, total: 795), count: 16), elapsedSeconds: 10)
        let cut = line.text(fittingColumns: 80)
        #expect(cut.count == 79)
        #expect(cut.hasPrefix("[ 12%] 1600/12720 frames, 160.0 fps, ETA 1:10 | stream0 100/795"), "\(cut)")
        #expect(cut.hasSuffix("…"))
        #expect(line.text(fittingColumns: nil) == line.text)
        #expect(line.text(fittingColumns: 0) == line.text)
        let short = ProgressLine(inputs: [.init(done: 1, total: 2)], elapsedSeconds: 1)
        #expect(short.text(fittingColumns: 80) == short.text)
    }

    // MARK: The redraw rate

    @Test func redrawsAtMostFourTimesASecond() {
        var throttle = RedrawThrottle()
        let start = MonotonicInstant(nanoseconds: 5_000_000_000)
        func at(_ milliseconds: UInt64) -> MonotonicInstant { start.advanced(byNanoseconds: milliseconds * 1_000_000) }
        func redraws(_ milliseconds: UInt64) -> Bool { throttle.shouldRedraw(at: at(milliseconds)) }
        let answers = [0, 100, 249, 250, 400, 510].map(redraws)
        // The first at once; then counted from the last redraw, not from the last question.
        #expect(answers == [true, false, false, true, false, true])
        // A thousand batches a second for two seconds: eight redraws.
        let redrawCount = (1...2000).filter { redraws(510 + UInt64($0)) }.count
        #expect(redrawCount == 8)
    }

    // MARK: The totals

    @Test func aContainersDurationAndRateGiveItsFrames() {
        #expect(VideoSource.frameCount(durationNanoseconds: 79_500_000_000, frameRate: (10, 1)) == 795)
        #expect(VideoSource.frameCount(durationNanoseconds: 79_400_000_000, frameRate: (30, 1)) == 2382)
        #expect(VideoSource.frameCount(durationNanoseconds: 10_000_000_000, frameRate: (30000, 1001)) == 300)
        #expect(VideoSource.frameCount(durationNanoseconds: 10_000_000_000, frameRate: (0, 1)) == nil, "variable rate: no total")
        #expect(VideoSource.frameCount(durationNanoseconds: 0, frameRate: (25, 1)) == nil)
    }

    /// A file source learns its total at its first frame; a looping one has none.
    @Test(arguments: [false, true])
    func aFileSourceKnowsItsTotalUnlessItLoops(loops: Bool) throws {
        try TestMedia.requireMedia()
        let source = try VideoSource(id: 0, uri: SourceURI(TestMedia.avi), width: 64, height: 48, fileLoop: loops,
                                     logger: Logger(label: "test"))
        #expect(source.expectedFrameCount == nil, "not before the first frame")
        source.start()
        _ = source.run(ledger: FrameLedger(sourceCount: 1)) { _ in source.requestStop() }
        #expect(source.expectedFrameCount == (loops ? nil : TestMedia.sampleFrameCount))
    }

    // MARK: The app

    private static let clipFrames = 60

    /// The app on a short clip, no detector, small frames; in a pseudo-terminal (util-linux
    /// `script`, both standard output and standard error on it) or piped.
    private func runApp(clip: String, terminal: Bool, flags: [String] = []) throws -> ProcessResult {
        let arguments = ["-i", clip, "--no-detector", "--no-display", "--width", "160", "--height", "120",
                         "--tiler-width", "160", "--tiler-height", "120"] + flags
        guard terminal else { return try runProcess(TestMedia.appBinary, arguments, timeout: 60) }
        let command = ([TestMedia.appBinary] + arguments).map { "'\($0)'" }.joined(separator: " ")
        return try runProcess("/usr/bin/script", ["-qfec", command, "/dev/null"], timeout: 60)
    }

    private func withClip(_ body: (String) throws -> Void) throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let clip = folder.appendingPathComponent("clip.mp4").path
        try makeShortSampleClip(at: clip, frames: Self.clipFrames)
        try body(clip)
    }

    /// The terminal's output with its line ends (`\r\n`, one Character in Swift) made `\n`.
    private func lineEndsNormalised(_ output: String) -> String {
        output.replacingOccurrences(of: "\r\n", with: "\n")
    }

    /// What a terminal shows on each line: the text after the last erase (`\r` ESC[K) of each.
    private func shownLines(_ output: String) -> [String] {
        lineEndsNormalised(output).split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.components(separatedBy: "\r\u{1B}[K").last ?? String(line)
        }
    }

    /// Every text the line was drawn with, in order.
    private func progressTexts(_ output: String) -> [String] {
        lineEndsNormalised(output).components(separatedBy: "\r\u{1B}[K").dropFirst().map { drawn in
            String(drawn.prefix { $0 != "\r" && $0 != "\n" })
        }.filter { $0.contains(" frames, ") }
    }

    @Test func onATerminalTheLineCountsToTheTotalBesideThePerFrameLines() throws {
        try withClip { clip in
            let result = try runApp(clip: clip, terminal: true)
            #expect(!result.timedOut && result.status == 0, "\(result.standardOutput)\(result.standardError)")
            let output = result.standardOutput
            let texts = progressTexts(output)
            let total = Self.clipFrames
            #expect(texts.contains { $0.hasPrefix("[") && $0.contains("/\(total) frames, ") && !$0.contains(" \(total)/\(total) ") },
                    "drawn while the run goes on, not only at its end: \(Set(texts))")
            #expect(texts.last?.hasPrefix("[100%] \(total)/\(total) frames, ") == true && texts.last?.contains(", in ") == true,
                    "the last line reaches the total: \(texts.last ?? "none")")
            let shown = shownLines(output)
            // The per-frame lines are whole: never written into the progress line, nor it into them.
            let frameLines = shown.filter { $0.contains("Frame Number=") }
            #expect(frameLines.count == total)
            #expect(frameLines.allSatisfy { $0.hasPrefix("Frame Number= ") && !$0.contains(" frames, ") }, "\(frameLines)")
            // The final line stays, on a line of its own, above the summary.
            let final = shown.firstIndex { $0.hasPrefix("[100%] \(total)/\(total) frames, ") }
            let endOfStream = shown.firstIndex(of: "End-of-stream")
            #expect(final != nil && endOfStream != nil && final! < endOfStream!, "\(shown.suffix(4))")
        }
    }

    @Test func pipedOrSilentThereIsNoLine() throws {
        try withClip { clip in
            let piped = try runApp(clip: clip, terminal: false)
            #expect(piped.status == 0, "\(piped.standardError)")
            #expect(piped.standardOutput.components(separatedBy: "\n").filter { $0.hasPrefix("Frame Number= ") }.count == Self.clipFrames)
            for text in [piped.standardOutput, piped.standardError] {
                #expect(!text.contains("\u{1B}[K") && !text.contains(" frames, "), "\(text)")
            }
            let silent = try runApp(clip: clip, terminal: true, flags: ["-s"])
            #expect(silent.status == 0 && silent.standardOutput.contains("End-of-stream"), "\(silent.standardOutput)")
            #expect(!silent.standardOutput.contains("\u{1B}[K") && !silent.standardOutput.contains(" frames, "), "\(silent.standardOutput)")
        }
    }
}
