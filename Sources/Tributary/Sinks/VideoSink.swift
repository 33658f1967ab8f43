import CGStreamer
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where the tiled frames go.
public enum SinkKind: Sendable, Equatable {
    /// Discard (fakesink, sync off): for benchmarks and headless runs.
    case discard
    /// H.264 (x264enc) in an MP4 file, finalised at end-of-stream so it plays.
    case mp4(path: String)
    /// An on-screen window; needs a display.
    case display
    /// H.264 over RTSP at `rtsp://<address>:<port>/ds-test` (gst-rtsp-server), as the sample serves it.
    case rtsp(address: String, port: Int)
}

/// The output end: `appsrc → … → sink` in its own GStreamer pipeline. Frames are written by the
/// tiler straight into GStreamer buffers, so nothing is copied on the way out.
public final class VideoSink: @unchecked Sendable {
    public let outputs: [SinkKind]
    public let width: Int
    public let height: Int
    private let pipeline: UnsafeMutablePointer<GstElement>
    private let appsrc: UnsafeMutablePointer<GstElement>
    private var lastPTS: UInt64?
    private var finished = false
    private let logger: Logger
    private var rtspServers: [RTSPServer] = []
    /// Output frames are recycled: a fresh 8 MB allocation per 1080p frame costs page faults.
    private let pool: UnsafeMutablePointer<GstBufferPool>

    /// The RTSP addresses being served, for the "launched RTSP streaming" line.
    public var rtspURLs: [String] { rtspServers.map(\.url) }

    /// - Parameter outputs: one or more; several share one frame through a `tee`.
    /// NVENC (`nvh264enc`) where the card has an encoder — GStreamer registers it only then
    /// (T4, L4, A10, RTX and other cards with NVENC; not the H100/H200, which only decode) —
    /// otherwise x264 on the CPU. Bitrate in kbit/s. nvcodec registers one encoder per GPU; `gpu`'s
    /// is used (the first GPU's on the CPU path).
    static func h264Encoder(bitrate: Int, keyInterval: Int, lowLatency: Bool, gpu: Int = 0) -> String {
        if let nvenc = GStreamer.nvidiaFactory("nvh264enc", device: gpu) {
            return "\(nvenc) bitrate=\(bitrate) gop-size=\(keyInterval)\(lowLatency ? " zerolatency=true" : "")"
        }
        return "x264enc speed-preset=superfast\(lowLatency ? " tune=zerolatency" : "") bitrate=\(bitrate) key-int-max=\(keyInterval)"
    }

    /// - Parameter gpu: the GPU whose NVENC encodes, where it has one.
    public init(outputs: [SinkKind], width: Int, height: Int, gpu: Int = 0, logger: Logger) throws {
        precondition(!outputs.isEmpty, "a sink needs an output")
        self.outputs = outputs
        self.width = width
        self.height = height
        self.logger = logger
        let frameBytes = width * height * 4
        let threads = max(1, min(4, processorCount()))
        var branches: [String] = []
        var servers: [RTSPServer] = []
        for output in outputs {
            switch output {
            case .discard:
                branches.append("fakesink sync=false async=false")
            case .mp4(let path):
                guard !path.contains("\"") else { throw PipelineError.invalidArgument("output path must not contain '\"': \(path)") }
                branches.append("""
                    videoconvert n-threads=\(threads) ! video/x-raw,format=I420 \
                    ! \(Self.h264Encoder(bitrate: 8000, keyInterval: 60, lowLatency: false, gpu: gpu)) ! h264parse ! mp4mux \
                    ! filesink location="\(path)"
                    """)
            case .display:
                branches.append("videoconvert ! autovideosink sync=false")
            case .rtsp(let address, let port):
                // As the sample does: encode here, send RTP to a local UDP port, and let the RTSP
                // server relay that port to every client.
                let udpPort = try freeUDPPort()
                servers.append(try RTSPServer(address: address, port: port, mountPath: "/ds-test", launch: """
                    ( udpsrc name=pay0 port=\(udpPort) buffer-size=524288 \
                    caps="application/x-rtp, media=video, clock-rate=90000, encoding-name=(string)H264, payload=96" )
                    """))
                branches.append("""
                    videoconvert n-threads=\(threads) ! video/x-raw,format=I420 \
                    ! \(Self.h264Encoder(bitrate: 4000, keyInterval: 30, lowLatency: true, gpu: gpu)) \
                    ! video/x-h264,profile=baseline ! rtph264pay config-interval=1 pt=96 \
                    ! udpsink host=127.0.0.1 port=\(udpPort) sync=false async=false
                    """)
            }
        }
        rtspServers = servers
        let tail = branches.count == 1 ? branches[0]
            : "tee name=split " + branches.map { "split. ! queue max-size-buffers=3 max-size-bytes=0 max-size-time=0 ! \($0)" }.joined(separator: " ")
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
        pool = gst_buffer_pool_new()
        let caps = tb_caps_raw_video("RGBA", gint(width), gint(height), 0, 1)
        let poolConfig = gst_buffer_pool_get_config(pool)
        gst_buffer_pool_config_set_params(poolConfig, caps, guint(width * height * 4), 2, 0)
        gst_caps_unref(caps)
        if gst_buffer_pool_set_config(pool, poolConfig) == 0 || gst_buffer_pool_set_active(pool, 1) == 0 {
            gst_object_unref(pool)
            gst_object_unref(appsrc)
            gst_object_unref(pipeline)
            throw PipelineError.sinkFailed(target: outputs.map(\.target).joined(separator: ", "), element: "bufferpool", message: "cannot set up the output buffer pool")
        }
        if gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE {
            let detail = GStreamer.pendingError(pipeline) ?? "state change failed"
            gst_element_set_state(pipeline, GST_STATE_NULL)
            gst_buffer_pool_set_active(pool, 0)
            gst_object_unref(pool)
            gst_object_unref(appsrc)
            gst_object_unref(pipeline)
            throw PipelineError.sinkFailed(target: target, element: "sink-bin", message: detail)
        }
    }

    deinit {
        gst_element_set_state(pipeline, GST_STATE_NULL)
        gst_buffer_pool_set_active(pool, 0)
        gst_object_unref(pool)
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
    package func pushFrame(pts: UInt64?, _ body: (MutableImageView) throws -> Void) throws {
        if let error = GStreamer.pendingError(pipeline) {
            throw PipelineError.sinkFailed(target: target, element: "sink-bin", message: error)
        }
        let bytesPerRow = width * 4
        var pooled: UnsafeMutablePointer<GstBuffer>?
        guard gst_buffer_pool_acquire_buffer(pool, &pooled, nil) == GST_FLOW_OK, let buffer = pooled else {
            throw PipelineError.sinkFailed(target: target, element: "appsrc", message: "out of memory")
        }
        var info = GstMapInfo()
        guard gst_buffer_map(buffer, &info, tb_map_write()) != 0 else {
            gst_buffer_unref(buffer)
            throw PipelineError.sinkFailed(target: target, element: "appsrc", message: "cannot map output buffer")
        }
        do {
            try body(MutableImageView(base: UnsafeMutableRawPointer(info.data), width: width, height: height, bytesPerRow: bytesPerRow))
        } catch {
            gst_buffer_unmap(buffer, &info)
            gst_buffer_unref(buffer)
            throw error
        }
        gst_buffer_unmap(buffer, &info)
        var time = pts ?? (lastPTS.map { $0 + 33_333_333 } ?? 0)
        if let last = lastPTS, time <= last { time = last + 1_000_000 }
        lastPTS = time
        tb_buffer_set_pts(buffer, GstClockTime(time))
        let flow = gst_app_src_push_buffer(tb_app_src(appsrc), buffer)  // takes the buffer
        if flow != GST_FLOW_OK && flow != GST_FLOW_FLUSHING {
            let error = GStreamer.pendingError(pipeline) ?? "flow \(flow.rawValue)"
            throw PipelineError.sinkFailed(target: target, element: "appsrc", message: error)
        }
    }

    /// Ends the stream and waits until the muxer has written its index (the MP4 then plays).
    public func finish() throws {
        guard !finished else { return }
        finished = true
        gst_app_src_end_of_stream(tb_app_src(appsrc))
        if let error = GStreamer.waitForEndOfStream(pipeline, timeoutNanoseconds: 60_000_000_000) {
            gst_element_set_state(pipeline, GST_STATE_NULL)
            throw PipelineError.sinkFailed(target: target, element: "sink-bin", message: error)
        }
        gst_element_set_state(pipeline, GST_STATE_NULL)
    }

}

extension VideoSink {
    var target: String { outputs.map(\.target).joined(separator: ", ") }
}

extension SinkKind {
    var target: String {
        switch self {
        case .discard: return "fakesink"
        case .mp4(let path): return path
        case .display: return "display"
        case .rtsp(let address, let port): return "rtsp://\(address):\(port)/ds-test"
        }
    }
}

/// A UDP port nobody is using right now on 127.0.0.1 (the kernel picks it).
func freeUDPPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    guard fd >= 0 else { throw PipelineError.invalidArgument("cannot open a UDP socket") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw PipelineError.invalidArgument("cannot bind a UDP socket on 127.0.0.1") }
    return Int(UInt16(bigEndian: address.sin_port))
}
