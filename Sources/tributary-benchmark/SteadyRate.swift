import Tributary

/// Frames per second once running: the frames counted after the first `warmupFrames`, over the
/// time from then to the last one. Start-up (building the pipelines, creating the decoders, the
/// first frames through each stage) stays out, as it does in a long run; every pipeline figure
/// and every ceiling in the tables is measured this way, so their ratios compare like with like.
final class SteadyRate: @unchecked Sendable {
    private struct State {
        var count = 0
        var warmCount = 0
        var warmTime: MonotonicInstant?
        var lastTime: MonotonicInstant?
    }
    private let state = Locked(State())
    private let warmupFrames: Int
    private let clock = MonotonicClock()

    /// Warm-up for a run of `total` frames in batches of `batch`: a fifth of it, at least a batch.
    init(total: Int, batch: Int) { warmupFrames = max(1, batch, total / 5) }

    /// Counts `frames` more.
    func add(_ frames: Int) {
        let now = clock.now()
        state.withValue { s in
            s.count += frames
            if s.warmTime == nil, s.count >= warmupFrames {
                s.warmTime = now
                s.warmCount = s.count
            }
            s.lastTime = now
        }
    }

    func framesPerSecond() throws -> Double {
        try state.withValue { s in
            guard let warm = s.warmTime, let last = s.lastTime, last > warm, s.count > s.warmCount else {
                throw PipelineError.failed(what: "benchmark", message: "too few frames after the warm-up (\(s.count) counted, warm-up \(warmupFrames))")
            }
            return Double(s.count - s.warmCount) / (Double(last.nanoseconds(since: warm)) / 1e9)
        }
    }
}
