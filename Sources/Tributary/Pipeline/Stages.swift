/// A stage between the detector and the output: every batch, in order, on the pipeline's batch
/// thread; it changes the batch in place (metadata, pixels) or only reads it. A stage never names
/// its neighbours: the pipeline runs its list (`PipelineConfiguration` and `Pipeline.append`), so a
/// new stage (a tracker, analytics, a publisher) is a file and a line in that list.
public protocol BatchStage: AnyObject {
    func process(_ batch: inout FrameBatch) throws
    /// The run is over (every batch went through): flush what the stage holds.
    func finish() throws
}

extension BatchStage {
    public func finish() throws {}
}

/// The user's probe as a stage: its metadata and scoped, in-place access to every frame's pixels.
final class ProbeStage: BatchStage {
    private let probe: Probe
    private let times: StageTimes?

    init(_ probe: @escaping Probe, times: StageTimes?) {
        self.probe = probe
        self.times = times
    }

    func process(_ batch: inout FrameBatch) throws {
        var probeBatch = ProbeBatch(batch)
        times.measure(.probe) { probe(&probeBatch) }
        batch.meta = probeBatch.meta
    }
}

/// A closure over every batch (tests' taps).
final class ClosureStage: BatchStage {
    private let body: (inout FrameBatch) -> Void
    init(_ body: @escaping (inout FrameBatch) -> Void) { self.body = body }
    func process(_ batch: inout FrameBatch) throws { body(&batch) }
}

extension FrameSaver: BatchStage {
    public func process(_ batch: inout FrameBatch) throws { try process(batch) }
}
