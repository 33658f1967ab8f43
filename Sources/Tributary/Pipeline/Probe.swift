/// What a probe gets for each batch, between the detector and the tiler: the batch's metadata
/// (per frame: source id, frame number, PTS, objects) and scoped, in-place access to every frame's
/// pixels. Non-copyable and handed over `inout`, so a probe cannot keep it.
public struct ProbeBatch: ~Copyable {
    /// The batch's metadata; a probe may change the objects (remove, relabel, add its own).
    public var meta: BatchMeta
    private let images: [ImageBuffer]

    init(_ batch: FrameBatch) {
        meta = batch.meta
        images = batch.frames.map(\.image)
    }

    public var frameCount: Int { images.count }

    /// The pixels of frame `index` (in `meta.frames` order), changed in place: what the probe
    /// writes is what the tiler, the OSD and the sinks see.
    public func withPixels<R>(ofFrame index: Int, _ body: (inout FramePixels) throws -> R) rethrows -> R {
        try images[index].withPixels(body)
    }
}

/// A user's per-batch code.
public typealias Probe = (inout ProbeBatch) -> Void
