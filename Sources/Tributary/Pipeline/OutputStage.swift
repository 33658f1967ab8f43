/// The last stage of a pipeline: tiler → OSD → sink, one batch at a time on the output thread.
/// Its kind — host frames, device frames, or one shard of a shared output — is chosen once, when
/// the pipeline is built (`makeOutputStage`), never per batch; it alone knows the tiler's buffers
/// and stream.
package protocol OutputStage: AnyObject, Sendable {
    /// The stream's frame rate (the first source's), once, before the first batch.
    func start(frameRate: (numerator: Int, denominator: Int)?)
    /// Tiles, draws and hands one batch to the sink.
    func output(_ batch: FrameBatch) throws
    /// Every batch went out (`failed`: the output or another stage failed on the way): finalise
    /// the output (the MP4's index).
    func finish(failed: Bool) throws
    /// The RTSP addresses served (`--rtsp-port`).
    var rtspURLs: [String] { get }
    /// Reads the tiled frames it wants before they go to the sink (set before the first batch).
    var tap: (any TiledFrameTap)? { get set }
}

/// Sizes the output stages need besides the tiler's.
package struct OutputGeometry: Sendable {
    let muxerWidth: Int
    let muxerHeight: Int
}

/// Host frames: composited straight into the sink's buffer, then the Cairo OSD over them (so the
/// sink's time includes the compositing).
package final class HostOutput: OutputStage, @unchecked Sendable {  // the output thread's alone
    private let tiler: Tiler
    private let osd: OSDRenderer?
    private let sink: VideoSink
    private let geometry: OutputGeometry
    private let times: StageTimes?
    package var tap: (any TiledFrameTap)?

    package init(layout: TileLayout, osd: OSDRenderer?, sink: VideoSink, geometry: OutputGeometry, times: StageTimes?) {
        tiler = Tiler(layout: layout)
        self.osd = osd
        self.sink = sink
        self.geometry = geometry
        self.times = times
    }

    package var layout: TileLayout { tiler.layout }
    package var rtspURLs: [String] { sink.rtspURLs }

    package func start(frameRate: (numerator: Int, denominator: Int)?) {
        if let frameRate { sink.setFrameRate(numerator: frameRate.numerator, denominator: frameRate.denominator) }
    }

    package func output(_ batch: FrameBatch) throws {
        tiler.follow(sourceIDs: batch.sourcesPresent)
        try times.measure(.outputSink) {
            try sink.pushFrame(pts: batch.frames.compactMap(\.pts).min()) { output in
                times.measure(.outputComposite) {
                    tiler.composite(batch, osd: osd, muxerWidth: geometry.muxerWidth, muxerHeight: geometry.muxerHeight, into: output)
                }
                if let tap, tap.wantsFrame() { tap.take(batch, output.readOnly) }
            }
        }
    }

    package func finish(failed: Bool) throws { if !failed { try sink.finish() } }
}

/// Device frames: the tiler and OSD are kernels. Where the sink takes CUDA memory (NVENC) they
/// draw straight into its buffer; otherwise the tiled frame comes down once, only when a sink or
/// a tap reads pixels.
package final class DeviceOutput: OutputStage, @unchecked Sendable {  // the output thread's alone
    private let tiler: DeviceTiler
    private let osd: DeviceOSD?
    private let sink: VideoSink
    private let geometry: OutputGeometry
    private let times: StageTimes?
    /// Only a fakesink takes the frames: no download, as DeepStream's fakesink.
    private let discards: Bool
    package var tap: (any TiledFrameTap)?

    package init(device: CUDADevice, layout: TileLayout, osd: OSDRenderer?, sink: VideoSink, discards: Bool,
                 geometry: OutputGeometry, times: StageTimes?) throws {
        tiler = try DeviceTiler(device: device, layout: layout)
        self.osd = try osd.map { try DeviceOSD(device: device, renderer: $0) }
        self.sink = sink
        self.discards = discards
        self.geometry = geometry
        self.times = times
    }

    package var rtspURLs: [String] { sink.rtspURLs }

    package func start(frameRate: (numerator: Int, denominator: Int)?) {
        if let frameRate { sink.setFrameRate(numerator: frameRate.numerator, denominator: frameRate.denominator) }
    }

    package func output(_ batch: FrameBatch) throws {
        tiler.follow(sourceIDs: batch.sourcesPresent)
        let pts = batch.frames.compactMap(\.pts).min()
        if sink.takesDeviceFrames {
            try times.measure(.outputSink) {
                try sink.pushDeviceFrame(pts: pts) { address, pitch in
                    try times.measure(.outputComposite) {
                        try draw(batch, on: address, pitch: pitch)
                        try tiler.stream.synchronize()
                    }
                    if let tap, tap.wantsFrame() {
                        let copy = ImageBuffer.allocateHost(width: tiler.layout.width, height: tiler.layout.height)
                        try copy.withMutableHostView { try tiler.download(from: address, pitch: pitch, into: $0) }
                        copy.withHostView { tap.take(batch, $0) }
                    }
                }
            }
            return
        }
        let tapped = tap?.wantsFrame() == true
        let nothingReadsPixels = discards && !tapped
        try times.measure(.outputComposite) {
            try draw(batch, on: tiler.output.address, pitch: tiler.output.pitch)
            // Nothing reads the pixels: wait for the kernels (the batch's frames go back to the
            // decoders' pool after this) and skip the download.
            if nothingReadsPixels { try tiler.stream.synchronize() }
        }
        try times.measure(.outputSink) {
            try sink.pushFrame(pts: pts) { output in
                guard !nothingReadsPixels else { return }
                try tiler.download(into: output)
                if tapped { tap?.take(batch, output.readOnly) }
            }
        }
    }

    /// The tiles, then the boxes and labels over them, queued on the tiler's stream.
    private func draw(_ batch: FrameBatch, on address: DevicePointer, pitch: Int) throws {
        let layout = tiler.layout
        try tiler.composite(batch, into: address, pitch: pitch)
        try osd?.draw(batch.meta, layout: layout, muxerWidth: geometry.muxerWidth, muxerHeight: geometry.muxerHeight, on: address,
                      bytesPerRow: pitch, width: layout.width, height: layout.height, stream: tiler.stream)
    }

    package func finish(failed: Bool) throws { if !failed { try sink.finish() } }
}

/// One pipeline's share of a `SharedOutput` (`--single-output`): its batches go there, merged
/// with the other shards' and tiled once; it has no tiler or sink of its own.
final class SharedOutputShard: OutputStage, @unchecked Sendable {
    private let stage: SharedOutput
    private let shard: Int
    /// The shared output's own tap reads the merged frames; a shard has none of its own.
    var tap: (any TiledFrameTap)?

    init(_ stage: SharedOutput, shard: Int) {
        self.stage = stage
        self.shard = shard
    }

    var rtspURLs: [String] { stage.rtspURLs }

    func start(frameRate: (numerator: Int, denominator: Int)?) {
        if let frameRate { stage.offerFrameRate(frameRate) }
    }

    func output(_ batch: FrameBatch) throws {
        stage.push(batch, shard: shard)
        if stage.hasFailed { throw SharedOutputFailed() }
    }

    /// The shared output waits for every shard's end, failed or not.
    func finish(failed: Bool) throws { stage.shardFinished(shard) }
}

/// The shared output failed; it said why when it did, so the shards say it no more.
struct SharedOutputFailed: Error, CustomStringConvertible {
    var description: String { "shared output failed" }
}
