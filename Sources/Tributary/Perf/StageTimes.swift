/// Where a pipeline's threads spend their time (`--stage-times`, as DeepStream's latency
/// measurement): seconds per stage summed over the threads that run it, so a busy stage (the
/// bottleneck) and a waiting one (starved or blocked downstream) tell apart.
public final class StageTimes: @unchecked Sendable {
    /// The stages, by the thread that runs them.
    public enum Stage: Int, CaseIterable, Sendable {
        /// Source threads: waiting in the appsink for a decoded frame.
        case sourcePull
        /// Source threads: making the frame (map; on the GPU path the NV12→RGBA kernel and its wait).
        case sourceConvert
        /// Source threads: handing the frame to the muxer (waiting there is back-pressure).
        case sourceDeliver
        /// Detection workers: waiting for the muxer's next batch.
        case batchWait
        /// Detection workers: the whole of detection, and its parts.
        case detect
        case detectPreprocess
        case detectInference
        case detectParse
        case probe
        /// Batch thread: waiting for the next batch in order from the detection workers.
        case batchInOrder
        /// Batch thread: handing the batch to the output thread (waiting is back-pressure).
        case batchHandOff
        /// Output thread: waiting for a batch.
        case outputWait
        /// Output thread: tiler, OSD and (GPU) the wait for their kernels.
        case outputComposite
        /// Output thread: the sink (download, encoder hand-off).
        case outputSink

        var label: String {
            switch self {
            case .sourcePull: return "source: wait for decoder"
            case .sourceConvert: return "source: convert"
            case .sourceDeliver: return "source: push to muxer"
            case .batchWait: return "detect: wait for muxer"
            case .detect: return "detect: total"
            case .detectPreprocess: return "detect: pre-process"
            case .detectInference: return "detect: inference"
            case .detectParse: return "detect: parse + cluster"
            case .probe: return "batch: probe"
            case .batchInOrder: return "batch: wait for detection"
            case .batchHandOff: return "batch: push to output"
            case .outputWait: return "output: wait for batch"
            case .outputComposite: return "output: tile + OSD"
            case .outputSink: return "output: sink"
            }
        }
    }

    private let clock = MonotonicClock()
    private let totals = Locked([(nanoseconds: UInt64, calls: Int)](repeating: (0, 0), count: Stage.allCases.count))

    public init() {}

    /// Runs `body`, adding its duration to `stage`.
    @inline(__always)
    func measure<R>(_ stage: Stage, _ body: () throws -> R) rethrows -> R {
        let start = clock.now()
        defer {
            let elapsed = clock.now().nanoseconds(since: start)
            totals.withValue { $0[stage.rawValue].nanoseconds += elapsed; $0[stage.rawValue].calls += 1 }
        }
        return try body()
    }

    /// One line per stage: total seconds, milliseconds per call, and the share of its threads'
    /// time (that many threads running it for `wallSeconds`).
    public func report(wallSeconds: Double, sourceThreads: Int, detectionThreads: Int) -> [String] {
        let totals = self.totals.withValue { $0 }
        var lines = ["stage                        seconds   ms/call    calls   share of its threads"]
        for stage in Stage.allCases {
            let (nanoseconds, calls) = totals[stage.rawValue]
            guard calls > 0 else { continue }
            let threads: Int
            switch stage {
            case .sourcePull, .sourceConvert, .sourceDeliver: threads = sourceThreads
            case .batchWait, .detect, .detectPreprocess, .detectInference, .detectParse: threads = detectionThreads
            default: threads = 1
            }
            let seconds = Double(nanoseconds) / 1e9
            let share = wallSeconds > 0 ? 100 * seconds / (wallSeconds * Double(threads)) : 0
            let perCall = calls > 0 ? 1000 * seconds / Double(calls) : 0
            let f = PerfMonitor.pythonRounded
            lines.append(stage.label.padding(27) + f(seconds).leftPadding(10) + f(perCall).leftPadding(10)
                         + "\(calls)".leftPadding(9) + (f(share) + " %").leftPadding(12))
        }
        return lines
    }
}

extension String {
    fileprivate func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
    fileprivate func leftPadding(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}

extension Optional where Wrapped == StageTimes {
    /// `body`, timed when stage times are on.
    @inline(__always)
    func measure<R>(_ stage: StageTimes.Stage, _ body: () throws -> R) rethrows -> R {
        guard let times = self else { return try body() }
        return try times.measure(stage, body)
    }
}
