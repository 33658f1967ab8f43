import Logging
import Tributary

/// The live view (`GET /api/v1/view.mjpeg`, `?camera=ID` for one camera): the OSD's tiled frames
/// as JPEG, at most `maximumFPS` a second and `maximumWidth` pixels wide, encoded only while
/// someone watches. With no viewer the output stage never copies (or, on the GPU path, downloads)
/// a frame for it. A frame wanted is copied on the output thread and encoded on this view's own
/// thread (GStreamer's `jpegenc`); each viewer gets the newest JPEG and skips what it could not
/// send in time, so a slow browser never slows the pipeline or the other viewers.
public final class LiveView: TiledFrameTap, @unchecked Sendable {
    public let maximumFPS: Double
    public let maximumWidth: Int
    private let cameras: CameraService
    private let logger: Logger
    private let lock = ConditionLock()
    private var state = State()  // under `lock`
    private var thread: WorkerThread?

    private struct State {
        var viewers: [Int: Viewer] = [:]
        var nextViewer = 0
        var lastTaken: MonotonicInstant?
        /// The frame copied for the encoder, not yet taken by it.
        var pending: (image: ImageBuffer, layout: TileLayout)?
        var stopped = false
        var framesEncoded = 0
    }

    private struct Viewer {
        /// nil: the whole tiled view.
        let camera: String?
        let continuation: AsyncStream<[UInt8]>.Continuation
    }

    public init(cameras: CameraService, maximumFPS: Double = 5, maximumWidth: Int = 1280, logger: Logger) {
        self.cameras = cameras
        self.maximumFPS = maximumFPS
        self.maximumWidth = maximumWidth
        self.logger = logger
        thread = WorkerThread(name: "live-view") { [self] in encodeLoop() }
    }

    /// JPEGs encoded so far (`tributary_live_view_frames_total`): none while nobody watches.
    public var framesEncoded: Int { lock.withLock { state.framesEncoded } }
    public var viewerCount: Int { lock.withLock { state.viewers.count } }

    /// A viewer's JPEGs, the newest only, until the stream is dropped (the client went) or `stop`.
    public func frames(camera: String?) -> AsyncStream<[UInt8]> {
        AsyncStream(bufferingPolicy: .bufferingNewest(1)) { continuation in
            let id = lock.withLock { () -> Int? in
                guard !state.stopped else { return nil }
                state.nextViewer += 1
                state.viewers[state.nextViewer] = Viewer(camera: camera, continuation: continuation)
                return state.nextViewer
            }
            guard let id else { continuation.finish(); return }
            continuation.onTermination = { [weak self] _ in
                guard let self else { return }
                lock.withLock { _ = state.viewers.removeValue(forKey: id) }
            }
        }
    }

    /// Ends every viewer's stream and the encoder thread.
    public func stop() {
        let viewers = lock.withLock { () -> [Viewer] in
            state.stopped = true
            lock.broadcast()
            return Array(state.viewers.values)
        }
        for viewer in viewers { viewer.continuation.finish() }
        thread?.join()
        thread = nil
    }

    // MARK: The output thread's side

    package func wantsFrame() -> Bool {
        lock.withLock {
            guard !state.viewers.isEmpty, state.pending == nil else { return false }
            guard let last = state.lastTaken else { return true }
            return Double(MonotonicClock().now().nanoseconds(since: last)) >= 1e9 / maximumFPS
        }
    }

    package func take(_ batch: FrameBatch, _ image: ImageView) {
        let copy = image.hostCopy()
        let shown = batch.sourcesPresent.isEmpty ? batch.meta.frames.map(\.sourceID) : batch.sourcesPresent
        let layout = TileLayout(sourceIDs: shown, width: image.width, height: image.height)
        lock.withLock {
            state.lastTaken = MonotonicClock().now()
            state.pending = (copy, layout)
            lock.broadcast()
        }
    }

    // MARK: The encoder thread

    private func encodeLoop() {
        var encoders: [String: JPEGEncoder] = [:]
        while true {
            let next = lock.withLock { () -> (frame: (image: ImageBuffer, layout: TileLayout), viewers: [Viewer])? in
                while state.pending == nil && !state.stopped { lock.wait() }
                guard !state.stopped, let frame = state.pending else { return nil }
                state.pending = nil
                return (frame, Array(state.viewers.values))
            }
            guard let (frame, viewers) = next else { return }
            // One JPEG per view watched: the tiles, and each camera watched on its own.
            for camera in Set(viewers.map(\.camera)) {
                if let camera, cameras.sourceID(ofCamera: camera) == nil {
                    // The camera was removed: its viewers' streams end (their responses too).
                    for viewer in viewers where viewer.camera == camera { viewer.continuation.finish() }
                    continue
                }
                guard let jpeg = encode(frame, camera: camera, encoders: &encoders) else { continue }
                for viewer in viewers where viewer.camera == camera { viewer.continuation.yield(jpeg) }
                lock.withLock { state.framesEncoded += 1 }
            }
        }
    }

    /// The whole frame, or one camera's tile of it, at most `maximumWidth` wide.
    private func encode(_ frame: (image: ImageBuffer, layout: TileLayout), camera: String?, encoders: inout [String: JPEGEncoder]) -> [UInt8]? {
        var region = (x: 0, y: 0, width: frame.image.width, height: frame.image.height)
        if let camera {
            guard let source = cameras.sourceID(ofCamera: camera), frame.layout.sourceIDs.contains(source) else { return nil }
            region = frame.layout.tile(of: source)
        }
        guard region.width > 1, region.height > 1 else { return nil }
        let scale = min(1, Double(maximumWidth) / Double(region.width))
        // Even sizes: the encoder's 4:2:0 chroma wants them.
        let output = PixelSize(width: max(2, Int(Double(region.width) * scale) & ~1), height: max(2, Int(Double(region.height) * scale) & ~1))
        let key = "\(region.width)x\(region.height)>\(output.width)x\(output.height)"
        do {
            if encoders[key] == nil {
                if encoders.count >= 8 { encoders.removeAll() }  // grids change as cameras come and go
                encoders[key] = try JPEGEncoder(width: region.width, height: region.height, quality: 80, scaledTo: output)
            }
            return try frame.image.withHostView { whole in
                try encoders[key]!.encode(whole.cropped(x: region.x, y: region.y, width: region.width, height: region.height))
            }
        } catch {
            logger.warning("live view: \(error)")
            return nil
        }
    }
}
