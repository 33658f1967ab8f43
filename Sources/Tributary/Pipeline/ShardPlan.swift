/// How `--gpus` / `--devices` spread the inputs over devices: contiguous, balanced blocks in input
/// order (the first `count % devices` take one more), each device with its own pipeline — muxer,
/// detector, tiler and output (or one `SharedOutput` for all); on a GPU its own CUDA context.
/// Devices with no input get no pipeline.
public struct ShardPlan: Sendable, Equatable {
    public struct Shard: Sendable, Equatable {
        public var device: ComputeDevice
        /// Its position in the plan.
        public var index: Int
        /// Indices into the run's inputs.
        public var sources: [Int]

        /// `gpu1`, or `cpu0` for the plan's first host shard: in file and folder names.
        public var name: String {
            switch device {
            case .cuda(let gpuID): return "gpu\(gpuID)"
            case .cpu: return "cpu\(index)"
            }
        }

        /// `GPU 1` or `CPU 0`: in the lines the run prints.
        public var label: String {
            switch device {
            case .cuda(let gpuID): return "GPU \(gpuID)"
            case .cpu: return "CPU \(index)"
            }
        }
    }

    public let shards: [Shard]

    public init(sourceCount: Int, devices: [ComputeDevice]) {
        precondition(!devices.isEmpty, "at least one device")
        let used = min(devices.count, sourceCount)
        var shards: [Shard] = []
        var next = 0
        for (index, device) in devices.prefix(used).enumerated() {
            let size = sourceCount / used + (index < sourceCount % used ? 1 : 0)
            shards.append(Shard(device: device, index: index, sources: Array(next..<(next + size))))
            next += size
        }
        self.shards = shards
    }

    /// The output file of one shard: the file itself with one shard, else `name-gpuN.ext`
    /// (`-cpuN` for host shards).
    public func outputPath(_ path: String, shard: Shard) -> String {
        guard shards.count > 1 else { return path }
        let suffix = "-" + shard.name
        if let dot = path.lastIndex(of: "."), !path[dot...].contains("/") {
            return String(path[..<dot]) + suffix + String(path[dot...])
        }
        return path + suffix
    }
}

extension ComputeDevice {
    /// `cpu`, `cuda:N` or `cuda` (GPU 0), as `--devices` lists them; nil for anything else.
    public init?(parsing text: some StringProtocol) {
        switch text {
        case "cpu": self = .cpu
        case "cuda": self = .cuda(gpuID: 0)
        default:
            guard text.hasPrefix("cuda:"), let id = Int(text.dropFirst(5)), id >= 0 else { return nil }
            self = .cuda(gpuID: id)
        }
    }
}
