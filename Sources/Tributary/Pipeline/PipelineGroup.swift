/// Pipelines run as one: one per GPU (a shard of the inputs each), or any set that must run
/// together. Each runs on its own thread (the first on the caller's), the shared output they feed,
/// if any, beside them; a stop reaches every one, also one asked for before `run`. The app runs
/// its shards through it, and the benchmark its pipelines of one row.
public final class PipelineGroup: @unchecked Sendable {
    public let pipelines: [Pipeline]
    private let sharedOutput: SharedOutput?
    /// The first stop asked for, so that one asked for before `run` still reaches the pipelines.
    private let stop = Locked<Int32?>(nil)

    public init(_ pipelines: [Pipeline], sharedOutput: SharedOutput? = nil) {
        precondition(!pipelines.isEmpty, "a group needs a pipeline")
        self.pipelines = pipelines
        self.sharedOutput = sharedOutput
    }

    /// Stops every pipeline cleanly (`Pipeline.requestStop`), from any thread, before or during `run`.
    public func requestStop(signal: Int32) {
        stop.withValue { if $0 == nil { $0 = signal } }
        for pipeline in pipelines { pipeline.requestStop(signal: signal) }
    }

    /// Runs every pipeline to its end and finishes the shared output.
    /// - Returns: each pipeline's outcome, in order, and the shared output's failure, if any.
    public func run() -> (outcomes: [PipelineOutcome], sharedOutputFailure: (any Error)?) {
        if let signal = stop.withValue({ $0 }) { requestStop(signal: signal) }
        let outcomes = Locked<[Int: PipelineOutcome]>([:])
        let threads = pipelines.enumerated().dropFirst().map { index, pipeline in
            WorkerThread(name: "pipeline-\(index)") { let outcome = pipeline.run(); outcomes.withValue { $0[index] = outcome } }
        }
        sharedOutput?.start()
        let first = pipelines[0].run()
        outcomes.withValue { $0[0] = first }
        for thread in threads { thread.join() }
        let sharedFailure = sharedOutput?.finish()
        return (outcomes.withValue { $0 }.sorted { $0.key < $1.key }.map(\.value), sharedFailure)
    }
}
