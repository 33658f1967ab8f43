import Foundation
import Testing
@testable import Tributary

/// Frame metadata out: the message of a frame (read back by Foundation's JSON parser), and the app's
/// `--meta-out` checked by the independent `jsonschema` validator against the committed schema.
@Suite struct MetadataTests {
    static let checkers = TestMedia.path(".deps/checkers/bin/python")

    func parse(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test func aFramesMessageCarriesBoxesInBothScalesTrackIDsAndAnalytics() throws {
        var frame = FrameMeta(sourceID: 3, batchID: 9, frameNumber: 41, pts: 1_366_666_666, objects: [])
        frame.sourceSize = PixelSize(width: 3840, height: 2160)
        frame.inferenceDone = false
        var person = ObjectMeta(classID: 0, label: "person \"A\"\n<b>", confidence: 0.87654, rect: Rect(left: 100, top: 50, width: 20, height: 40),
                                detectorID: 1, trackerID: 12)
        person.isTracked = true
        var objectAnalytics = ObjectAnalytics()
        objectAnalytics.regions = ["door"]
        objectAnalytics.linesCrossed = ["entry"]
        person.analytics = objectAnalytics
        frame.objects = [person, ObjectMeta(classID: 2, label: "car", confidence: 0.5, rect: Rect(left: 0, top: 0, width: 1, height: 1), detectorID: 1)]
        var analytics = FrameAnalytics()
        analytics.objectsInRegion = ["door": 1]
        analytics.crossingsSoFar = ["entry": 5]
        analytics.overcrowded = ["door": false]
        frame.analytics = analytics
        let builder = FrameMessageBuilder(muxerSize: PixelSize(width: 1920, height: 1080), runID: "abc-12") { "gate \($0)" }
        let message = builder.message(frame, timestamp: "2026-12-07T12:00:00.000Z")
        #expect(message.id == "gate 3:abc-12:41")
        #expect(!message.json.contains("\n"), "one line")
        let json = try parse(message.json)
        #expect(json["message_id"] as? String == "gate 3:abc-12:41")
        #expect(json["camera_id"] as? String == "gate 3")
        #expect(json["pts_ns"] as? Int == 1_366_666_666)
        #expect(json["inference_done"] as? Bool == false)
        let objects = try #require(json["objects"] as? [[String: Any]])
        #expect(objects.count == 2)
        #expect(objects[0]["label"] as? String == "person \"A\"\n<b>", "escaped and read back as given")
        #expect(objects[0]["confidence"] as? Double == 0.8765)
        #expect(objects[0]["tracker_id"] as? Int == 12)
        #expect(objects[0]["tracked"] as? Bool == true)
        #expect(objects[1]["tracker_id"] is NSNull)
        let box = try #require(objects[0]["box"] as? [String: Double])
        let sourceBox = try #require(objects[0]["source_box"] as? [String: Double])
        #expect(box == ["left": 100, "top": 50, "width": 20, "height": 40])
        #expect(sourceBox == ["left": 200, "top": 100, "width": 40, "height": 80], "2× the muxer's size: boxes scale 2×")
        #expect((objects[0]["analytics"] as? [String: Any])?["lines_crossed"] as? [String] == ["entry"])
        #expect(((json["analytics"] as? [String: Any])?["crossings_so_far"] as? [String: Int]) == ["entry": 5])
    }

    @Test func timestampsAreRFC3339InUTCWithMilliseconds() {
        #expect(FrameMessageBuilder.timestamp(seconds: 0, milliseconds: 7) == "1970-01-01T00:00:00.007Z")
        #expect(FrameMessageBuilder.timestamp(seconds: 1_796_644_984, milliseconds: 217) == "2026-12-07T12:03:04.217Z")
    }

    @Test(.timeLimit(.minutes(3)))
    func theAppWritesOneValidLinePerFrameWithTheSamplesCounts() throws {
        try TestMedia.requireMedia()
        let directory = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("frames.jsonl").path
        let result = try runProcess(TestMedia.appBinary, ["-i", TestMedia.avi, TestMedia.h264, "--no-display", "--width", "640", "--height", "480",
                                                          "--meta-out", file], timeout: 150)
        #expect(result.status == 0, "\(result.standardError)")
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(lines.count == 2 * TestMedia.sampleFrameCount, "one line per frame of both inputs")
        let validation = try runProcess(Self.checkers, [TestMedia.path("tests/python/validate_frames.py"), file], timeout: 120)
        #expect(validation.status == 0 && validation.standardOutput.contains("valid \(2 * TestMedia.sampleFrameCount)"),
                "jsonschema: \(validation.standardOutput) \(validation.standardError)")
        // The sample's per-frame lines come in the same order as the messages (batch by batch).
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
        #expect(sourceSizes == ["768x576", "1280x720"], "each source's own size")
    }

    @Test(.timeLimit(.minutes(2)))
    func metaOutOnStandardOutputLeavesItJSONAlone() throws {
        try TestMedia.requireMedia()
        let result = try runProcess(TestMedia.appBinary, ["-i", TestMedia.avi, "--no-display", "--width", "320", "--height", "240", "--no-detector",
                                                          "--meta-out", "-"], timeout: 90)
        #expect(result.status == 0)
        let lines = result.standardOutput.split(separator: "\n")
        #expect(lines.count == TestMedia.sampleFrameCount)
        #expect(lines.allSatisfy { $0.hasPrefix("{\"schema\":\"tributary.frame/1\"") }, "only JSON lines on standard output")
        #expect(result.standardError.contains("Frame Number= 794"), "the sample's lines on standard error")
        #expect(result.standardError.contains("End-of-stream"))
    }
}
