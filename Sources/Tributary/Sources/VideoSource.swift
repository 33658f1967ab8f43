import CGStreamer
import Logging

/// How a source's run ended.
public enum SourceEnd: Sendable, Equatable {
    case endOfStream
    case failed(element: String, message: String)
}

/// One input: its own GStreamer pipeline (so one bad input never stops the others)
/// `uridecodebin → videoscale → videoconvert → RGBA W×H → appsink`, pulled by its own thread.
/// On the GPU path it is `uridecodebin (NVDEC) → NV12 in CUDA memory → appsink`, and our kernel
/// converts and scales each frame into a device RGBA slot of the muxer's size.
public final class VideoSource: @unchecked Sendable {
    public let id: Int
    public let uri: SourceURI
    public let width: Int
    public let height: Int
    private let pipeline: GstOwnedPipeline
    private let appsink: GstOwned<GstElement>
    private let logger: Logger
    /// Whether the source plays in real time (rtsp, or a pipeline that cannot preroll).
    public private(set) var isLive: Bool
    private let fileLoop: Bool
    private var frameNumber = 0
    /// The frames' times across `--file-loop` restarts (the source thread's alone).
    private var timeline = LoopTimeline()
    private let negotiatedRate = Locked<(numerator: Int, denominator: Int)?>(nil)
    /// The decoded frames' own size, before scaling to the muxer's (learnt at the first frame).
    private var decodedSize: PixelSize?

    /// The frame rate the decoder reported (numerator, denominator), once the first frame is out.
    public var frameRate: (numerator: Int, denominator: Int)? { negotiatedRate.withValue { $0 } }
    private let containerFrameCount = Locked<Int?>(nil)
    /// The frames the input holds by its container (its duration × the stream's frame rate), once
    /// the first frame is out; nil where there is no end to count to (live, `--file-loop`) or the
    /// container gives no duration or the stream no fixed rate. An estimate: progress, not accounting.
    public var expectedFrameCount: Int? { containerFrameCount.withValue { $0 } }
    private var stopRequested = Locked(false)
    private let converter: DeviceFrameConverter?

    /// - Parameters:
    ///   - device: decode with NVDEC into this GPU's memory; nil decodes on the host path.
    ///   - decoderThreads: threads of a software decoder (`softwareDecoderThreads`); 0 lets it choose.
    ///   - realTime: hand frames out at their presentation times, as a camera would (a file then
    ///     plays at its own frame rate; the latency figures use it), rather than as fast as they decode.
    public init(id: Int, uri: SourceURI, width: Int, height: Int, fileLoop: Bool = false, device: CUDADevice? = nil,
                decoderThreads: Int = 0, realTime: Bool = false, logger: Logger) throws {
        self.id = id
        self.uri = uri
        self.width = width
        self.height = height
        self.logger = logger
        self.isLive = uri.isLiveByScheme
        self.fileLoop = fileLoop && uri.scheme == "file"
        converter = try device.map { try DeviceFrameConverter(device: $0, width: width, height: height) }
        if device != nil { Self.preferHardwareDecoders() }
        // On the host path appsink holds one frame ahead: the source thread pulls at once, and more
        // would only add frames in flight (8.3 MB each at 1080p RGBA). The GPU path keeps the two
        // it was measured with (device memory).
        let description = (device == nil ? Self.decodeGraph(width: width, height: height) : Self.deviceDecodeGraph())
            + " ! appsink name=sink sync=\(realTime) max-buffers=\(device == nil ? 1 : 2) drop=\(isLive ? "true" : "false") enable-last-sample=false"
        let pipeline = try GstOwnedPipeline(launch: description)
        self.pipeline = pipeline
        tb_set_name(pipeline.element, "source-bin-\(id < 10 ? "0" : "")\(id)")
        guard let decoderOwner = GStreamer.ownedChild(of: pipeline.element, named: "decoder"),
              let sinkOwner = GStreamer.ownedChild(of: pipeline.element, named: "sink") else {
            throw PipelineError.pipelineConstruction(description: description, message: "missing decoder or sink")
        }
        appsink = sinkOwner
        let decoder = decoderOwner.pointer, sink = sinkOwner.pointer
        if let device {
            if let caps = gst_caps_from_string(DeviceFrameConverter.appsinkCaps) {
                tb_object_set_caps(sink, "caps", caps)
                gst_caps_unref(caps)
            }
            // The decoders allocate in the context our kernels and ONNX Runtime use.
            if !device.shareContext(with: pipeline.element) {
                logger.warning("libgstcuda could not wrap the CUDA context: NVDEC frames may live in another context")
            }
            // nvcodec registers one decoder per GPU, and decodebin would pick the first GPU's for
            // every source: skip the other GPUs' decoders, so frames decode on our GPU's NVDEC.
            let select: @convention(c) (gpointer?, gpointer?, gpointer?, gpointer?, gpointer?) -> Int32 = { _, _, _, factory, wanted in
                guard let factory, let decoderDevice = GStreamer.cudaDeviceID(ofFactory: String(cString: tb_object_name(factory)))
                else { return 0 }  // GST_AUTOPLUG_SELECT_TRY
                return decoderDevice == Int(bitPattern: wanted) - 1 ? 0 : 2  // TRY : SKIP
            }
            _ = tb_signal_connect(decoder, "autoplug-select", unsafeBitCast(select, to: UnsafeMutableRawPointer.self),
                                  UnsafeMutableRawPointer(bitPattern: device.ordinal + 1))
        }
        if decoderThreads > 0 { Self.limitSoftwareDecoderThreads(in: pipeline.element, to: decoderThreads) }
        tb_object_set_string(decoder, "uri", uri.uri)
        // rtspsrc must drop late packets rather than buffer without bound, as the sample sets it.
        let callback: @convention(c) (UnsafeMutablePointer<GstElement>?, UnsafeMutablePointer<GstElement>?, gpointer?) -> Void = { _, source, _ in
            guard let source else { return }
            if tb_object_has_property(source, "drop-on-latency") != 0 { tb_object_set_bool(source, "drop-on-latency", 1) }
        }
        _ = tb_signal_connect(decoder, "source-setup", unsafeBitCast(callback, to: UnsafeMutableRawPointer.self), nil)
    }

    /// The decode graph of every source, up to (not including) its sink; the benchmark runs the
    /// same graph alone as the ceiling. The `uridecodebin` is named `name`; without `uri` the URI
    /// is set apart (as a property, never parsed).
    public static func decodeGraph(width: Int, height: Int, uri: String? = nil, name: String = "decoder") -> String {
        let threads = max(1, min(4, processorCount()))
        // Scale before converting: on 2 cores ≈ 40 % faster than the reverse order. No borders:
        // like nvstreammux (enable-padding=0) every input is stretched to the muxer size.
        return """
            uridecodebin name=\(name)\(uri.map { " uri=\"\($0)\"" } ?? "") ! queue name=\(name)-out max-size-buffers=2 max-size-bytes=0 max-size-time=0 \
            ! videoscale n-threads=\(threads) add-borders=false ! videoconvert n-threads=\(threads) \
            ! video/x-raw,format=RGBA,width=\(width),height=\(height),pixel-aspect-ratio=1/1
            """
    }

    /// The GPU path's decode graph up to its sink: decodebin picks NVDEC (see
    /// `preferHardwareDecoders`), whose frames stay in CUDA memory (the appsink's caps ask for it).
    public static func deviceDecodeGraph(uri: String? = nil, name: String = "decoder") -> String {
        "uridecodebin name=\(name)\(uri.map { " uri=\"\($0)\"" } ?? "") ! queue name=\(name)-out max-size-buffers=2 max-size-bytes=0 max-size-time=0"
    }

    /// Threads for each software decoder when `streams` decode at once: with at least as many
    /// streams as cores the streams already keep every core busy, and a decoder's frame threads
    /// only add frames in flight (≈ 20 MB a 1080p H.264 stream); fewer streams keep libav's choice.
    public static func softwareDecoderThreads(streams: Int) -> Int {
        streams >= processorCount() ? 1 : 0
    }

    /// Sets `max-threads` on every libav decoder that `bin` (a source's pipeline, or the
    /// benchmark's ceiling pipeline) gets, as decodebin adds it.
    public static func limitSoftwareDecoderThreads(in bin: UnsafeMutablePointer<GstElement>, to threads: Int) {
        let added: @convention(c) (gpointer?, gpointer?, gpointer?, gpointer?) -> Void = { _, _, element, threads in
            guard let element, String(cString: tb_element_factory_name(tb_element(element))).hasPrefix("avdec_"),
                  tb_object_has_property(element, "max-threads") != 0 else { return }
            tb_object_set_int(element, "max-threads", gint(Int(bitPattern: threads)))
        }
        _ = tb_signal_connect(bin, "deep-element-added", unsafeBitCast(added, to: UnsafeMutableRawPointer.self),
                              UnsafeMutableRawPointer(bitPattern: threads))
    }

    /// Ranks NVIDIA's decoders, those of every GPU, above the software ones (on a machine with
    /// libav both register), once per process.
    static func preferHardwareDecoders() {
        GStreamer.initialize()  // the registry is empty before gst_init
        hardwareDecodersPreferred.withValue { done in
            guard !done else { return }
            done = true
            var node = gst_registry_get_feature_list_by_plugin(gst_registry_get(), "nvcodec")
            let list = node
            defer { gst_plugin_feature_list_free(list) }
            while let entry = node {
                node = entry.pointee.next
                guard let feature = entry.pointee.data, String(cString: tb_object_name(feature)).hasSuffix("dec") else { continue }
                gst_plugin_feature_set_rank(OpaquePointer(feature), UInt32(GST_RANK_PRIMARY.rawValue) + 100)
            }
        }
    }
    private static let hardwareDecodersPreferred = Locked(false)

    /// Whether GStreamer has NVIDIA's H.264 decoder (nvcodec registers it only where NVDEC works).
    public static var hardwareDecoderAvailable: Bool { GStreamer.hasElement("nvh264dec") }

    /// Sets the pipeline playing; learns whether it is live. Errors surface through `run`.
    public func start() {
        let result = gst_element_set_state(pipeline.element, GST_STATE_PLAYING)
        if result == GST_STATE_CHANGE_NO_PREROLL { isLive = true }
    }

    /// Asks the source to finish: `run` stops pulling and ends as at end-of-stream; frames already
    /// handed to the muxer still flow. (An EOS event sent into the pipeline is not enough: with
    /// a demuxer pulling from `filesrc`, the source never sees it.)
    public func requestStop() {
        stopRequested.withValue { $0 = true }
    }

    /// Pulls frames until end-of-stream or an error, handing each to `deliver` (which may block:
    /// that is the back-pressure). Runs on the caller's thread.
    public func run(ledger: FrameLedger, times: StageTimes? = nil, deliver: (Frame) -> Void) -> SourceEnd {
        guard let bus = gst_element_get_bus(pipeline.element) else { return .failed(element: "pipeline", message: "no bus") }
        defer {
            gst_object_unref(bus)
            // However the run ends, the decoder's threads and buffer pools go now, not at deinit.
            pipeline.stop()
        }
        let pollNanoseconds: GstClockTime = 50_000_000
        // appsink keeps the sample it last handed out (it reuses the object), and with it a
        // reference to that frame's buffer until the next pull: a buffer taken at once is shared,
        // so probes would need an 8 MB copy of every 1080p frame. Held back until the next pull
        // (or the end), the buffer is ours alone and maps writable in place. Device frames are
        // converted at once instead. Each sample's time is placed on the timeline as it is
        // pulled, before a loop's restart can move the timeline on.
        var held: (sample: OpaquePointer, pts: UInt64?)?
        var findings = BusFindings()
        // A file's frames at a fixed rate: gaps in their timestamps are frames the decoder lost.
        var gaps: TimestampGaps?, lost = 0
        func decoded(_ frame: Frame) {
            if !isLive, let pts = frame.pts {
                if gaps == nil, let rate = frameRate { gaps = TimestampGaps(frameRate: rate) }
                if let missing = gaps?.missing(before: pts), missing > 0 {
                    if lost == 0 { logger.warning("the decoder lost \(missing) frame(s) before \(Double(pts / 1_000_000) / 1000) s: a corrupt or cut stream (source \(id): \(uri.original))") }
                    lost += missing
                    ledger.recordDecoderLoss(source: id, count: missing)
                }
            }
            ledger.recordDecoded(source: id)
        }
        defer { if lost > 0 { logger.warning("the decoder lost \(lost) frame(s) in all (source \(id): \(uri.original))") } }
        func release() {
            guard let (sample, pts) = held else { return }
            held = nil
            if let frame = times.measure(.sourceConvert, { makeFrame(consuming: sample, pts: pts) }) {
                decoded(frame)
                times.measure(.sourceDeliver) { deliver(frame) }
            }
        }
        defer { if let held { gst_sample_unref(held.sample) } }
        while true {
            if stopRequested.withValue({ $0 }) { release(); return .endOfStream }
            if let sample = times.measure(.sourcePull, { gst_app_sink_try_pull_sample(tb_app_sink(appsink.pointer), pollNanoseconds) }) {
                let pts = placeOnTimeline(sample)
                release()
                if converter == nil { held = (sample, pts); continue }
                if let frame = times.measure(.sourceConvert, { makeFrame(consuming: sample, pts: pts) }) {
                    decoded(frame)
                    times.measure(.sourceDeliver) { deliver(frame) }
                }
                continue
            }
            if let end = handleBusMessages(bus, findings: &findings) { return end }
            if gst_app_sink_is_eos(tb_app_sink(appsink.pointer)) != 0 {
                // The held last frame goes out before any seek: appsink reuses its sample object,
                // and the next pass's caps set on one still held here is a GStreamer-CRITICAL
                // (so a looping source copies one frame a pass: appsink still has its buffer).
                release()
                if fileLoop && restartFromBeginning() { continue }
                reportEndingEarly(ledger: ledger, lost: lost)
                return .endOfStream
            }
        }
    }

    /// What the bus said that matters only if the run then fails.
    private struct BusFindings {
        /// decodebin had a stream no branch took (audio beside the video, or instead of it).
        var unlinkedStream = false
        /// The stream's type when decodebin found no decoder for it.
        var undecodable: String?
    }

    /// Handles the messages queued on the bus; the run's end when one ends it (an error).
    private func handleBusMessages(_ bus: UnsafeMutablePointer<GstBus>, findings: inout BusFindings) -> SourceEnd? {
        while let message = gst_bus_pop_filtered(bus, tb_message_types_of_interest()) {
            defer { gst_message_unref(message) }
            switch tb_message_type(message) {
            case GST_MESSAGE_ERROR:
                let d = GStreamer.describe(message)
                logger.debug("source \(id) error details: \(d.debug ?? "")")
                // No stream could join the video branch and nothing was decoded: an input
                // without video (audio only), which GStreamer reports as a data-flow error.
                if findings.unlinkedStream && frameNumber == 0 {
                    return .failed(element: d.element, message: "no video stream in \(uri.original)")
                }
                if let undecodable = findings.undecodable, frameNumber == 0 {
                    return .failed(element: d.element, message: "no decoder for \(undecodable) in \(uri.original): GStreamer has no plug-in for this codec")
                }
                return .failed(element: d.element, message: d.text)
            case GST_MESSAGE_WARNING:
                let d = GStreamer.describe(message)
                // decodebin's pad that found no branch: an audio stream beside the video, or
                // instead of it (then an error follows); said only if the run fails.
                if d.text.contains("Delayed linking failed") { findings.unlinkedStream = true; break }
                if let type = Self.undecodableType(warning: d.text) { findings.undecodable = type; break }
                logger.warning("\(d.element): \(d.text) (source \(id): \(uri.original))")
            default:
                break  // EOS: the run asks the appsink
            }
        }
        return nil
    }

    /// A file that ends well before its container's duration (cut after a faststart index,
    /// which still announces the whole length): said, and the frames it lacks counted as the
    /// decoder's losses. A margin of 1 % (at least 2 frames) keeps rounding and a container
    /// whose audio outlasts its video quiet.
    private func reportEndingEarly(ledger: FrameLedger, lost: Int) {
        guard let expected = expectedFrameCount, !stopRequested.withValue({ $0 }) else { return }
        let missing = expected - frameNumber - lost
        guard missing > max(2, expected / 100) else { return }
        logger.warning("ended early: \(frameNumber) of the \(expected) frames its container announces; the file may be cut (source \(id): \(uri.original))")
        ledger.recordDecoderLoss(source: id, count: missing)
    }

    /// The stream type in decodebin's "No decoder available for type '…'" warning, its fourcc as
    /// letters where it has one (`video/x-avi-unknown, fourcc=ZZZ9`).
    static func undecodableType(warning text: String) -> String? {
        let prefix = "No decoder available for type '"
        guard let start = text.firstRange(of: prefix)?.upperBound, let end = text[start...].firstIndex(of: "'") else { return nil }
        var type = String(text[start..<end])
        if let field = type.firstRange(of: "fourcc=(int)") {
            let digits = type[field.upperBound...].prefix { $0.isNumber }
            if let value = UInt32(digits) {
                let letters = (0..<4).map { Character(Unicode.Scalar(UInt8(truncatingIfNeeded: value >> (8 * $0)))) }
                if letters.allSatisfy({ $0.isASCII && !$0.isWhitespace && ($0.isLetter || $0.isNumber) }) {
                    type.replaceSubrange(field.lowerBound..<type.index(field.upperBound, offsetBy: digits.count), with: "fourcc=\(String(letters))")
                }
            }
        }
        return type
    }

    /// `--file-loop`: seek back to the start; frame numbers keep counting, and so do the frames'
    /// times (the next pass continues where this one ended).
    private func restartFromBeginning() -> Bool {
        let flags = GstSeekFlags(rawValue: GST_SEEK_FLAG_FLUSH.rawValue | GST_SEEK_FLAG_KEY_UNIT.rawValue)
        guard gst_element_seek_simple(pipeline.element, GST_FORMAT_TIME, flags, 0) != 0 else { return false }
        timeline.restarted()
        return true
    }

    /// The sample's presentation time on the source's continuous timeline (nil: it has none).
    private func placeOnTimeline(_ sample: OpaquePointer) -> UInt64? {
        guard let buffer = gst_sample_get_buffer(sample) else { return nil }
        let pts = tb_buffer_pts(buffer), duration = tb_buffer_duration(buffer)
        return timeline.place(pts: pts == tb_clock_time_none() ? nil : UInt64(pts),
                              duration: duration == tb_clock_time_none() ? nil : UInt64(duration))
    }

    private func makeFrame(consuming sample: OpaquePointer, pts: UInt64?) -> Frame? {
        if frameNumber == 0 { decodedSize = readDecodedSize() }
        if frameNumber == 0, let caps = gst_sample_get_caps(sample), let structure = gst_caps_get_structure(caps, 0) {
            var numerator: gint = 0, denominator: gint = 0
            if gst_structure_get_fraction(structure, "framerate", &numerator, &denominator) != 0, numerator > 0, denominator > 0 {
                negotiatedRate.withValue { $0 = (Int(numerator), Int(denominator)) }
            }
        }
        if frameNumber == 0, !isLive, !fileLoop, let rate = frameRate {
            // The pipeline is playing by its first frame: the demuxer knows the duration by now.
            var duration: gint64 = 0
            if gst_element_query_duration(pipeline.element, GST_FORMAT_TIME, &duration) != 0, duration > 0 {
                containerFrameCount.withValue { $0 = Self.frameCount(durationNanoseconds: UInt64(duration), frameRate: rate) }
            }
        }
        guard let buffer = gst_sample_get_buffer(sample) else { gst_sample_unref(sample); return nil }
        let image: ImageBuffer?
        if let converter {
            do {
                image = try converter.convert(buffer, caps: gst_sample_get_caps(sample))
            } catch {
                logger.error("\(error) (source \(id): \(uri.original))")
                image = nil
            }
            gst_sample_unref(sample)
        } else {
            gst_buffer_ref(buffer)
            gst_sample_unref(sample)  // ours is now the only reference, unless appsink still holds this sample (see `run`)
            image = hostImage(taking: buffer)
        }
        guard let image else { return nil }
        defer { frameNumber += 1 }
        var frame = Frame(sourceID: id, frameNumber: frameNumber, pts: pts, image: image)
        frame.sourceSize = decodedSize
        return frame
    }

    /// The frames in `durationNanoseconds` at `frameRate`, to the nearest; nil for no frames or no rate.
    static func frameCount(durationNanoseconds: UInt64, frameRate: (numerator: Int, denominator: Int)) -> Int? {
        guard frameRate.numerator > 0, frameRate.denominator > 0 else { return nil }
        let frames = (Double(durationNanoseconds) / 1e9 * Double(frameRate.numerator) / Double(frameRate.denominator)).rounded()
        return frames >= 1 ? Int(frames) : nil
    }

    /// The size the decoder gives, from the caps entering the queue behind it.
    private func readDecodedSize() -> PixelSize? {
        guard let queue = GStreamer.ownedChild(of: pipeline.element, named: "decoder-out"),
              let pad = gst_element_get_static_pad(queue.pointer, "sink") else { return nil }
        defer { gst_object_unref(pad) }
        guard let caps = gst_pad_get_current_caps(pad) else { return nil }
        defer { gst_caps_unref(caps) }
        var width: gint = 0, height: gint = 0
        guard let structure = gst_caps_get_structure(caps, 0), gst_structure_get_int(structure, "width", &width) != 0,
              gst_structure_get_int(structure, "height", &height) != 0, width > 0, height > 0 else { return nil }
        return PixelSize(width: Int(width), height: Int(height))
    }

    /// The buffer's pixels, mapped in place (zero-copy) when the buffer is ours alone, else a
    /// private copy for probes to change.
    private func hostImage(taking buffer: UnsafeMutablePointer<GstBuffer>) -> ImageBuffer? {
        guard let memory = GstMappedBuffer(taking: buffer) else { return nil }
        let bytesPerRow = width * 4
        guard memory.size >= bytesPerRow * height else { return nil }
        let image = ImageBuffer(width: width, height: height, bytesPerRow: bytesPerRow, storage: .host(memory.data), owner: memory)
        return memory.isWritable ? image : image.hostCopy()
    }
}

/// A source's frame times made continuous over `--file-loop`'s passes: after a restart (the file
/// starts again at 0) each frame is offset so the pass begins where the last one ended. Without
/// it the times jump back at every restart, and an RTSP client sees time stand still.
struct LoopTimeline: Sendable, Equatable {
    private var offset: Int64 = 0
    /// Where the latest frame placed ends (its time plus its duration), on the continuous timeline.
    private var end: UInt64 = 0
    private var lastPlaced: UInt64?
    /// The latest frame's duration, or the gap before it where frames carry none.
    private var lastDuration: UInt64 = 0
    private var restartPending = false

    /// The file restarted from its beginning: the next frame goes where the last one ended.
    mutating func restarted() { restartPending = true }

    /// A frame's time on the continuous timeline, from its time in the file; nil stays nil.
    mutating func place(pts: UInt64?, duration: UInt64?) -> UInt64? {
        guard let pts else { return nil }
        if restartPending {
            restartPending = false
            offset = Int64(bitPattern: end) - Int64(bitPattern: pts)
        }
        let placed = UInt64(max(0, Int64(bitPattern: pts) + offset))
        lastDuration = duration ?? lastPlaced.map { placed > $0 ? placed - $0 : lastDuration } ?? 0
        lastPlaced = placed
        end = max(end, placed + lastDuration)
        return placed
    }
}

/// Online processors, for thread counts.
public func processorCount() -> Int {
    Int(g_get_num_processors())
}
