/// Per-stream frame rates as the sample's `GETFPS` computes them: a stream's clock starts at its
/// first frame; each report divides the frames counted since the last report by the time since
/// then, and restarts the count.
public final class PerfMonitor: @unchecked Sendable {
    private struct Stream {
        var isFirst = true
        var frameCount = 0
        var start: MonotonicInstant
    }

    private let clock: TimeSource
    private let streams: Locked<[Stream]>

    public init(streamCount: Int, clock: TimeSource = MonotonicClock()) {
        self.clock = clock
        let now = clock.now()
        streams = Locked(Array(repeating: Stream(start: now), count: streamCount))
    }

    /// Counts one frame of `stream`.
    public func frameArrived(stream: Int) {
        let now = clock.now()
        streams.withValue { s in
            if s[stream].isFirst {
                s[stream].isFirst = false
                s[stream].start = now
            } else {
                s[stream].frameCount += 1
            }
        }
    }

    /// Frames per second of every stream since the last call, and restarts the counts.
    public func takeRates() -> [Double] {
        let now = clock.now()
        return streams.withValue { s in
            s.indices.map { i in
                let seconds = Double(now.nanoseconds(since: s[i].start)) / 1e9
                let fps = seconds > 0 ? Double(s[i].frameCount) / seconds : 0
                s[i].frameCount = 0
                s[i].start = now
                return fps
            }
        }
    }

    /// The sample's line: `**PERF:  {'stream0': 29.97, 'stream1': 30.0} `.
    public static func perfLine(_ rates: [Double]) -> String {
        let entries = rates.enumerated().map { "'stream\($0.offset)': \(pythonRounded($0.element))" }
        return "**PERF:  {" + entries.joined(separator: ", ") + "} "
    }

    /// Python's `repr(round(x, 2))`: `30.0`, `29.9`, `29.97`.
    public static func pythonRounded(_ value: Double) -> String {
        guard value.isFinite else { return value.isNaN ? "nan" : "inf" }
        let hundredths = Int((abs(value) * 100).rounded(.toNearestOrEven))
        let sign = value < 0 && hundredths > 0 ? "-" : ""
        let whole = hundredths / 100, fraction = hundredths % 100
        if fraction == 0 { return "\(sign)\(whole).0" }
        if fraction % 10 == 0 { return "\(sign)\(whole).\(fraction / 10)" }
        return "\(sign)\(whole).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}

/// Calls `body` every `intervalNanoseconds` on its own thread until stopped.
public final class PeriodicTask: @unchecked Sendable {
    private let lock = ConditionLock()
    private var stopped = false
    private var thread: WorkerThread?

    public init(name: String, intervalNanoseconds: UInt64, clock: MonotonicClock = MonotonicClock(), _ body: @escaping @Sendable () -> Void) {
        thread = WorkerThread(name: name) { [self] in
            var next = clock.now().advanced(byNanoseconds: intervalNanoseconds)
            while true {
                let shouldStop: Bool = lock.withLock {
                    while !stopped && clock.now() < next { lock.wait(until: next) }
                    return stopped
                }
                if shouldStop { return }
                body()
                next = next.advanced(byNanoseconds: intervalNanoseconds)
            }
        }
    }

    public func stop() {
        lock.withLock { stopped = true; lock.broadcast() }
        thread?.join()
    }
}
