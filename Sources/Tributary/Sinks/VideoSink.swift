import CGStreamer
import Logging

/// Where the tiled frames go.
public enum SinkKind: Sendable, Equatable {
    /// Discard (fakesink, sync off): for benchmarks and headless runs.
    case discard
    /// H.264 (x264enc) in an MP4 file, finalised at end-of-stream so it plays.
    case mp4(path: String)
    /// An on-screen window; needs a display.
    case display
}

/// The output end: `appsrc → … → sink` in its own GStreamer pipeline. Frames are written by the
/// tiler straight into GStreamer buffers, so nothing is copied on the way out.
public final class VideoSink: @unchecked Sendable {
    public let kind: SinkKind
    public let width: Int
    public let height: Int
    private let pipeline: UnsafeMutablePointer<GstElement>
    private let appsrc: UnsafeMutablePointer<GstElement>
    private var lastPTS: UInt64?
    private var finished = false
    private let logger: Logger

    public init(kind: SinkKind, width: Int, height: Int, logger: Logger) throws {
        self.kind = kind
        self.width = width
        self.height = height
        self.logger = logger
        let frameBytes = width * height * 4
        let threads = max(1, min(4, processorCount()))
        let tail: String
        switch kind {
        case .discard:
            tail = "fakesink name=output sync=false"
        case .mp4(let path):
            guard !path.contains("\"") else { throw PipelineError.invalidArgument("output path must not contain '\"': \(path)") }
            tail = """
                videoconvert n-threads=\(threads) ! video/x-raw,format=I420 \
                ! x264enc speed-preset=superfast bitrate=8000 key-int-max=60 ! h264parse ! mp4mux name=output \
                ! filesink location="\(path)"
                """
        case .display:
            tail = "videoconvert ! autovideosink name=output sync=false"
        }
        // block=true: a slow encoder holds the pipeline back instead of queueing frames without bound.
        let description = """
            appsrc name=input is-live=false block=true format=time max-bytes=\(frameBytes * 3) \
            caps=video/x-raw,format=RGBA,width=\(width),height=\(height),framerate=0/1,pixel-aspect-ratio=1/1 \
            ! queue max-size-buffers=3 max-size-bytes=0 max-size-time=0 ! \(tail)
            """
        pipeline = try GStreamer.parseLaunch(description)
        tb_set_name(pipeline, "sink-bin")
        guard let src = GStreamer.child(of: pipeline, named: "input") else {
            gst_object_unref(pipeline)
            throw PipelineError.pipelineConstruction(description: description, message: "no appsrc")
        }
        appsrc = src
        if gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE {
            let detail = Self.pendingError(pipeline) ?? "state change failed"
            gst_element_set_state(pipeline, GST_STATE_NULL)
            gst_object_unref(appsrc)
            gst_object_unref(pipeline)
            throw PipelineError.sinkFailed(target: kind.target, element: "sink-bin", message: detail)
        }
    }

    deinit {
        gst_element_set_state(pipeline, GST_STATE_NULL)
        gst_object_unref(appsrc)
        gst_object_unref(pipeline)
    }

    /// Announces the output frame rate (the first source's); call before the first frame. Without
    /// it the stream is variable-rate, timed by the frames' timestamps alone.
    public func setFrameRate(numerator: Int, denominator: Int) {
        guard lastPTS == nil, numerator > 0, denominator > 0 else { return }
        let caps = tb_caps_raw_video("RGBA", gint(width), gint(height), gint(numerator), gint(denominator))
        gst_app_src_set_caps(tb_app_src(appsrc), caps)
        gst_caps_unref(caps)
    }

    /// Hands a fresh output frame to `body` to fill, then pushes it with presentation time `pts`
    /// (nanoseconds; made strictly increasing). Throws if the sink pipeline failed.
    public func pushFrame(pts: UInt64?, _ body: (MutableImageView) -> Void) throws {
        if let error = Self.pendingError(pipeline) {
            throw PipelineError.sinkFailed(target: kind.target, element: "sink-bin", message: error)
        }
        let bytesPerRow = width * 4
        guard let buffer = gst_buffer_new_allocate(nil, gsize(bytesPerRow * height), nil) else {
            throw PipelineError.sinkFailed(target: kind.target, element: "appsrc", message: "out of memory")
        }
        var info = GstMapInfo()
        guard gst_buffer_map(buffer, &info, tb_map_write()) != 0 else {
            gst_buffer_unref(buffer)
            throw PipelineError.sinkFailed(target: kind.target, element: "appsrc", message: "cannot map output buffer")
        }
        body(MutableImageView(base: UnsafeMutableRawPointer(info.data), width: width, height: height, bytesPerRow: bytesPerRow))
        gst_buffer_unmap(buffer, &info)
        var time = pts ?? (lastPTS.map { $0 + 33_333_333 } ?? 0)
        if let last = lastPTS, time <= last { time = last + 1_000_000 }
        lastPTS = time
        tb_buffer_set_pts(buffer, GstClockTime(time))
        let flow = gst_app_src_push_buffer(tb_app_src(appsrc), buffer)  // takes the buffer
        if flow != GST_FLOW_OK && flow != GST_FLOW_FLUSHING {
            let error = Self.pendingError(pipeline) ?? "flow \(flow.rawValue)"
            throw PipelineError.sinkFailed(target: kind.target, element: "appsrc", message: error)
        }
    }

    /// Ends the stream and waits until the muxer has written its index (the MP4 then plays).
    public func finish() throws {
        guard !finished else { return }
        finished = true
        gst_app_src_end_of_stream(tb_app_src(appsrc))
        if let error = GStreamer.waitForEndOfStream(pipeline, timeoutNanoseconds: 60_000_000_000) {
            gst_element_set_state(pipeline, GST_STATE_NULL)
            throw PipelineError.sinkFailed(target: kind.target, element: "sink-bin", message: error)
        }
        gst_element_set_state(pipeline, GST_STATE_NULL)
    }

    private static func pendingError(_ pipeline: UnsafeMutablePointer<GstElement>) -> String? {
        guard let bus = gst_element_get_bus(pipeline) else { return nil }
        defer { gst_object_unref(bus) }
        guard let message = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR) else { return nil }
        defer { gst_message_unref(message) }
        let d = GStreamer.describe(message)
        return "\(d.element): \(d.text)"
    }
}

extension SinkKind {
    var target: String {
        switch self {
        case .discard: return "fakesink"
        case .mp4(let path): return path
        case .display: return "display"
        }
    }
}
