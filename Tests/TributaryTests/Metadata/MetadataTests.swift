import Foundation
import Testing
@testable import Tributary

/// Frame metadata out: the message of a frame, read back by Foundation's JSON parser (the app's
/// `--meta-out` end to end is in the service tests' target, `MetadataAppTests`).
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
}

/// DeepStream's payload shapes (`--meta-format`), as nvmsgconv writes them.
@Suite struct DeepStreamPayloadTests {
    func frame() -> FrameMeta {
        var frame = FrameMeta(sourceID: 1, batchID: 0, frameNumber: 7, pts: nil, objects: [])
        frame.sourceSize = PixelSize(width: 3840, height: 2160)
        var person = ObjectMeta(classID: 0, label: "person", confidence: 0.9, rect: Rect(left: 10, top: 20, width: 30, height: 40), detectorID: 1, trackerID: 957)
        person.isTracked = true
        frame.objects = [person, ObjectMeta(classID: 2, label: "car", confidence: 0.6, rect: Rect(left: 100, top: 50, width: 20, height: 10), detectorID: 1)]
        return frame
    }

    let builder = FrameMessageBuilder(muxerSize: PixelSize(width: 1920, height: 1080), runID: "r-1") { "cam\($0)" }

    func parse(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test func theMinimalSchemaIsOneMessagePerFrameWithAStringPerObject() throws {
        let messages = builder.messages(frame(), format: .deepstreamMinimal, timestamp: "2026-12-07T12:00:00.000Z")
        #expect(messages.count == 1)
        let json = try parse(messages[0].json)
        #expect(json["version"] as? String == "4.0")
        #expect(json["sensorId"] as? String == "cam1")
        #expect(json["@timestamp"] as? String == "2026-12-07T12:00:00.000Z")
        #expect(json["objects"] as? [String] == ["957|20|40|80|120|person", "-1|200|100|240|120|car"], "id|left|top|right|bottom|label in source pixels")
    }

    @Test func theFullSchemaIsOneMessagePerObject() throws {
        let messages = builder.messages(frame(), format: .deepstream, timestamp: "2026-12-07T12:00:00.000Z")
        #expect(messages.map(\.id) == ["cam1:r-1:7:0", "cam1:r-1:7:1"])
        let json = try parse(messages[0].json)
        #expect(json["messageid"] as? String == "cam1:r-1:7:0")
        #expect((json["sensor"] as? [String: Any])?["id"] as? String == "cam1")
        let object = try #require(json["object"] as? [String: Any])
        #expect(object["id"] as? String == "957")
        #expect(object["bbox"] as? [String: Double] == ["topleftx": 20, "toplefty": 40, "bottomrightx": 80, "bottomrighty": 120])
        #expect(object["person"] is [String: Any])
        #expect((json["event"] as? [String: Any])?["type"] as? String == "moving", "a tracked box is a moving object")
    }
}
