/// A soak's judgement (issue 18): resources sampled at intervals over a long run, the trend of
/// each over the run's last part, and whether the run held — resident memory and device memory
/// not growing, open file descriptors flat, every frame accounted for. Pure: the benchmark
/// samples (`tributary-benchmark --soak-minutes`), this judges; the tests feed it made-up series.

/// One sample of a soak.
public struct SoakSample: Sendable, Equatable {
    /// Since the run started.
    public var seconds: Double
    /// Frames through the pipeline so far.
    public var frames: Int
    public var residentMegabytes: Double
    public var openFileDescriptors: Int
    /// Device memory in use (total − free), on a GPU run.
    public var gpuMegabytes: Double?

    public init(seconds: Double, frames: Int, residentMegabytes: Double, openFileDescriptors: Int, gpuMegabytes: Double? = nil) {
        self.seconds = seconds
        self.frames = frames
        self.residentMegabytes = residentMegabytes
        self.openFileDescriptors = openFileDescriptors
        self.gpuMegabytes = gpuMegabytes
    }
}

/// The least-squares line through a series' samples.
public struct SoakTrend: Sendable, Equatable {
    public var samples: Int
    /// From the first sample to the last.
    public var spanSeconds: Double
    public var mean: Double
    /// The line's slope, in the series' unit per second.
    public var slopePerSecond: Double

    /// The least-squares line through (`times`, `values`); nil for fewer than two samples or all
    /// at one time.
    public init?(times: [Double], values: [Double]) {
        precondition(times.count == values.count, "\(times.count) times for \(values.count) values")
        guard times.count >= 2, let first = times.first, let last = times.last else { return nil }
        let n = Double(times.count)
        let meanTime = times.reduce(0, +) / n
        let meanValue = values.reduce(0, +) / n
        var covariance = 0.0, variance = 0.0
        for (t, v) in zip(times, values) {
            covariance += (t - meanTime) * (v - meanValue)
            variance += (t - meanTime) * (t - meanTime)
        }
        guard variance > 0 else { return nil }
        samples = times.count
        spanSeconds = last - first
        mean = meanValue
        slopePerSecond = covariance / variance
    }

    /// The line's rise over the span as a fraction of the mean (0.02: 2 %): slope × span / mean.
    public var relativeGrowth: Double { mean == 0 ? 0 : slopePerSecond * spanSeconds / mean }

    /// The slope per 10 minutes, in the series' unit.
    public var perTenMinutes: Double { slopePerSecond * 600 }
}

/// What a soak must hold, and over which part of it.
public struct SoakLimits: Sendable, Equatable {
    /// The window judged: the run's last `windowSeconds` (20 min), or its last `windowFraction`
    /// (2/3) when that is shorter — what comes before is the warm-up (queues, pools, caches).
    public var windowSeconds = 1200.0
    public var windowFraction = 2.0 / 3.0
    /// Fewer samples in the window than this: the trends are not judged.
    public var minimumSamples = 3
    /// Resident memory: growth over the window (`SoakTrend.relativeGrowth`) below this.
    public var residentGrowth = 0.02
    /// Device memory in use, on a GPU run: growth over the window below this.
    public var gpuGrowth = 0.01

    public init(windowSeconds: Double = 1200, windowFraction: Double = 2.0 / 3.0, minimumSamples: Int = 3,
                residentGrowth: Double = 0.02, gpuGrowth: Double = 0.01) {
        self.windowSeconds = windowSeconds
        self.windowFraction = windowFraction
        self.minimumSamples = minimumSamples
        self.residentGrowth = residentGrowth
        self.gpuGrowth = gpuGrowth
    }
}

/// The judgement of a soak: each criterion measured against its goal.
public struct SoakVerdict: Sendable {
    public enum Result: String, Sendable, Equatable {
        case pass = "PASS"
        case fail = "FAIL"
        /// Too few samples in the window to say.
        case notJudged = "not judged"
    }

    public struct Criterion: Sendable, Equatable {
        public var name: String
        public var measured: String
        public var goal: String
        public var result: Result
    }

    /// The judged window's first and last sample times, and the samples in it.
    public var windowStart: Double
    public var windowEnd: Double
    public var window: [SoakSample]
    public var resident: SoakTrend?
    public var fileDescriptors: SoakTrend?
    public var gpu: SoakTrend?
    public var criteria: [Criterion]

    /// No criterion failed (one not judged does not fail the run).
    public var passed: Bool { !criteria.contains { $0.result == .fail } }

    /// - Parameters:
    ///   - samples: in time order, the first at the run's start.
    ///   - ledger: every source's counts at the end of the run.
    ///   - framesSeen: frames that reached the batch stages (the probe).
    ///   - messagesWritten: metadata messages a sink wrote (one per frame), when one ran.
    ///   - failure: what failed in the run (a source, the detector, the output), if anything.
    public init(samples: [SoakSample], ledger: [FrameLedger.SourceCounts], framesSeen: Int, messagesWritten: Int?,
                failure: String?, limits: SoakLimits = SoakLimits()) {
        let end = samples.last?.seconds ?? 0
        let length = min(limits.windowSeconds, limits.windowFraction * (end - (samples.first?.seconds ?? 0)))
        window = samples.filter { $0.seconds >= end - length - 1e-9 }
        windowStart = window.first?.seconds ?? end
        windowEnd = end
        let enough = window.count >= max(2, limits.minimumSamples)
        let times = window.map(\.seconds)
        resident = enough ? SoakTrend(times: times, values: window.map(\.residentMegabytes)) : nil
        fileDescriptors = enough ? SoakTrend(times: times, values: window.map { Double($0.openFileDescriptors) }) : nil
        let gpuValues = window.compactMap(\.gpuMegabytes)
        gpu = enough && gpuValues.count == window.count ? SoakTrend(times: times, values: gpuValues) : nil
        let tooFew = "\(window.count) sample\(window.count == 1 ? "" : "s") in the window"

        var criteria: [Criterion] = []
        // A memory's growth over the window against its limit (not judged with too few samples).
        func growth(_ name: String, _ trend: SoakTrend?, limit: Double) -> Criterion {
            let goal = "< \(Self.number(limit * 100)) %"
            guard let trend else { return Criterion(name: name, measured: tooFew, goal: goal, result: .notJudged) }
            return Criterion(
                name: name,
                measured: "\(Self.signed(trend.relativeGrowth * 100)) % (\(Self.signed(trend.perTenMinutes)) MB / 10 min, mean \(Self.number(trend.mean)) MB)",
                goal: goal, result: trend.relativeGrowth < limit ? .pass : .fail)
        }
        criteria.append(growth("RSS growth over the window", resident, limit: limits.residentGrowth))

        // Flat: the fitted line gains less than one descriptor over the window. A descriptor
        // opened and closed around one sample does not count; one per window kept open does, as
        // does a single one kept open from the window's middle (its 21–79 %) on.
        let fdGoal = "flat: the line's rise < 1"
        if let fileDescriptors {
            let counts = window.map(\.openFileDescriptors)
            let rise = fileDescriptors.slopePerSecond * fileDescriptors.spanSeconds
            criteria.append(Criterion(
                name: "open file descriptors",
                measured: "\(counts.first!) → \(counts.last!) (\(counts.min()!)–\(counts.max()!)), line \(Self.signed(rise)) over the window",
                goal: fdGoal, result: rise < 1 ? .pass : .fail))
        } else {
            criteria.append(Criterion(name: "open file descriptors", measured: tooFew, goal: fdGoal, result: .notJudged))
        }

        if samples.contains(where: { $0.gpuMegabytes != nil }) {
            criteria.append(growth("GPU memory growth over the window", gpu, limit: limits.gpuGrowth))
        }

        // Frames kept coming: each interval of the window delivered some.
        let stalls = zip(window, window.dropFirst()).filter { $1.frames <= $0.frames }
        criteria.append(Criterion(
            name: "frames in every interval",
            measured: stalls.isEmpty ? "\(window.count > 1 ? window.count - 1 : 0) intervals, none without frames"
                : "none from " + stalls.map { "\(Self.number($0.0.seconds)) to \(Self.number($0.1.seconds)) s" }.joined(separator: ", "),
            goal: "> 0 each", result: window.count < 2 ? .notJudged : stalls.isEmpty ? .pass : .fail))

        criteria.append(Self.ledgerCriterion(ledger: ledger, framesSeen: framesSeen, messagesWritten: messagesWritten))
        criteria.append(Criterion(name: "run", measured: failure ?? "no failure", goal: "no failure", result: failure == nil ? .pass : .fail))
        self.criteria = criteria
    }

    /// Every decoded frame delivered or dropped with a reason, each source; the frames delivered
    /// are the frames the stages saw, and the messages written.
    static func ledgerCriterion(ledger: [FrameLedger.SourceCounts], framesSeen: Int, messagesWritten: Int?) -> Criterion {
        let decoded = ledger.map(\.decoded).reduce(0, +)
        let delivered = ledger.map(\.delivered).reduce(0, +)
        let dropped = ledger.map(\.droppedTotal).reduce(0, +)
        let unbalanced = ledger.enumerated().filter { $0.element.unaccounted != 0 }.map(\.offset)
        var measured = "decoded \(decoded) = delivered \(delivered) + dropped \(dropped)"
        if !unbalanced.isEmpty { measured = "decoded \(decoded), delivered \(delivered), dropped \(dropped): unbalanced in source \(unbalanced.map(String.init).joined(separator: ", "))" }
        measured += "; \(framesSeen) through the stages"
        if let messagesWritten { measured += ", \(messagesWritten) metadata messages" }
        let balanced = !ledger.isEmpty && unbalanced.isEmpty && delivered == framesSeen && (messagesWritten ?? framesSeen) == framesSeen
        return Criterion(name: "frame ledger", measured: measured, goal: "balanced, each source; delivered = seen = messages",
                         result: balanced ? .pass : .fail)
    }

    /// `12.35`, `-0.5`, `3.0`.
    public static func number(_ value: Double) -> String { PerfMonitor.pythonRounded(value) }
    /// `+0.35`, `-1.2`, `+0.0`.
    public static func signed(_ value: Double) -> String {
        let text = number(value)
        return text.hasPrefix("-") ? text : "+" + text
    }
}
