/// How `--gpus` spreads the inputs over GPUs: contiguous, balanced blocks in input order (the
/// first `count % gpus` GPUs take one more), each GPU with its own CUDA context, muxer, detector,
/// tiler and output (or one `SharedOutput` for all). GPUs with no input get no pipeline.
public struct ShardPlan: Sendable, Equatable {
    public struct Shard: Sendable, Equatable {
        public var gpuID: Int
        /// Indices into the run's inputs.
        public var sources: [Int]
    }

    public let shards: [Shard]

    public init(sourceCount: Int, gpuIDs: [Int]) {
        precondition(!gpuIDs.isEmpty, "at least one GPU")
        let gpuCount = min(gpuIDs.count, sourceCount)
        var shards: [Shard] = []
        var next = 0
        for (index, gpuID) in gpuIDs.prefix(gpuCount).enumerated() {
            let size = sourceCount / gpuCount + (index < sourceCount % gpuCount ? 1 : 0)
            shards.append(Shard(gpuID: gpuID, sources: Array(next..<(next + size))))
            next += size
        }
        self.shards = shards
    }

    /// The output file of one shard: the file itself with one shard, else `name-gpuN.ext`.
    public func outputPath(_ path: String, shard: Shard) -> String {
        guard shards.count > 1 else { return path }
        let suffix = "-gpu\(shard.gpuID)"
        if let dot = path.lastIndex(of: "."), !path[dot...].contains("/") {
            return String(path[..<dot]) + suffix + String(path[dot...])
        }
        return path + suffix
    }
}
