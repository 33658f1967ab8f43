/// The message layouts a frame's metadata can take (`--meta-format`).
public enum MetadataFormat: String, Sendable, CaseIterable {
    /// One message per frame, `docs/schema/frame-v1.json`.
    case tributary
    /// nvmsgconv's minimal schema (`payload-type=1`): one message per frame, each object a string
    /// `"<tracker id>|<left>|<top>|<right>|<bottom>|<label>"` in source pixels.
    case deepstreamMinimal = "deepstream-minimal"
    /// nvmsgconv's full schema (`payload-type=0`): one message per object, with `sensor`,
    /// `object.bbox` (source pixels) and `event`.
    case deepstream
}

extension FrameMessageBuilder {
    /// The messages of one frame in `format` (several for `deepstream`: one per object).
    public func messages(_ frame: FrameMeta, format: MetadataFormat, timestamp: String) -> [FrameMessage] {
        switch format {
        case .tributary: return [message(frame, timestamp: timestamp)]
        case .deepstreamMinimal: return [minimalMessage(frame, timestamp: timestamp)]
        case .deepstream: return frame.objects.indices.map { fullMessage(frame, object: $0, timestamp: timestamp) }
        }
    }

    /// The frame's boxes in its source's pixels: (left, top, right, bottom).
    private func sourceCorners(_ frame: FrameMeta, _ rect: Rect) -> (Double, Double, Double, Double) {
        let scaleX = Double(frame.sourceSize?.width ?? muxerSize.width) / Double(muxerSize.width)
        let scaleY = Double(frame.sourceSize?.height ?? muxerSize.height) / Double(muxerSize.height)
        let left = Double(rect.left) * scaleX, top = Double(rect.top) * scaleY
        return (left, top, left + Double(rect.width) * scaleX, top + Double(rect.height) * scaleY)
    }

    /// `{"version":"4.0","id":…,"@timestamp":…,"sensorId":…,"objects":["id|l|t|r|b|label", …]}`.
    func minimalMessage(_ frame: FrameMeta, timestamp: String) -> FrameMessage {
        let camera = cameraID(frame.sourceID)
        let id = "\(camera):\(runID):\(frame.frameNumber)"
        var json = JSONText(capacity: 160 + 48 * frame.objects.count)
        json.beginObject()
        json.field("version", "4.0")
        json.field("id", id)
        json.field("@timestamp", timestamp)
        json.field("sensorId", camera)
        json.beginArray("objects")
        for object in frame.objects {
            let (left, top, right, bottom) = sourceCorners(frame, object.rect)
            let tracker = object.trackerID.map(String.init) ?? "-1"
            let fields = [tracker, JSONText.number(left, decimals: 0), JSONText.number(top, decimals: 0),
                          JSONText.number(right, decimals: 0), JSONText.number(bottom, decimals: 0), object.label]
            json.element(fields.joined(separator: "|"))
        }
        json.endArray()
        json.endObject()
        return FrameMessage(id: id, cameraID: camera, sourceID: frame.sourceID, frameNumber: frame.frameNumber, json: json.text)
    }

    /// nvmsgconv's full schema for one object of the frame.
    func fullMessage(_ frame: FrameMeta, object index: Int, timestamp: String) -> FrameMessage {
        let camera = cameraID(frame.sourceID)
        let object = frame.objects[index]
        let id = "\(camera):\(runID):\(frame.frameNumber):\(index)"
        let (left, top, right, bottom) = sourceCorners(frame, object.rect)
        var json = JSONText(capacity: 640)
        json.beginObject()
        json.field("messageid", id)
        json.field("mdsversion", "1.0")
        json.field("@timestamp", timestamp)
        json.beginObject("sensor")
        json.field("id", camera)
        json.field("type", "Camera")
        json.field("description", "source \(frame.sourceID)")
        json.endObject()
        json.beginObject("analyticsModule")
        json.field("id", "tributary")
        json.field("description", "primary detector \(object.detectorID)")
        json.field("source", "tributary")
        json.field("version", "1.0")
        json.endObject()
        json.beginObject("object")
        json.field("id", object.trackerID.map(String.init) ?? "-1")
        json.field("confidence", Double(object.confidence), decimals: 4)
        json.beginObject(object.label)
        json.endObject()
        json.beginObject("bbox")
        json.field("topleftx", left, decimals: 0)
        json.field("toplefty", top, decimals: 0)
        json.field("bottomrightx", right, decimals: 0)
        json.field("bottomrighty", bottom, decimals: 0)
        json.endObject()
        json.endObject()
        json.beginObject("event")
        json.field("id", id)
        json.field("type", object.isTracked ? "moving" : "entry")
        json.endObject()
        json.field("videoPath", "")
        json.endObject()
        return FrameMessage(id: id, cameraID: camera, sourceID: frame.sourceID, frameNumber: frame.frameNumber, json: json.text)
    }
}
