/// Something that reads some of the tiled output's frames, e.g. a live view in a browser: asked
/// for each batch whether it wants this frame, so that a frame is copied (or, on the GPU path,
/// downloaded) only when something will read it — a view with no viewer costs nothing.
/// Both calls come on the output thread: `take` must be quick (copy what it needs and return).
package protocol TiledFrameTap: AnyObject, Sendable {
    /// Whether the next tiled frame is wanted (called once per batch: keep it cheap).
    func wantsFrame() -> Bool
    /// The tiled frame, drawn by the OSD, valid only during the call; `batch` is what it shows.
    func take(_ batch: FrameBatch, _ image: ImageView)
}

/// A tap that takes every frame into a closure (tests, the pipeline's `onTiledFrame`).
final class EveryTiledFrame: TiledFrameTap, @unchecked Sendable {
    let body: (FrameBatch, ImageView) -> Void
    init(_ body: @escaping (FrameBatch, ImageView) -> Void) { self.body = body }
    func wantsFrame() -> Bool { true }
    func take(_ batch: FrameBatch, _ image: ImageView) { body(batch, image) }
}

extension OutputStage {
    /// A closure for every tiled frame, as an `EveryTiledFrame` tap (the pipeline's and the
    /// shared output's `onTiledFrame`).
    var everyTiledFrame: ((FrameBatch, ImageView) -> Void)? {
        get { (tap as? EveryTiledFrame)?.body }
        set { tap = newValue.map(EveryTiledFrame.init) }
    }
}
