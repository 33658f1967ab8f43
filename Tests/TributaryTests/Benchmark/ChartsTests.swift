import Foundation
import Testing

/// The benchmark's charts: `scripts/charts.sh` draws every committed chart from `docs/charts/`
/// with gnuplot, `docs/performance.md` shows them, and `tributary-benchmark --chart-data/--charts`
/// writes the same columns and draws them.
@Suite struct ChartsTests {
    /// The charts, as `docs/charts/<name>.tsv` → `docs/images/<name>.png`.
    static let charts = ["cpu-fps", "gpu-fps", "gpu-scaling", "rss", "latency"]
    static let width = 900, height = 500

    @Test func chartsScriptDrawsEveryCommittedChart() throws {
        try Self.requireGnuplot()
        let output = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: output) }
        let result = try runProcess("/bin/bash", [TestMedia.path("scripts/charts.sh"), TestMedia.path("docs/charts"), output.path], timeout: 120)
        #expect(result.status == 0, "charts.sh: \(result.standardError)")
        // gnuplot's warnings (a column it cannot find, a series without points) are charts gone wrong.
        #expect(result.standardError.isEmpty, "charts.sh wrote to standard error: \(result.standardError)")
        for chart in Self.charts {
            let path = output.appendingPathComponent("\(chart).png").path
            #expect(result.standardOutput.contains(path), "charts.sh did not report \(path)")
            try Self.expectChart(at: path)
        }
        // Deterministic: the same data gives the same bytes.
        let again = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: again) }
        let second = try runProcess("/bin/bash", [TestMedia.path("scripts/charts.sh"), TestMedia.path("docs/charts"), again.path], timeout: 120)
        #expect(second.status == 0)
        for chart in Self.charts {
            let first = FileManager.default.contents(atPath: output.appendingPathComponent("\(chart).png").path)
            let repeated = FileManager.default.contents(atPath: again.appendingPathComponent("\(chart).png").path)
            #expect(first != nil && first == repeated, "\(chart).png differs between two runs on the same data")
        }
    }

    @Test func chartsScriptRefusesAFolderWithoutChartData() throws {
        try Self.requireGnuplot()
        let empty = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: empty) }
        let result = try runProcess("/bin/bash", [TestMedia.path("scripts/charts.sh"), empty.path, empty.appendingPathComponent("out").path], timeout: 60)
        #expect(result.status != 0)
        #expect(result.standardError.contains("no chart data"), "\(result.standardError)")
    }

    @Test func performanceDocShowsEveryCommittedChart() throws {
        let document = try String(contentsOfFile: TestMedia.path("docs/performance.md"), encoding: .utf8)
        #expect(document.contains("scripts/charts.sh"), "docs/performance.md does not name the command that draws the charts")
        for chart in Self.charts {
            #expect(document.contains("](images/\(chart).png)"), "docs/performance.md does not show images/\(chart).png")
            try Self.expectChart(at: TestMedia.path("docs/images/\(chart).png"))
        }
        // Every data file is a chart that is drawn and shown, and names where its figures came from.
        let dataFiles = try FileManager.default.contentsOfDirectory(atPath: TestMedia.path("docs/charts")).filter { $0.hasSuffix(".tsv") }
        #expect(Set(dataFiles) == Set(Self.charts.map { "\($0).tsv" }))
        for chart in Self.charts {
            let lines = try Self.lines(of: TestMedia.path("docs/charts/\(chart).tsv"))
            for key in ["# command: ", "# date: ", "# machine: ", "# source: "] {
                #expect(lines.contains { $0.hasPrefix(key) && $0.count > key.count }, "docs/charts/\(chart).tsv has no '\(key)' line")
            }
        }
    }

    @Test func committedDataHasTheBenchmarksColumns() throws {
        let benchmark = try Self.requireBenchmark()
        let result = try runProcess(benchmark, ["--chart-columns"], timeout: 60)
        #expect(result.status == 0, "\(result.standardError)")
        var written: [String: [String]] = [:]
        for line in result.standardOutput.split(separator: "\n") {
            let fields = line.split(separator: "\t").map(String.init)
            if let name = fields.first { written[name] = Array(fields.dropFirst()) }
        }
        #expect(Set(written.keys) == Set(Self.charts))
        for chart in Self.charts {
            let table = try Self.table(TestMedia.path("docs/charts/\(chart).tsv"))
            #expect(table.columns == written[chart], "docs/charts/\(chart).tsv's columns are not the benchmark's")
            #expect(!table.rows.isEmpty, "docs/charts/\(chart).tsv has no rows")
            for row in table.rows {
                #expect(row.count == table.columns.count, "docs/charts/\(chart).tsv: \(row)")
            }
        }
    }

    /// A short soak with `--charts DIR`: the benchmark's table as data with the committed columns,
    /// the figures it printed, and the chart drawn.
    @Test func benchmarkWritesAndDrawsItsChartData() throws {
        try TestMedia.requireMedia()
        try Self.requireGnuplot()
        let benchmark = try Self.requireBenchmark()
        let output = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: output) }
        let result = try runProcess(benchmark, ["--soak-seconds", "3", "--streams", "1", "-i", TestMedia.h264, "--width", "640", "--height", "360",
                                                "--charts", output.path], timeout: 180)
        #expect(result.status == 0, "\(result.standardError)")
        let table = try Self.table(output.appendingPathComponent("rss.tsv").path)
        let committed = try Self.table(TestMedia.path("docs/charts/rss.tsv"))
        #expect(table.columns == committed.columns)
        // The rows are the printed samples' seconds, frames and RSS: `| 3.0 | 40 | 13.33 | 259.87 | 37 |` is `3.0 40 259.87`.
        let printed = SoakTests.rows(result.standardOutput, after: "| seconds | frames | fps | RSS MB |").map { [$0[0], $0[1], $0[3]] }
        #expect(!printed.isEmpty)
        #expect(table.rows == printed, "rss.tsv \(table.rows) is not the printed table \(printed)")
        let lines = try Self.lines(of: output.appendingPathComponent("rss.tsv").path)
        #expect(lines.contains { $0.hasPrefix("# command: ") && $0.contains("--soak-seconds 3") })
        try Self.expectChart(at: output.appendingPathComponent("rss.png").path)
    }

    // MARK: - Helpers

    /// A chart as scripts/charts.sh draws it: a PNG of 900×500, not a blank canvas (a blank
    /// 900×500 pngcairo image is ≈ 3 KB; a chart 40–70 KB), small enough to commit.
    static func expectChart(at path: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            Issue.record("no \(path)", sourceLocation: sourceLocation)
            return
        }
        let bytes = [UInt8](data)
        #expect(bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]), "\(path) is not a PNG", sourceLocation: sourceLocation)
        guard bytes.count > 24, bytes[12..<16] == [0x49, 0x48, 0x44, 0x52][...] else {
            Issue.record("\(path): no IHDR chunk first", sourceLocation: sourceLocation)
            return
        }
        func bigEndian(_ offset: Int) -> Int { bytes[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) } }
        #expect(bigEndian(16) == width && bigEndian(20) == height,
                "\(path) is \(bigEndian(16))×\(bigEndian(20)), not \(width)×\(height)", sourceLocation: sourceLocation)
        #expect(bytes.count > 15_000, "\(path) is \(bytes.count) bytes: an empty chart?", sourceLocation: sourceLocation)
        #expect(bytes.count < 100_000, "\(path) is \(bytes.count) bytes: too large to commit", sourceLocation: sourceLocation)
    }

    static func lines(of path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// A chart data file: its column names and rows (the `#` lines left out).
    static func table(_ path: String) throws -> (columns: [String], rows: [[String]]) {
        let data = try lines(of: path).filter { !$0.hasPrefix("#") && !$0.isEmpty }.map { $0.components(separatedBy: "\t") }
        return (data.first ?? [], Array(data.dropFirst()))
    }

    static func requireGnuplot() throws {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        guard path.split(separator: ":").contains(where: { FileManager.default.isExecutableFile(atPath: "\($0)/gnuplot") }) else {
            Issue.record("gnuplot is missing: run scripts/setup.sh (it installs gnuplot-nox)")
            throw CancellationError()
        }
    }

    /// The benchmark binary of the current build (beside this test bundle, else .build/debug).
    static func requireBenchmark() throws -> String {
        let beside = Bundle.main.executableURL.map {
            $0.resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("tributary-benchmark").path
        }
        let candidates = (beside.map { [$0] } ?? []) + [TestMedia.path(".build/debug/tributary-benchmark")]
        guard let binary = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            Issue.record("no tributary-benchmark binary: swift build --build-tests (or --product tributary-benchmark) first")
            throw CancellationError()
        }
        return binary
    }
}
