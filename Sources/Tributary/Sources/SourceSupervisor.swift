/// What a source is doing, as the service's `get-stream-info` and `/metrics` show it.
public struct SourceStatus: Sendable, Equatable, CustomStringConvertible {
    public var sourceID: Int
    public var cameraID: String?
    public var uri: String
    public var state: SourceState
    /// Recoveries so far (frames again after a loss).
    public var reconnects: Int
    /// Losses since its latest frame.
    public var attempt: Int
    /// Why it was last lost or failed.
    public var lastError: String?
    /// The frames a file input holds by its container, once known (`FrameSource.expectedFrameCount`):
    /// for a progress line; nil for live or looping inputs, or where the container does not say.
    public var expectedFrames: Int? = nil

    public var description: String {
        let name = cameraID.map { "camera \($0), " } ?? ""
        var text = "source \(sourceID) (\(name)\(uri)): \(state.rawValue)"
        if state != .streaming, let lastError { text += " (\(lastError))" }
        if state == .backingOff || state == .connecting, attempt > 0 { text += ", attempt \(attempt)" }
        if state == .streaming, reconnects > 0 { text += ", reconnect \(reconnects)" }
        return text
    }

    /// The warning a change of state is worth, or nil: a live source lost, retried or back.
    public var recoveryWarning: String? {
        switch state {
        case .stalled, .backingOff, .failed: return "Warning: \(self)"
        case .connecting where attempt > 0: return "Warning: \(self)"
        case .streaming where reconnects > 0: return "Warning: \(self)"
        default: return nil
        }
    }
}

/// Runs one source on its own thread until its end, rebuilding a live one that drops out: the thin
/// driver of `SourceRecoveryStateMachine`, with the lock. Frame numbers continue across rebuilds;
/// each frame is stamped with the time it left the decoder (`Frame.decodedAt`).
final class SourceSupervisor: @unchecked Sendable {
    let id: Int
    let uri: SourceURI
    let cameraID: String?
    /// Where its frame numbers start (a camera taken over from another worker continues its numbers).
    let firstFrameNumber: Int
    private let machine: Locked<SourceRecoveryStateMachine>
    private let current: Locked<any FrameSource>
    /// Wakes the thread out of a backoff (a stop, or the watchdog's rebuild).
    private let wake = ConditionLock()
    private var stopRequested = false
    private let clock = MonotonicClock()
    private let rebuild: @Sendable () throws -> any FrameSource
    private let onChange: @Sendable (SourceStatus) -> Void
    private var random = SystemRandomNumberGenerator()

    /// - Parameters:
    ///   - rebuild: a new source of the same id and URI.
    ///   - onChange: told every change of state, on the thread it happens on.
    init(source: any FrameSource, cameraID: String?, firstFrameNumber: Int = 0, policy: SourceRecoveryPolicy,
         rebuild: @escaping @Sendable () throws -> any FrameSource, onChange: @escaping @Sendable (SourceStatus) -> Void) {
        id = source.id
        self.firstFrameNumber = firstFrameNumber
        uri = source.uri
        self.cameraID = cameraID
        current = Locked(source)
        machine = Locked(SourceRecoveryStateMachine(policy: policy, isLive: source.isLive, startedAt: MonotonicClock().now()))
        self.rebuild = rebuild
        self.onChange = onChange
    }

    var status: SourceStatus {
        let expectedFrames = current.withValue { $0 }.expectedFrameCount
        return machine.withValue { m in
            SourceStatus(sourceID: id, cameraID: cameraID, uri: uri.original, state: m.state, reconnects: m.reconnects,
                         attempt: m.attempt, lastError: m.lastError, expectedFrames: expectedFrames)
        }
    }

    /// Stops the source for good, from any thread: its run ends as at end-of-stream, a backoff ends.
    func stop() {
        wake.withLock { stopRequested = true; wake.broadcast() }
        current.withValue { $0 }.requestStop()
    }

    private var stopped: Bool { wake.withLock { stopRequested } }

    /// The watchdog's call: tears a stalled source down.
    func tick() {
        let action = machine.withValue { $0.tick(at: clock.now()) }
        if action == .tearDown {
            onChange(status)
            current.withValue { $0 }.requestStop()
        } else if action == .rebuild {
            wake.withLock { wake.broadcast() }
        }
    }

    /// Runs the source, and its rebuilds, until it is done; each frame goes to `deliver`.
    /// - Returns: the last run's end (a failure when it ended `failed`).
    func run(ledger: FrameLedger, times: StageTimes?, deliver: (Frame, _ live: Bool) -> Void) -> SourceEnd {
        var delivered = 0
        while true {
            let source = current.withValue { $0 }
            let offset = firstFrameNumber + delivered
            let end = source.run(ledger: ledger, times: times) { frame in
                var frame = frame
                frame.frameNumber += offset
                let now = clock.now()
                frame.decodedAt = now
                delivered += 1
                let (changed, reconnected, gap) = machine.withValue { m -> (Bool, Bool, UInt64) in
                    let before = m.reconnects
                    return (m.frameArrived(at: now), m.reconnects > before, m.lastOutageNanoseconds)
                }
                if reconnected { ledger.recordReconnect(source: id, gapNanoseconds: gap) }
                if changed { onChange(status) }
                deliver(frame, source.isLive)
            }
            if stopped { return end }
            guard let next = recover(after: end) else { return machine.withValue { $0.state } == .failed ? failure(end) : end }
            current.withValue { $0 = next }
            if stopped { return end }  // a stop that found the old source
            next.start()
        }
    }

    /// After a run's end: waits out the backoff and builds the source again; nil when it is done.
    private func recover(after end: SourceEnd) -> (any FrameSource)? {
        var end = end
        while true {
            let sample = Double.random(in: 0..<1, using: &random)
            let action = machine.withValue { $0.sourceEnded(end, at: clock.now(), jitterSample: sample) }
            onChange(status)
            if action == .finish { return nil }
            // Backing off until the watchdog (or this wait) finds the retry due, or a stop.
            while machine.withValue({ $0.state }) == .backingOff {
                let due = machine.withValue { $0.retryAt } ?? clock.now()
                wake.withLock { if !stopRequested { wake.wait(until: due) } }
                if stopped { return nil }
                _ = machine.withValue { $0.tick(at: clock.now()) }
            }
            onChange(status)
            do {
                return try rebuild()
            } catch {
                end = .failed(element: "source", message: "\(error)")
            }
        }
    }

    private func failure(_ end: SourceEnd) -> SourceEnd {
        if case .failed = end { return end }
        return .failed(element: "source", message: machine.withValue { $0.lastError } ?? "failed")
    }
}
