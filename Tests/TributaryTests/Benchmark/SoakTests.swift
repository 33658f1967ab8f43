import Foundation
import Testing

/// The soak of issue 18 in CI: the benchmark's `--soak-seconds 60` on the built binary (debug in
/// `make test`), scaled to two cores — two 720p streams looping through the detector, the sort
/// tracker, the OSD, MP4 and JSON-lines output, a sample every 5 s — and its verdict: the frame
/// ledger balanced, open file descriptors flat, RSS growth over the window (the last 40 s) within
/// `rssGoal` % (the 30-minute release soak's goal is 2 %; docs/reliability.md).
@Suite struct SoakTests {
    /// Generous for a debug build sharing two cores with the other tests (measured: +0.23 to
    /// +0.32 %), and still failing a leak of 0.5 MB a second (5 % of ≈ 410 MB over the 40-s
    /// window): a 720p RGBA frame (3.7 MB) kept every 7 s, any frame kept per batch by far.
    static let rssGoal = 5

    @Test(.runningTimeLimit(minutes: 4)) func aMinuteLongSoakHoldsItsVerdict() throws {
        try TestMedia.requireMedia()
        let benchmark = try ChartsTests.requireBenchmark()
        let result = try runProcess(benchmark, ["--soak-seconds", "60", "--soak-interval", "5", "--streams", "2", "-i", TestMedia.h264,
                                                "--width", "1280", "--height", "720", "--soak-max-rss-growth", String(Self.rssGoal)], timeout: 200)
        let output = result.standardOutput
        #expect(!result.timedOut)
        #expect(result.status == 0, "exit \(result.status)\n\(output)\n\(result.standardError)")
        #expect(output.contains("\nSoak: PASS"), "\(output)")

        // The samples: 0, 5, …, 60 s, frames growing, fds the same count from the window on.
        let samples = Self.rows(output, after: "| seconds | frames | fps | RSS MB | of it huge pages MB | open fds |")
        #expect(samples.map { $0[0] } == stride(from: 0, through: 60, by: 5).map { "\($0).0" }, "\(samples)")
        let frames = samples.compactMap { Int($0[1]) }
        #expect(frames.count == samples.count && zip(frames, frames.dropFirst()).allSatisfy { $0 < $1 }, "frames \(frames)")

        // The verdict: each criterion passed, none left unjudged.
        let criteria = Dictionary(Self.rows(output, after: "| criterion | measured | goal | verdict |").map { ($0[0], $0) }, uniquingKeysWith: { a, _ in a })
        for name in ["RSS growth over the window", "open file descriptors", "frames in every interval", "frame ledger", "run"] {
            #expect(criteria[name]?.last == "PASS", "\(name): \(criteria[name] ?? [])")
        }
        #expect(criteria["RSS growth over the window"]?[2] == "< \(Self.rssGoal).0 %")
        #expect(output.contains("Window: 20.0–60.0 s, 9 samples"), "\(output)")

        // The ledger, each source: decoded = delivered + dropped, and every frame delivered was
        // written as a JSON line.
        let ledger = output.split(separator: "\n").filter { $0.hasPrefix("source ") }
        #expect(ledger.count == 2, "\(ledger)")
        var delivered = 0
        for line in ledger {
            let numbers = line.split(separator: ":", maxSplits: 1)[1].split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
            #expect(numbers.count >= 3 && numbers[0] == numbers[1] + numbers[2] && numbers[1] > 0, "\(line)")
            delivered += numbers.count >= 2 ? numbers[1] : 0
        }
        #expect(output.contains("(\(delivered) lines)"), "\(output)")
    }

    /// A criterion that fails makes the exit status 1 (a goal no run meets: RSS shrinking by 1 000 %).
    @Test(.runningTimeLimit(minutes: 2)) func aFailedCriterionExitsOne() throws {
        try TestMedia.requireMedia()
        let benchmark = try ChartsTests.requireBenchmark()
        let result = try runProcess(benchmark, ["--soak-seconds", "6", "--soak-interval", "1", "--streams", "1", "-i", TestMedia.h264,
                                                "--width", "640", "--height", "360", "--soak-max-rss-growth=-1000"], timeout: 100)
        #expect(result.status == 1, "exit \(result.status)\n\(result.standardOutput)\n\(result.standardError)")
        #expect(result.standardOutput.contains("| RSS growth over the window |") && result.standardOutput.contains("| FAIL |"))
        #expect(result.standardOutput.contains("\nSoak: FAIL"))
    }

    /// The rows of the Markdown table whose header is `header`, as trimmed cells.
    static func rows(_ output: String, after header: String) -> [[String]] {
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let start = lines.firstIndex(where: { $0.hasPrefix(header) }) else { return [] }
        return lines[(start + 2)...].prefix { $0.hasPrefix("| ") }.map { line in
            line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        }
    }
}
