/// Per-stream frame rates as the sample's `GETFPS` computes them: a stream's clock starts at its
/// first frame; each report divides the frames counted since the last report by the time since
/// then, and restarts the count. Streams are keyed by source id and come and go with the sources.
public final class PerfMonitor: @unchecked Sendable {
    private struct Stream {
        var isFirst = true
        var frameCount = 0
        var start: MonotonicInstant
    }

    private let clock: TimeSource
    /// Ascending by source id (the `**PERF` block's order).
    private let streams: Locked<[(id: Int, stream: Stream)]>

    /// Streams `0..<streamCount`.
    public init(streamCount: Int, clock: TimeSource = MonotonicClock()) {
        self.clock = clock
        let now = clock.now()
        streams = Locked((0..<streamCount).map { ($0, Stream(start: now)) })
    }

    /// A new stream, reported from the next `takeRates` on (at 0 until its frames come).
    public func addStream(_ id: Int) {
        let now = clock.now()
        streams.withValue { s in
            guard !s.contains(where: { $0.id == id }) else { return }
            s.append((id, Stream(start: now)))
            s.sort { $0.id < $1.id }
        }
    }

    /// The stream is no longer reported.
    public func removeStream(_ id: Int) {
        streams.withValue { $0.removeAll { $0.id == id } }
    }

    /// Counts one frame of `stream` (a stream not reported, removed say, is ignored).
    public func frameArrived(stream: Int) {
        let now = clock.now()
        streams.withValue { s in
            guard let i = s.firstIndex(where: { $0.id == stream }) else { return }
            if s[i].stream.isFirst {
                s[i].stream.isFirst = false
                s[i].stream.start = now
            } else {
                s[i].stream.frameCount += 1
            }
        }
    }

    /// Frames per second of every stream since the last call, ascending by stream id, and
    /// restarts the counts.
    public func takeRates() -> [(stream: Int, fps: Double)] {
        let now = clock.now()
        return streams.withValue { s in
            s.indices.map { i in
                let seconds = Double(now.nanoseconds(since: s[i].stream.start)) / 1e9
                let fps = seconds > 0 ? Double(s[i].stream.frameCount) / seconds : 0
                s[i].stream.frameCount = 0
                s[i].stream.start = now
                return (s[i].id, fps)
            }
        }
    }

    /// The sample's line: `**PERF:  {'stream0': 29.97, 'stream1': 30.0} `.
    public static func perfLine(_ rates: [(stream: Int, fps: Double)]) -> String {
        let entries = rates.map { "'stream\($0.stream)': \(pythonRounded($0.fps))" }
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
