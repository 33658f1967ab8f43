import Logging

/// One tiled output for several pipelines (`--gpus N --single-output`): each shard hands over its
/// batches, their source ids made global (each input keeps its place in the whole run); the k-th
/// batches of every shard still running are merged into one batch and go through one tiler → OSD →
/// sink on this stage's thread, so the run has the grid it would have without sharding. Frames in
/// device memory come down to the host here (the shards may be on different GPUs), so this output
/// costs a download of every frame; one output per GPU (the default) keeps them on their GPU.
public final class SharedOutput: @unchecked Sendable {
    private let shardSources: [[Int]]
    private let logger: Logger
    /// The run's whole grid, on the host, on this stage's thread.
    private let output: HostOutput
    private let lock = ConditionLock()
    /// The merge decisions, under `lock`.
    private var merge: SharedOutputMergeStateMachine<FrameBatch>
    private var failure: (any Error)?
    private var failedOutputs: [OutputFailure] = []
    private var batchCount = 0
    private var thread: WorkerThread?
    private var frameRate: (numerator: Int, denominator: Int)?

    /// Reads the merged tiled frames it wants before the sink. Set before `start`.
    package var frameTap: (any TiledFrameTap)? {
        get { output.tap }
        set { output.tap = newValue }
    }

    /// Called with every merged tiled frame before the sink (tests read it here). Set before `start`.
    package var onTiledFrame: ((FrameBatch, ImageView) -> Void)? {
        get { output.everyTiledFrame }
        set { output.everyTiledFrame = newValue }
    }

    /// - Parameter shardSources: for each shard, the global ids of its sources in its order.
    public init(shardSources: [[Int]], tilerWidth: Int, tilerHeight: Int, muxerWidth: Int, muxerHeight: Int,
                outputs: [SinkKind], osd: Bool, logger: Logger) throws {
        let total = shardSources.reduce(0) { $0 + $1.count }
        guard total > 0 else { throw PipelineError.invalidArgument("a shared output needs sources") }
        self.shardSources = shardSources
        self.logger = logger
        output = HostOutput(layout: TileLayout(sourceCount: total, width: tilerWidth, height: tilerHeight),
                            osd: osd ? OSDRenderer() : nil,
                            sink: try VideoSink(outputs: outputs, width: tilerWidth, height: tilerHeight, logger: logger),
                            geometry: OutputGeometry(muxerWidth: muxerWidth, muxerHeight: muxerHeight), times: nil)
        // One batch a shard may have waiting before it blocks (its pace is the slowest shard's).
        merge = SharedOutputMergeStateMachine(shardCount: shardSources.count, depth: 1)
    }

    /// The run's whole grid.
    public var layout: TileLayout { output.layout }

    public var rtspURLs: [String] { output.rtspURLs }

    /// Starts the output thread (before the shards run).
    public func start() {
        thread = WorkerThread(name: "shared-output") { [self] in run() }
    }

    /// A shard's frame rate, offered before its first batch; the first one offered sets the
    /// encoder's.
    func offerFrameRate(_ rate: (numerator: Int, denominator: Int)) {
        lock.withLock { if frameRate == nil { frameRate = rate } }
    }

    /// A shard's next batch (its own source ids); waits while the shard is `depth` batches ahead.
    func push(_ batch: FrameBatch, shard: Int) {
        var global = batch
        let ids = shardSources[shard]
        for index in global.frames.indices { global.frames[index].sourceID = ids[global.frames[index].sourceID] }
        for index in global.meta.frames.indices { global.meta.frames[index].sourceID = ids[global.meta.frames[index].sourceID] }
        lock.withLock {
            while !merge.accepts(fromShard: shard) && failure == nil { lock.wait() }
            guard failure == nil else { return }  // the output failed: drop, the shards are stopping
            merge.batchArrived(global, fromShard: shard)
            lock.broadcast()
        }
    }

    /// The shard sends no more batches; the others go on without it.
    func shardFinished(_ shard: Int) {
        lock.withLock {
            merge.shardFinished(shard)
            lock.broadcast()
        }
    }

    /// Waits for the output to finish (every shard finished, the sink finalised); the first error
    /// of the output side, if any, else the outputs that failed while it went on.
    public func finish() -> (any Error)? {
        thread?.join()
        return lock.withLock { failure ?? (failedOutputs.isEmpty ? nil : OutputFailures(failedOutputs)) }
    }

    /// Whether the output side failed (shards stop when it has).
    var hasFailed: Bool { lock.withLock { failure != nil } }

    private func nextMerged() -> FrameBatch? {
        lock.withLock {
            while true {
                switch merge.next() {
                case .finished: return nil
                case .waiting: lock.wait()
                case .merged(let batches):
                    var merged = FrameBatch(batchID: batchCount, frames: [])
                    for batch in batches {
                        merged.frames += batch.frames
                        merged.meta.frames += batch.meta.frames.map { meta in
                            var meta = meta
                            meta.batchID = batchCount
                            return meta
                        }
                    }
                    batchCount += 1
                    lock.broadcast()  // queues shrank: wake the shards that wait
                    return merged
                }
            }
        }
    }

    private func run() {
        var started = false
        while let batch = nextMerged() {
            guard lock.withLock({ failure == nil }) else { continue }
            do {
                if !started {
                    output.start(frameRate: lock.withLock { frameRate })
                    started = true
                }
                var hostBatch = batch
                hostBatch.frames = try batch.frames.map { frame in
                    var host = frame
                    host.image = try frame.image.onHost()
                    return host
                }
                try output.output(hostBatch)
            } catch {
                fail(error)
            }
        }
        let failed = lock.withLock { failure != nil }
        do { try output.finish(failed: failed) } catch { fail(error) }
    }

    /// Keeps the first failure (`finish` returns it) and wakes the shards, which then stop; an
    /// output that failed alone (`OutputFailures`) is said and the rest goes on.
    private func fail(_ error: Error) {
        if let failed = error as? OutputFailures {
            lock.withLock { failedOutputs += failed.failures }
            for failure in failed.failures { logger.error("shared output: \(failure); going on without it") }
            return
        }
        let first = lock.withLock { () -> Bool in
            guard failure == nil else { return false }
            failure = error
            lock.broadcast()
            return true
        }
        if first { logger.error("shared output: \(error)") }
    }
}
