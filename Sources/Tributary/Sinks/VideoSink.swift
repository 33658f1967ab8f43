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

/// The output end: `appsrc → … → sink`, a GStreamer pipeline per output. Frames are written by
/// the tiler straight into GStreamer buffers, so nothing is copied on the way out. On the GPU path,
/// where the card has NVENC and one encoded output is asked for, those buffers are CUDA memory
/// in our context (`takesDeviceFrames`): the tiled frame never leaves the GPU.
public final class VideoSink: @unchecked Sendable {
    public let outputs: [SinkKind]
    public let width: Int
    public let height: Int
    /// The GPU whose memory the frames come in, when they do (`pushDeviceFrame`); nil: host memory.
    package let device: CUDADevice?
    /// One GStreamer pipeline per output, each fed the same frames: an output that fails (a full
    /// disk) stops alone and the others go on, where one `tee` would stop them all.
    private let branches: [OutputBranch]
    private var lastPTS: UInt64?
    private var finished = false
    private let logger: Logger
    private var rtspServers: [RTSPServer] = []
    /// Output frames are recycled: a fresh 8 MB allocation per 1080p frame costs page faults.
    private let pool: GstOwnedBufferPool

    /// The RTSP addresses being served, for the "launched RTSP streaming" line.
    public var rtspURLs: [String] { rtspServers.map(\.url) }

    /// Whether frames go in as CUDA memory (`pushDeviceFrame`) rather than host memory (`pushFrame`).
    public var takesDeviceFrames: Bool { device != nil }

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

    /// The key-frame interval, in frames, that puts a key frame at least once a second at
    /// `numerator`/`denominator` frames a second: a client joining a stream waits for one.
    static func keyInterval(numerator: Int, denominator: Int) -> Int {
        max(1, numerator / max(1, denominator))
    }

    /// The window sink for the session's display, chosen once when the sink is built rather than
    /// left to autovideosink, which takes the first video sink that opens — DirectFB's included,
    /// which crashes under X. `opens` says whether a factory is installed and reaches READY there
    /// (xvimagesink only with the X server's XVideo adaptors; Xvfb has none). Under X, ximagesink
    /// (which every X server takes) is tried first, though xvimagesink is preferred: the caller
    /// holds each probe's connection open until the sink has its own, and a bare X server (Xvfb)
    /// with no other client resets when its last client leaves — a connection made during the
    /// reset is refused ("Connection reset by peer"), as xvimagesink's failed probe caused.
    static func displaySink(display: String?, waylandDisplay: String?, opens: (String) -> Bool) throws -> String {
        if let display, !display.isEmpty {
            let preferred = ["xvimagesink", "ximagesink"]
            let working = Set(preferred.reversed().filter(opens))
            if let sink = preferred.first(where: working.contains) { return sink }
            throw PipelineError.sinkFailed(target: "display", element: "ximagesink",
                                           message: "no X11 video sink opens DISPLAY=\(display): is gstreamer1.0-x installed?")
        }
        if let waylandDisplay, !waylandDisplay.isEmpty {
            if let sink = ["waylandsink", "glimagesink"].first(where: opens) { return sink }
            throw PipelineError.sinkFailed(target: "display", element: "waylandsink",
                                           message: "neither waylandsink nor glimagesink opens WAYLAND_DISPLAY=\(waylandDisplay): "
                                               + "are gstreamer1.0-plugins-bad and gstreamer1.0-gl installed?")
        }
        throw PipelineError.sinkFailed(target: "display", element: "videosink", message: "no display: neither DISPLAY nor WAYLAND_DISPLAY is set")
    }

    /// The caps the appsrc offers: RGBA frames of the sink's size, in CUDA memory on the device
    /// path; variable rate (0/1) until the frame rate is known.
    static func inputCaps(onDevice: Bool, width: Int, height: Int, frameRate: (Int, Int)? = nil) -> String {
        "video/x-raw\(onDevice ? "(memory:CUDAMemory)" : ""),format=RGBA,width=\(width),height=\(height),pixel-aspect-ratio=1/1,"
            + "framerate=\(frameRate.map { "\($0.0)/\($0.1)" } ?? "0/1")"
    }

    /// GPU `gpu`'s NVENC encoder that takes RGBA frames in CUDA memory (`nvcudah264enc`, or
    /// `nvcudah264device<N>enc`), if the card has NVENC.
    package static func deviceEncoder(gpu: Int) -> String? {
        guard let encoder = GStreamer.nvidiaFactory("nvcudah264enc", device: gpu),
              GStreamer.factory(encoder, accepts: "video/x-raw(memory:CUDAMemory),format=RGBA") else { return nil }
        return encoder
    }

    /// - Parameter outputs: one or more; several share one frame through a `tee`.
    /// - Parameter gpu: the GPU whose NVENC encodes, where it has one.
    /// - Parameter device: the GPU the frames come from on the GPU path. With one encoded output
    ///   (MP4 or RTSP) and NVENC on that GPU, frames go in as CUDA memory; otherwise as host memory.
    public convenience init(outputs: [SinkKind], width: Int, height: Int, gpu: Int = 0, device: CUDADevice? = nil,
                            logger: Logger) throws {
        precondition(!outputs.isEmpty, "a sink needs an output")
        let threads = max(1, min(4, processorCount()))
        let cudaEncoder: String? = {
            guard let device, outputs.count == 1, outputs[0].isEncoded else { return nil }
            return Self.deviceEncoder(gpu: device.ordinal)
        }()
        var branches: [(output: SinkKind, tail: String)] = []
        var servers: [RTSPServer] = []
        // The display probes, held at READY (their display connections open) until the sink's
        // pipeline plays: see `displaySink`.
        var displayProbes: [GstOwnedPipeline] = []
        defer { withExtendedLifetime(displayProbes) {} }
        for output in outputs {
            switch output {
            case .discard:
                branches.append((output, "fakesink sync=false async=false"))
            case .mp4(let path):
                guard !path.contains("\"") else { throw PipelineError.invalidArgument("output path must not contain '\"': \(path)") }
                let encoder = cudaEncoder.map { "\($0) bitrate=8000 gop-size=60" } ?? """
                    videoconvert n-threads=\(threads) ! video/x-raw,format=I420 \
                    ! \(Self.h264Encoder(bitrate: 8000, keyInterval: 60, lowLatency: false, gpu: gpu))
                    """
                // async=false: no preroll to wait for, which beside the RTSP branch's synced sink
                // (blocked until PLAYING) and x264's look-ahead would never come.
                // Fragments of 1 s while recording, one normal MP4 at a clean end: a SIGKILL or a
                // power cut leaves a file that plays up to its last fragment (an MP4 whose index
                // is written only at the end does not play at all).
                branches.append((output, "\(encoder) ! h264parse ! mp4mux fragment-duration=1000 fragment-mode=first-moov-then-finalise "
                                 + "! filesink location=\"\(path)\" async=false"))
            case .display:
                let sink = try Self.displaySink(display: environment("DISPLAY"), waylandDisplay: environment("WAYLAND_DISPLAY"),
                                                opens: { factory in
                                                    guard let probe = GStreamer.elementAtReady(factory) else { return false }
                                                    displayProbes.append(probe)
                                                    return true
                                                })
                logger.info("display: \(sink)")
                branches.append((output, "videoconvert ! \(sink) sync=false"))
            case .rtsp(let address, let port):
                // As the sample does: encode here, send RTP to a local UDP port, and let the RTSP
                // server relay that port to every client. The server parses the stream again, so a
                // client's first frame is a key frame with its SPS/PPS (h264parse drops what comes
                // before them) and the SDP carries them; the jitter buffer keeps the frames' RTP
                // times (mode=none), where the depayloader alone would stamp arrival times.
                let udpPort = try freeUDPPort()
                servers.append(try RTSPServer(address: address, port: port, mountPath: "/ds-test", launch: """
                    ( udpsrc port=\(udpPort) buffer-size=524288 \
                    caps="application/x-rtp, media=video, clock-rate=90000, encoding-name=(string)H264, payload=96" \
                    ! rtpjitterbuffer mode=none latency=50 ! rtph264depay ! h264parse ! rtph264pay name=pay0 pt=96 )
                    """))
                // 30 frames between key frames until the frame rate is known (setFrameRate).
                let encoder = cudaEncoder.map { "\($0) name=rtsp-encoder bitrate=4000 gop-size=30" } ?? """
                    videoconvert n-threads=\(threads) ! video/x-raw,format=I420 \
                    ! \(Self.h264Encoder(bitrate: 4000, keyInterval: 30, lowLatency: true, gpu: gpu)) name=rtsp-encoder
                    """
                // SPS/PPS with every key frame, inserted by h264parse once an access unit: the
                // payloader's config-interval=-1 puts them before every IDR slice, splitting the
                // frames of x264's sliced threads (zerolatency) in two for decoders. sync: a
                // client gets the stream in real time, not as fast as the pipeline runs (its
                // appsrc blocking, this paces every output).
                branches.append((output, """
                    \(encoder) ! video/x-h264,profile=baseline ! h264parse config-interval=-1 ! rtph264pay pt=96 \
                    ! udpsink name=rtsp-out host=127.0.0.1 port=\(udpPort) sync=true async=false
                    """))
            }
        }
        if let cudaEncoder { logger.info("output encoded by \(cudaEncoder) from CUDA memory") }
        // x264's huge pages make RSS creep for as long as the run lasts (`disableTransparentHugePages`).
        if branches.contains(where: { $0.tail.contains("x264enc") }) { disableTransparentHugePages() }
        try self.init(width: width, height: height, branches: branches, device: cudaEncoder != nil ? device : nil,
                      rtspServers: servers, logger: logger)
    }

    /// A sink whose frames come in as CUDA memory of `device` and go to `tail` (a pipeline
    /// description that takes RGBA in CUDA memory): the GPU checks read them back through
    /// `cudadownload` on cards without NVENC.
    package convenience init(deviceTail tail: String, device: CUDADevice, width: Int, height: Int, logger: Logger) throws {
        try self.init(width: width, height: height, branches: [(.discard, tail)], device: device, rtspServers: [], logger: logger)
    }

    private init(width: Int, height: Int, branches tails: [(output: SinkKind, tail: String)], device: CUDADevice?,
                 rtspServers: [RTSPServer], logger: Logger) throws {
        self.outputs = tails.map(\.output)
        self.width = width
        self.height = height
        self.device = device
        self.logger = logger
        self.rtspServers = rtspServers
        let frameBytes = width * height * 4
        let caps = Self.inputCaps(onDevice: device != nil, width: width, height: height)
        // Every reference is held by an owner that drops it once: a throw below releases what
        // was made so far, and the deinit that may follow releases nothing twice.
        branches = try tails.enumerated().map { index, branch in
            try OutputBranch(output: branch.output, tail: branch.tail, caps: caps, frameBytes: frameBytes,
                             name: tails.count == 1 ? "sink-bin" : "sink-bin-\(index)")
        }
        let target = outputs.map(\.target).joined(separator: ", ")
        // Device frames: CUDA memory in our context, which the encoder is given too (no copy
        // between contexts).
        if let device { for branch in branches { device.shareContext(with: branch.pipeline.element) } }
        let madePool: UnsafeMutablePointer<GstBufferPool>? = if let device { device.makeGStreamerBufferPool() } else { gst_buffer_pool_new() }
        guard let madePool else {
            throw PipelineError.sinkFailed(target: target, element: "bufferpool", message: "libgstcuda cannot make a CUDA buffer pool")
        }
        pool = GstOwnedBufferPool(taking: madePool)
        let poolCaps = gst_caps_from_string(caps)
        let poolConfig = gst_buffer_pool_get_config(madePool)
        gst_buffer_pool_config_set_params(poolConfig, poolCaps, guint(frameBytes), 2, 0)
        gst_buffer_pool_config_add_option(poolConfig, "GstBufferPoolOptionVideoMeta")
        gst_caps_unref(poolCaps)
        if gst_buffer_pool_set_config(madePool, poolConfig) == 0 || gst_buffer_pool_set_active(madePool, 1) == 0 {
            throw PipelineError.sinkFailed(target: target, element: "bufferpool", message: "cannot set up the output buffer pool")
        }
        for branch in branches where gst_element_set_state(branch.pipeline.element, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE {
            throw PipelineError.sinkFailed(target: branch.output.target, element: "sink-bin",
                                           message: GStreamer.pendingError(branch.pipeline.element) ?? "state change failed")
        }
    }

    deinit {
        // The pipelines stop before the pool they draw from is deactivated; the owners then
        // drop their references (the pipelines' owners would stop them too).
        for branch in branches { branch.pipeline.stop() }
    }

    /// Announces the output frame rate (the first source's); call before the first frame. Without
    /// it the stream is variable-rate, timed by the frames' timestamps alone.
    public func setFrameRate(numerator: Int, denominator: Int) {
        guard lastPTS == nil, numerator > 0, denominator > 0 else { return }
        let caps = gst_caps_from_string(Self.inputCaps(onDevice: device != nil, width: width, height: height, frameRate: (numerator, denominator)))
        for branch in branches { gst_app_src_set_caps(tb_app_src(branch.appsrc.pointer), caps) }
        gst_caps_unref(caps)
        for branch in branches {
            guard let encoder = branch.rtspEncoder?.pointer else { continue }
            // x264enc takes no new key interval while playing: the encoder goes to READY and back,
            // which is safe as no frame has reached it yet.
            let frames = Self.keyInterval(numerator: numerator, denominator: denominator)
            gst_element_set_state(encoder, GST_STATE_READY)
            if tb_object_has_property(encoder, "key-int-max") != 0 {
                tb_object_set_uint(encoder, "key-int-max", guint(frames))
            } else if tb_object_has_property(encoder, "gop-size") != 0 {
                tb_object_set_int(encoder, "gop-size", gint(frames))
            }
            gst_element_sync_state_with_parent(encoder)
        }
    }

    /// Hands a fresh output frame in host memory to `body` to fill, then pushes it with
    /// presentation time `pts` (nanoseconds; made strictly increasing). Throws if the sink
    /// pipeline failed. Host sinks only.
    package func pushFrame(pts: UInt64?, _ body: (MutableImageView) throws -> Void) throws {
        precondition(device == nil, "this sink takes device frames (pushDeviceFrame)")
        try push(pts: pts, mapFlags: tb_map_write()) { data, _ in
            try body(MutableImageView(base: data, width: width, height: height, bytesPerRow: width * 4))
        }
    }

    /// Hands a fresh output frame in CUDA memory to `body` — its device address and bytes per
    /// row — then pushes it with presentation time `pts`. `body`'s GPU work must be finished
    /// (its stream synchronised) when it returns. Device sinks only (`takesDeviceFrames`).
    package func pushDeviceFrame(pts: UInt64?, _ body: (DevicePointer, Int) throws -> Void) throws {
        precondition(device != nil, "this sink takes host frames (pushFrame)")
        try push(pts: pts, mapFlags: tb_map_cuda_write()) { data, stride in
            try body(DevicePointer(address: UInt64(UInt(bitPattern: data))), stride ?? width * 4)
        }
    }

    /// One frame from the pool, mapped with `mapFlags` for `fill` (its address and the row
    /// stride its video meta gives), timestamped and pushed.
    /// An output whose pipeline failed (`OutputFailures`) is stopped and left out from then on;
    /// the frame still goes to the others.
    private func push(pts: UInt64?, mapFlags: GstMapFlags, _ fill: (UnsafeMutableRawPointer, Int?) throws -> Void) throws {
        var failures = branches.filter { !$0.failed }.compactMap { branch in
            GStreamer.pendingError(branch.pipeline.element).map { branch.fail(message: $0) }
        }
        var pooled: UnsafeMutablePointer<GstBuffer>?
        guard gst_buffer_pool_acquire_buffer(pool.pool, &pooled, nil) == GST_FLOW_OK, let buffer = pooled else {
            throw PipelineError.sinkFailed(target: target, element: "appsrc", message: "out of memory")
        }
        var info = GstMapInfo()
        guard gst_buffer_map(buffer, &info, mapFlags) != 0, let data = info.data else {
            gst_buffer_unref(buffer)
            throw PipelineError.sinkFailed(target: target, element: "appsrc", message: "cannot map output buffer")
        }
        do {
            try fill(UnsafeMutableRawPointer(data), tb_buffer_video_meta(buffer).map { Int($0.pointee.stride.0) })
        } catch {
            gst_buffer_unmap(buffer, &info)
            gst_buffer_unref(buffer)
            throw error
        }
        gst_buffer_unmap(buffer, &info)
        var time = pts ?? (lastPTS.map { $0 + 33_333_333 } ?? 0)
        if let last = lastPTS, time <= last { time = last + 1_000_000 }
        if lastPTS == nil { for branch in branches { branch.startRealTime(at: time) } }
        lastPTS = time
        tb_buffer_set_pts(buffer, GstClockTime(time))
        let live = branches.filter { branch in
            guard !branch.failed else { return false }
            guard let error = branch.waitForRoom() else { return true }
            failures.append(branch.fail(message: error))
            return false
        }
        // Each output's appsrc takes a reference; the frame goes back to the pool after the last.
        for _ in live.dropFirst() { gst_buffer_ref(buffer) }
        if live.isEmpty { gst_buffer_unref(buffer) }
        for branch in live {
            let flow = gst_app_src_push_buffer(tb_app_src(branch.appsrc.pointer), buffer)  // takes a reference
            if flow != GST_FLOW_OK && flow != GST_FLOW_FLUSHING {
                failures.append(branch.fail(message: GStreamer.pendingError(branch.pipeline.element) ?? "flow \(flow.rawValue)"))
            }
        }
        if !failures.isEmpty { throw OutputFailures(failures) }
    }

    /// Ends the stream and waits until the muxer has written its index (the MP4 then plays).
    /// An output that fails now is said as the others' are (`OutputFailures`).
    public func finish() throws {
        guard !finished else { return }
        finished = true
        let live = branches.filter { !$0.failed }
        for branch in live { gst_app_src_end_of_stream(tb_app_src(branch.appsrc.pointer)) }
        let failures = live.compactMap { branch -> OutputFailure? in
            defer { branch.pipeline.stop() }
            return GStreamer.waitForEndOfStream(branch.pipeline.element, timeoutNanoseconds: 60_000_000_000).map { branch.fail(message: $0) }
        }
        if !failures.isEmpty { throw OutputFailures(failures) }
    }

}

/// One output's pipeline, `appsrc → queue → the output's elements` (the sink's thread's alone).
private final class OutputBranch {
    let output: SinkKind
    let pipeline: GstOwnedPipeline
    let appsrc: GstOwned<GstElement>
    /// The RTSP output's encoder and UDP sink (key interval, clock alignment).
    let rtspEncoder: GstOwned<GstElement>?
    let rtspOut: GstOwned<GstElement>?
    private(set) var failed = false
    /// The appsrc's max-bytes: it blocks a push while it holds this much.
    private let maxBytes: UInt64

    init(output: SinkKind, tail: String, caps: String, frameBytes: Int, name: String) throws {
        self.output = output
        maxBytes = UInt64(frameBytes * 3)
        // block=true: a slow encoder holds the pipeline back instead of queueing frames without bound.
        let description = """
            appsrc name=input is-live=false block=true format=time max-bytes=\(maxBytes) caps="\(caps)" \
            ! queue max-size-buffers=3 max-size-bytes=0 max-size-time=0 ! \(tail)
            """
        pipeline = try GstOwnedPipeline(launch: description)
        tb_set_name(pipeline.element, name)
        guard let src = GStreamer.ownedChild(of: pipeline.element, named: "input") else {
            throw PipelineError.pipelineConstruction(description: description, message: "no appsrc")
        }
        appsrc = src
        rtspEncoder = GStreamer.ownedChild(of: pipeline.element, named: "rtsp-encoder")
        rtspOut = GStreamer.ownedChild(of: pipeline.element, named: "rtsp-out")
    }

    /// Waits until the appsrc has room for a frame, watching the bus: an output that failed
    /// downstream (a full disk) never takes its frames again, and a push into a full appsrc
    /// (block=true) would wait for ever. The error, if one came.
    func waitForRoom() -> String? {
        guard let bus = gst_element_get_bus(pipeline.element) else { return nil }
        defer { gst_object_unref(bus) }
        while gst_app_src_get_current_level_bytes(tb_app_src(appsrc.pointer)) >= maxBytes {
            if let message = gst_bus_timed_pop_filtered(bus, 5_000_000, GST_MESSAGE_ERROR) {
                defer { gst_message_unref(message) }
                let d = GStreamer.describe(message)
                return "\(d.element): \(d.text)"
            }
        }
        return nil
    }

    /// Stops this output for good (what it wrote stays: an MP4's fragments play) and says why.
    func fail(message: String) -> OutputFailure {
        failed = true
        pipeline.stop()
        return OutputFailure(target: output.target, message: message)
    }

    /// The RTSP output's sink plays the first frame now and the rest in real time after it: its
    /// clock started with the pipeline, which may be seconds before the first frame (sources
    /// starting, the detector loading), and the frames of those seconds would go out in a burst.
    func startRealTime(at firstPTS: UInt64) {
        guard let sink = rtspOut?.pointer else { return }
        let now = gst_element_get_current_running_time(pipeline.element)
        guard now != tb_clock_time_none() else { return }
        tb_object_set_int64(sink, "ts-offset", gint64(Int64(bitPattern: UInt64(now)) - Int64(bitPattern: firstPTS)))
    }
}

extension VideoSink {
    var target: String { outputs.map(\.target).joined(separator: ", ") }
}

extension SinkKind {
    /// Whether this output encodes H.264 (MP4, RTSP).
    var isEncoded: Bool {
        switch self {
        case .mp4, .rtsp: return true
        case .discard, .display: return false
        }
    }

    var target: String {
        switch self {
        case .discard: return "fakesink"
        case .mp4(let path): return path
        case .display: return "display"
        case .rtsp(let address, let port): return "rtsp://\(address):\(port)/ds-test"
        }
    }
}

/// An environment variable's value, nil when unset.
private func environment(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
}

/// A UDP port nobody is using right now on 127.0.0.1 (the kernel picks it).
func freeUDPPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    guard fd >= 0 else { throw PipelineError.failed(what: "UDP socket", message: "cannot open one: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw PipelineError.failed(what: "UDP socket", message: "cannot bind one on 127.0.0.1: \(String(cString: strerror(errno)))") }
    return Int(UInt16(bigEndian: address.sin_port))
}
