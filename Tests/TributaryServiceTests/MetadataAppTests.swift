import Foundation
import Testing

/// The app's `--meta-out` end to end: every line checked by the independent `jsonschema` validator
/// against the committed schema, the counts against the sample's own lines. (Here, with the other
/// long process runs, one at a time: a 40-s blocking run among the unit tests starves them.)
@Suite(.serialized) struct MetadataAppTests {
    struct Result { var status: Int32; var standardOutput: String; var standardError: String }

    /// Runs a program to its end (killed past `timeout` seconds).
    func run(_ executable: String, _ arguments: [String], timeout: Double) throws -> Result {
        let process = try RunningProcess(executable, arguments)
        if !waitFor(timeout: timeout, { !process.process.isRunning }) { _ = process.stop(SIGKILL) }
        process.process.waitUntilExit()
        return Result(status: process.process.terminationStatus, standardOutput: process.standardOutput, standardError: process.standardError)
    }

    func parse(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test(.timeLimit(.minutes(3)))
    func theAppWritesOneValidLinePerFrameWithTheSamplesCounts() throws {
        try ServicePaths.requireMedia()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-meta-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("frames.jsonl").path
        // One input with the detector (≈ 40 s here): a longer blocking run starves the tests that wait
        // behind it for one of the 2 cores' test threads past their time limits.
        let result = try run(MetadataRedisTests.appBinary, ["-i", ServicePaths.path("media/vtest.avi"), "--no-display", "--width", "640", "--height", "480",
                                                          "--meta-out", file], timeout: 150)
        #expect(result.status == 0, "\(result.standardError)")
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(lines.count == 795, "one line per frame")
        let validation = try run(ServicePaths.path(".deps/checkers/bin/python"), [ServicePaths.path("tests/python/validate_frames.py"), file], timeout: 120)
        #expect(validation.status == 0 && validation.standardOutput.contains("valid \(795)"),
                "jsonschema: \(validation.standardOutput) \(validation.standardError)")
        // The sample's per-frame lines come in the same order as the messages.
        let printed = result.standardOutput.split(separator: "\n").filter { $0.hasPrefix("Frame Number=") }.map { line -> Int in
            Int(line.split(separator: " ")[6]) ?? -1
        }
        let counts = try lines.map { try (parse($0)["objects"] as? [Any])?.count ?? -1 }
        let mismatches = zip(printed, counts).filter { $0 != $1 }.count
        #expect(printed.count == counts.count && mismatches == 0,
                "per-frame object counts equal the sample's per-frame line: \(printed.count) lines, \(counts.count) messages, \(mismatches) differ")
        let ids = try lines.map { try parse($0)["message_id"] as? String ?? "" }
        #expect(Set(ids).count == ids.count, "message ids unique")
        let sourceSizes = try Set(lines.map { try (parse($0)["source_size"] as? [String: Int]).map { "\($0["width"]!)x\($0["height"]!)" } ?? "none" })
        #expect(sourceSizes == ["768x576"], "the source's own size")
    }

    @Test(.timeLimit(.minutes(2)))
    func metaOutOnStandardOutputLeavesItJSONAlone() throws {
        try ServicePaths.requireMedia()
        let result = try run(MetadataRedisTests.appBinary, ["-i", ServicePaths.path("media/vtest.avi"), "--no-display", "--width", "320", "--height", "240", "--no-detector",
                                                          "--meta-out", "-"], timeout: 90)
        #expect(result.status == 0)
        let lines = result.standardOutput.split(separator: "\n")
        #expect(lines.count == 795)
        #expect(lines.allSatisfy { $0.hasPrefix("{\"schema\":\"tributary.frame/1\"") }, "only JSON lines on standard output")
        #expect(result.standardError.contains("Frame Number= 794"), "the sample's lines on standard error")
        #expect(result.standardError.contains("End-of-stream"))
        let minimal = try run(MetadataRedisTests.appBinary, ["-i", ServicePaths.path("media/vtest.avi"), "--no-display", "--width", "320", "--height", "240", "--no-detector",
                                                           "--meta-out", "-", "--meta-format", "deepstream-minimal"], timeout: 90)
        let minimalLines = minimal.standardOutput.split(separator: "\n")
        #expect(minimalLines.count == 795 && minimalLines.allSatisfy { $0.hasPrefix("{\"version\":\"4.0\"") },
                "--meta-format deepstream-minimal: nvmsgconv's minimal payload, one per frame")
        let bad = try run(MetadataRedisTests.appBinary, ["-i", ServicePaths.path("media/vtest.avi"), "--meta-format", "xml"], timeout: 30)
        #expect(bad.status == 2 && bad.standardError.contains("--meta-format"))
    }
}
