/// One decoded frame of one source, already at the muxer's size and in RGBA.
public struct Frame: Sendable {
    /// The source's index, as nvstreammux's sink pad index.
    public var sourceID: Int
    /// Per-source frame counter, from 0; keeps counting across `--file-loop` restarts.
    public var frameNumber: Int
    /// Presentation time in nanoseconds, if the source gave one.
    public var pts: UInt64?
    public var image: ImageBuffer
    /// When the frame left its decoder (the pipeline's source thread stamps it): the start of its
    /// decode → sink latency.
    public var decodedAt: MonotonicInstant?
    /// The size the source decodes at, before scaling to the muxer's (nil: not known).
    public var sourceSize: PixelSize?

    public init(sourceID: Int, frameNumber: Int, pts: UInt64?, image: ImageBuffer) {
        self.sourceID = sourceID
        self.frameNumber = frameNumber
        self.pts = pts
        self.image = image
    }
}

/// A batch as the muxer pushes it: at most one frame per source unless a source is ahead,
/// ordered by source id.
public struct FrameBatch: Sendable {
    public var batchID: Int
    public var frames: [Frame]
    public var meta: BatchMeta
    /// The sources the tiled output shows when this batch is tiled (ascending): the sources present
    /// as it left the muxer. Empty: the tiler keeps its grid.
    public var sourcesPresent: [Int] = []

    public init(batchID: Int, frames: [Frame]) {
        self.batchID = batchID
        self.frames = frames
        self.meta = BatchMeta(batchID: batchID, frames: frames.map {
            var meta = FrameMeta(sourceID: $0.sourceID, batchID: batchID, frameNumber: $0.frameNumber, pts: $0.pts, objects: [])
            meta.sourceSize = $0.sourceSize
            return meta
        })
    }
}

/// A width and a height in pixels.
public struct PixelSize: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }
}
