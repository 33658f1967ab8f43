#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CGStreamer

/// Encodes RGBA images of one size to JPEG with GStreamer's `jpegenc`, one at a time: a
/// persistent `appsrc ! videoconvert ! jpegenc ! appsink` pipeline, fed and drained synchronously.
/// Calls from several threads are serialised by a lock (the pipeline holds one image at a time).
public final class JPEGEncoder: @unchecked Sendable {
    public let width: Int
    public let height: Int
    /// The JPEG's size: the image's, or smaller when asked (`videoscale` before the encoder).
    public let outputSize: PixelSize
    public let quality: Int
    private let pipeline: GstOwnedPipeline
    private let appsrc: GstOwned<GstElement>
    private let appsink: GstOwned<GstElement>
    /// Guards `frameIndex` and the push/pull pairing.
    private let lock = ConditionLock()
    private var frameIndex: UInt = 0
    private static let frameDuration: UInt = 33_333_333  // nominal 30 fps; only needs to increase

    private var target: String { "jpegenc \(width)x\(height)" }

    /// - Parameter scaledTo: the JPEG's size when it is not the image's (a preview).
    public init(width: Int, height: Int, quality: Int = 85, scaledTo: PixelSize? = nil) throws {
        guard width > 0, height > 0 else { throw PipelineError.invalidArgument("JPEG size must be positive: \(width)x\(height)") }
        guard (0...100).contains(quality) else { throw PipelineError.invalidArgument("JPEG quality must be 0…100: \(quality)") }
        let outputSize = scaledTo ?? PixelSize(width: width, height: height)
        guard outputSize.width > 0, outputSize.height > 0 else { throw PipelineError.invalidArgument("JPEG size must be positive: \(outputSize)") }
        self.width = width
        self.height = height
        self.outputSize = outputSize
        self.quality = quality
        let scale = scaledTo == nil ? "" : "videoscale ! video/x-raw,width=\(outputSize.width),height=\(outputSize.height) ! "
        // sync=false: nothing is live here, a sample is wanted as soon as it is encoded.
        let description = """
            appsrc name=input is-live=false format=time \
            caps=video/x-raw,format=RGBA,width=\(width),height=\(height),framerate=0/1,pixel-aspect-ratio=1/1 \
            ! \(scale)videoconvert ! jpegenc quality=\(quality) ! appsink name=output sync=false enable-last-sample=false
            """
        // Owners drop each reference once, however the init ends.
        pipeline = try GstOwnedPipeline(launch: description)
        guard let src = GStreamer.ownedChild(of: pipeline.element, named: "input") else {
            throw PipelineError.pipelineConstruction(description: description, message: "no appsrc")
        }
        appsrc = src
        guard let sink = GStreamer.ownedChild(of: pipeline.element, named: "output") else {
            throw PipelineError.pipelineConstruction(description: description, message: "no appsink")
        }
        appsink = sink
        if gst_element_set_state(pipeline.element, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE {
            throw PipelineError.sinkFailed(target: "jpegenc \(width)x\(height)", element: "jpeg-encoder",
                                           message: GStreamer.pendingError(pipeline.element) ?? "state change failed")
        }
    }

    /// The JPEG file bytes (FF D8 … FF D9) of `image`, which must be the encoder's size.
    package func encode(_ image: ImageView) throws -> [UInt8] {
        try encode(image, target: target)
    }

    /// Encodes `image` and writes it to `path`, creating or replacing the file.
    package func write(_ image: ImageView, to path: String) throws {
        let bytes = try encode(image, target: path)
        // Written under a temporary name, then renamed: a reader (or a crash) never meets half a JPEG.
        let partial = path + ".partial"
        guard let file = fopen(partial, "wb") else {
            throw PipelineError.sinkFailed(target: path, element: "file", message: "cannot open for writing: \(Self.errnoText())")
        }
        let written = bytes.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, file) }
        let writeError = written == bytes.count ? nil : Self.errnoText()
        // fclose flushes: a full disk may only show here.
        let closed = fclose(file) == 0
        if let writeError {
            unlink(partial)
            throw PipelineError.sinkFailed(target: path, element: "file", message: "short write: \(writeError)")
        }
        guard closed else {
            let error = Self.errnoText()
            unlink(partial)
            throw PipelineError.sinkFailed(target: path, element: "file", message: "cannot close: \(error)")
        }
        guard rename(partial, path) == 0 else {
            let error = Self.errnoText()
            unlink(partial)
            throw PipelineError.sinkFailed(target: path, element: "file", message: "cannot rename \(partial): \(error)")
        }
    }

    private func encode(_ image: ImageView, target: String) throws -> [UInt8] {
        guard image.width == width, image.height == height else {
            throw PipelineError.sinkFailed(target: target, element: "appsrc",
                                           message: "image is \(image.width)x\(image.height), encoder is \(width)x\(height)")
        }
        return try lock.withLock {
            if let error = GStreamer.pendingError(pipeline.element) {
                throw PipelineError.sinkFailed(target: target, element: "jpeg-encoder", message: error)
            }
            // A sample left over from an earlier timed-out call must not be taken for this image's.
            while let stale = gst_app_sink_try_pull_sample(tb_app_sink(appsink.pointer), 0) { gst_sample_unref(stale) }

            let rowBytes = width * 4
            guard let buffer = gst_buffer_new_allocate(nil, gsize(rowBytes * height), nil) else {
                throw PipelineError.sinkFailed(target: target, element: "appsrc", message: "out of memory")
            }
            var info = GstMapInfo()
            guard gst_buffer_map(buffer, &info, tb_map_write()) != 0 else {
                gst_buffer_unref(buffer)
                throw PipelineError.sinkFailed(target: target, element: "appsrc", message: "cannot map buffer")
            }
            let destination = UnsafeMutableRawPointer(info.data!)
            if image.bytesPerRow == rowBytes {
                destination.copyMemory(from: image.base, byteCount: rowBytes * height)
            } else {
                for y in 0..<height {
                    (destination + y * rowBytes).copyMemory(from: image.base + y * image.bytesPerRow, byteCount: rowBytes)
                }
            }
            gst_buffer_unmap(buffer, &info)
            tb_buffer_set_pts(buffer, GstClockTime(frameIndex * Self.frameDuration))
            tb_buffer_set_duration(buffer, GstClockTime(Self.frameDuration))
            frameIndex += 1

            let flow = gst_app_src_push_buffer(tb_app_src(appsrc.pointer), buffer)  // takes the buffer
            guard flow == GST_FLOW_OK else {
                let error = GStreamer.pendingError(pipeline.element) ?? "push failed (flow \(flow.rawValue))"
                throw PipelineError.sinkFailed(target: target, element: "appsrc", message: error)
            }
            guard let sample = gst_app_sink_try_pull_sample(tb_app_sink(appsink.pointer), 5_000_000_000) else {
                let error = GStreamer.pendingError(pipeline.element) ?? "no JPEG within 5 s"
                throw PipelineError.sinkFailed(target: target, element: "jpegenc", message: error)
            }
            defer { gst_sample_unref(sample) }
            guard let encoded = gst_sample_get_buffer(sample) else {
                throw PipelineError.sinkFailed(target: target, element: "appsink", message: "sample without buffer")
            }
            var out = GstMapInfo()
            guard gst_buffer_map(encoded, &out, tb_map_read()) != 0 else {
                throw PipelineError.sinkFailed(target: target, element: "appsink", message: "cannot map JPEG buffer")
            }
            defer { gst_buffer_unmap(encoded, &out) }
            let count = Int(out.size)
            guard count > 0, let data = out.data else {
                throw PipelineError.sinkFailed(target: target, element: "jpegenc", message: "empty JPEG")
            }
            return [UInt8](UnsafeBufferPointer(start: data, count: count))
        }
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }

}
