#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One frame's metadata as a message (`docs/schema/frame-v1.json`): built once per frame, sent by
/// every metadata sink. `id` is `<camera_id>:<run_id>:<frame_number>`, unique across runs, so
/// consumers can drop the duplicates an at-least-once sink may send.
public struct FrameMessage: Sendable {
    public var id: String
    public var cameraID: String
    public var sourceID: Int
    public var frameNumber: Int
    /// The JSON text, one line.
    public var json: String
    /// The camera's lease (`<worker>/<epoch>`) when it was published, in worker mode: the broker
    /// takes the message only while that lease is still the camera's (`PublishFence`).
    public var fence: String? = nil
}

/// Builds the frames' messages: the camera ids, the run id and the sizes they need.
public struct FrameMessageBuilder: Sendable {
    public static let schema = "tributary.frame/1"
    public let runID: String
    public let muxerSize: PixelSize
    /// A source's camera id (the service's `camera_id`; the app's input index).
    public let cameraID: @Sendable (Int) -> String
    /// The messages' layout (`--meta-format`).
    public var format = MetadataFormat.tributary

    public init(muxerSize: PixelSize, runID: String = FrameMessageBuilder.newRunID(), cameraID: @escaping @Sendable (Int) -> String) {
        self.muxerSize = muxerSize
        self.runID = runID
        self.cameraID = cameraID
    }

    /// A run id: the start time in microseconds and the process id, in base 36.
    public static func newRunID() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        let micros = UInt64(spec.tv_sec) * 1_000_000 + UInt64(spec.tv_nsec / 1000)
        return String(micros, radix: 36) + "-" + String(getpid(), radix: 36)
    }

    /// RFC 3339 in UTC with milliseconds, e.g. `2026-12-07T12:03:04.217Z`.
    public static func timestamp(seconds: Int, milliseconds: Int) -> String {
        var time = time_t(seconds), parts = tm()
        gmtime_r(&time, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let ms = milliseconds < 10 ? "00\(milliseconds)" : milliseconds < 100 ? "0\(milliseconds)" : "\(milliseconds)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(ms)Z"
    }

    static func now() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return timestamp(seconds: spec.tv_sec, milliseconds: spec.tv_nsec / 1_000_000)
    }

    /// The messages of a batch's frames, in the batch's order, stamped now.
    public func messages(_ batch: BatchMeta) -> [FrameMessage] {
        let stamp = Self.now()
        if format == .tributary { return batch.frames.map { message($0, timestamp: stamp) } }
        return batch.frames.flatMap { messages($0, format: format, timestamp: stamp) }
    }

    public func message(_ frame: FrameMeta, timestamp: String) -> FrameMessage {
        let camera = cameraID(frame.sourceID)
        let id = "\(camera):\(runID):\(frame.frameNumber)"
        var json = JSONText(capacity: 256 + 320 * frame.objects.count)
        json.beginObject()
        json.field("schema", Self.schema)
        json.field("message_id", id)
        json.field("camera_id", camera)
        json.field("source_id", frame.sourceID)
        json.field("frame_number", frame.frameNumber)
        if let pts = frame.pts { json.field("pts_ns", pts) } else { json.null("pts_ns") }
        json.field("timestamp", timestamp)
        size(&json, "muxer_size", muxerSize)
        if let source = frame.sourceSize { size(&json, "source_size", source) } else { json.null("source_size") }
        json.field("inference_done", frame.inferenceDone)
        json.beginArray("objects")
        let scaleX = Double(frame.sourceSize?.width ?? muxerSize.width) / Double(muxerSize.width)
        let scaleY = Double(frame.sourceSize?.height ?? muxerSize.height) / Double(muxerSize.height)
        for object in frame.objects { self.object(&json, object, scaleX: scaleX, scaleY: scaleY) }
        json.endArray()
        if let analytics = frame.analytics { self.analytics(&json, analytics) }
        json.endObject()
        return FrameMessage(id: id, cameraID: camera, sourceID: frame.sourceID, frameNumber: frame.frameNumber, json: json.text)
    }

    private func size(_ json: inout JSONText, _ key: String, _ size: PixelSize) {
        json.beginObject(key)
        json.field("width", size.width)
        json.field("height", size.height)
        json.endObject()
    }

    private func box(_ json: inout JSONText, _ key: String, _ rect: Rect, scaleX: Double, scaleY: Double) {
        json.beginObject(key)
        json.field("left", Double(rect.left) * scaleX, decimals: 1)
        json.field("top", Double(rect.top) * scaleY, decimals: 1)
        json.field("width", Double(rect.width) * scaleX, decimals: 1)
        json.field("height", Double(rect.height) * scaleY, decimals: 1)
        json.endObject()
    }

    private func object(_ json: inout JSONText, _ object: ObjectMeta, scaleX: Double, scaleY: Double) {
        json.beginObject()
        json.field("class_id", object.classID)
        json.field("label", object.label)
        json.field("confidence", Double(object.confidence), decimals: 4)
        box(&json, "box", object.rect, scaleX: 1, scaleY: 1)
        box(&json, "source_box", object.rect, scaleX: scaleX, scaleY: scaleY)
        if let tracker = object.trackerID { json.field("tracker_id", tracker) } else { json.null("tracker_id") }
        json.field("tracked", object.isTracked)
        if let analytics = object.analytics {
            json.beginObject("analytics")
            json.beginArray("regions")
            for region in analytics.regions { json.element(region) }
            json.endArray()
            json.beginArray("lines_crossed")
            for line in analytics.linesCrossed { json.element(line) }
            json.endArray()
            if let direction = analytics.direction { json.field("direction", direction) } else { json.null("direction") }
            json.endObject()
        }
        json.endObject()
    }

    private func analytics(_ json: inout JSONText, _ analytics: FrameAnalytics) {
        json.beginObject("analytics")
        json.beginObject("objects_in_region")
        for (name, count) in analytics.objectsInRegion.sorted(by: { $0.key < $1.key }) { json.field(name, count) }
        json.endObject()
        json.beginObject("overcrowded")
        for (name, value) in analytics.overcrowded.sorted(by: { $0.key < $1.key }) { json.field(name, value) }
        json.endObject()
        json.beginObject("crossings_so_far")
        for (name, count) in analytics.crossingsSoFar.sorted(by: { $0.key < $1.key }) { json.field(name, count) }
        json.endObject()
        json.endObject()
    }
}
