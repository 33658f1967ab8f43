#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Saves chosen frames as JPEG, as the base sample (`deepstream-imagedata-multistream`) does: for
/// each stream, when its frame counter is a multiple of `everyNthFrame` and the frame holds
/// objects that `selects`, a copy of the frame gets those objects' boxes and `caption`s drawn on it
/// and is written as `DIR/stream_<i>/frame_<n>.jpg`. The sample's rule is the app's.
public final class FrameSaver: @unchecked Sendable {
    public let folder: String
    public let everyNthFrame: Int
    private let selects: @Sendable (ObjectMeta) -> Bool
    private let caption: @Sendable (ObjectMeta) -> String
    /// Frames seen per source id (the batch thread's alone).
    private var frameCounts: [Int: Int] = [:]
    private var encoder: JPEGEncoder?
    private let osd = OSDRenderer(borderWidth: 2, fontSize: 14)
    /// Files written, for the summary and tests.
    public private(set) var savedPaths: [String] = []
    /// Frames chosen but not written (a full disk): the first failure is said, the run goes on.
    public private(set) var unsavedFrames = 0

    /// Refuses a folder that already exists, with the sample's message, then creates it and one
    /// `stream_<i>` folder per source.
    public init(folder: String, sourceCount: Int, everyNthFrame: Int, selects: @escaping @Sendable (ObjectMeta) -> Bool,
                caption: @escaping @Sendable (ObjectMeta) -> String) throws {
        self.everyNthFrame = everyNthFrame
        self.selects = selects
        self.caption = caption
        var status = stat()
        if stat(folder, &status) == 0 {
            throw PipelineError.invalidArgument("The output folder \(folder) already exists. Please remove it first.")
        }
        guard mkdir(folder, 0o755) == 0 else {
            throw PipelineError.invalidArgument("cannot create the output folder \(folder): \(String(cString: strerror(errno)))")
        }
        self.folder = folder
        for id in 0..<sourceCount { try addSource(id) }
    }

    /// The `stream_<id>` folder of a source (one added while the pipeline runs, from any thread:
    /// it touches no state of the batch thread's).
    public func addSource(_ id: Int) throws {
        guard mkdir("\(folder)/stream_\(id)", 0o755) == 0 else {
            throw PipelineError.invalidArgument("cannot create \(folder)/stream_\(id): \(String(cString: strerror(errno)))")
        }
    }

    /// Looks at every frame of the batch (after the probe: the saved frames show its edit). A
    /// frame that cannot be written is skipped; the first such is thrown as `OutputFailures`
    /// after the batch, so the run goes on.
    public func process(_ batch: FrameBatch) throws {
        var failure: OutputFailure?
        for (frame, meta) in zip(batch.frames, batch.meta.frames) {
            let seen = frameCounts[frame.sourceID, default: 0]
            frameCounts[frame.sourceID] = seen + 1
            guard seen % everyNthFrame == 0 else { continue }
            let chosen = meta.objects.filter(selects)
            guard !chosen.isEmpty else { continue }
            // A private copy to draw on: a download for device frames.
            let copy = frame.image.isHost ? frame.image.hostCopy() : try frame.image.onHost()
            copy.withMutableHostView { target in
                for object in chosen {
                    osd.drawBox(object.rect, label: caption(object), colour: OSDLayout.colour(forClass: object.classID), on: target)
                }
            }
            if encoder == nil { encoder = try JPEGEncoder(width: copy.width, height: copy.height) }
            let path = "\(folder)/stream_\(frame.sourceID)/frame_\(meta.frameNumber).jpg"
            do {
                try copy.withHostView { try encoder!.write($0, to: path) }
                savedPaths.append(path)
            } catch {
                unsavedFrames += 1
                guard unsavedFrames == 1 else { continue }
                let reason = if case PipelineError.sinkFailed(_, _, let message) = error { message } else { "\(error)" }
                failure = OutputFailure(target: path, message: "\(reason); the frames that cannot be written are skipped")
            }
        }
        if let failure { throw OutputFailures([failure]) }
    }
}
