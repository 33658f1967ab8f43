/// How a live source that drops out is brought back: nvurisrcbin's `rtsp-reconnect-interval` and
/// `rtsp-reconnect-attempts`, with an exponential backoff per source instead of its one global
/// throttle (so cameras lost together come back together, not one at a time).
public struct SourceRecoveryPolicy: Sendable, Equatable {
    /// A live source with no frame for this long is torn down and rebuilt; nil disables recovery
    /// (a live source's end is then its end, as a file's).
    public var stallTimeoutNanoseconds: UInt64?
    /// Rebuilds tried after a loss before the source is given up as failed; nil: no limit.
    public var maxAttempts: Int?
    /// The first retry's delay; each further one doubles, up to `maxBackoffNanoseconds`.
    public var initialBackoffNanoseconds: UInt64 = 1_000_000_000
    public var maxBackoffNanoseconds: UInt64 = 30_000_000_000
    /// A source being (re)built gets at least this long for its first frame: an RTSP session's
    /// set-up (DESCRIBE, SETUP, PLAY, the first key frame), slower when many connect at once
    /// (8 cameras reconnecting together on 2 cores took over 2 s).
    public var connectTimeoutNanoseconds: UInt64 = 10_000_000_000
    /// Each delay is scaled by a factor in 1 ± `jitter`, so sources lost at once do not retry in step.
    public var jitter: Double = 0.2

    /// - Parameters:
    ///   - reconnectIntervalSeconds: `--rtsp-reconnect-interval` (0 or less: no recovery).
    ///   - attempts: `--rtsp-reconnect-attempts` (−1: unlimited).
    public init(reconnectIntervalSeconds: Double, attempts: Int = -1) {
        stallTimeoutNanoseconds = reconnectIntervalSeconds > 0 ? UInt64(reconnectIntervalSeconds * 1e9) : nil
        maxAttempts = attempts < 0 ? nil : attempts
    }

    /// DeepStream's default for live sources: 10 s without a frame, unlimited attempts.
    public static let `default` = SourceRecoveryPolicy(reconnectIntervalSeconds: 10)
    /// No recovery: every source ends when its run ends.
    public static let disabled = SourceRecoveryPolicy(reconnectIntervalSeconds: 0)
}

/// Where a source stands, as `get-stream-info` and `tributary_source_state` show it.
public enum SourceState: String, Sendable, CaseIterable {
    /// Built and started, no frame yet (also after a rebuild).
    case connecting
    /// Frames arrive.
    case streaming
    /// No frame for the stall timeout: being torn down.
    case stalled
    /// Lost; waiting for its next rebuild.
    case backingOff = "backing-off"
    /// Given up: a source that cannot be decoded, or out of attempts.
    case failed
    /// A file (or a live source without recovery) reached its end.
    case ended
}

/// The recovery decisions for one source, and nothing else: no locks, no threads, no clock, no
/// randomness (the driver passes each event's time and a jitter sample in 0..<1). The driver
/// (`SourceSupervisor`) carries out the returned action; tests drive it on a manual clock.
///
/// Rules:
/// - Only a live source recovers, and only with a stall timeout; any other source's end (or
///   failure) is final: `ended` (or `failed`).
/// - A live source with no frame for the stall timeout since its latest frame (or since its start,
///   given at least the connect timeout) is `stalled` and torn down. Its run's end — after a teardown, an error or an
///   end-of-stream (a live source never ends normally) — is a loss: `backing-off`, and a rebuild
///   once the delay has passed (the `n`th consecutive attempt waits initial × 2ⁿ⁻¹, capped, ± jitter).
/// - The first frame after a rebuild is a reconnect; the attempt count starts again.
/// - Out of attempts: `failed`, with the last error.
public struct SourceRecoveryStateMachine: Sendable {
    /// What the driver must do after an event.
    public enum Action: Sendable, Equatable {
        case none
        /// Stop the current source's run (it stalled); its end comes back as `sourceEnded`.
        case tearDown
        /// Build the source again and run it.
        case rebuild
        /// The source is done (`ended` or `failed`): tell the muxer.
        case finish
    }

    public let policy: SourceRecoveryPolicy
    public let isLive: Bool
    public private(set) var state: SourceState = .connecting
    /// Recoveries: frames again after a loss.
    public private(set) var reconnects = 0
    /// Losses since the latest frame (the attempt the next rebuild is).
    public private(set) var attempt = 0
    /// Why the source was last lost or failed.
    public private(set) var lastError: String?
    /// When the next rebuild is due, while backing off.
    public private(set) var retryAt: MonotonicInstant?
    /// The latest recovery's gap: from the last frame before the loss to the first after it.
    public private(set) var lastOutageNanoseconds: UInt64 = 0
    private var lastActivity: MonotonicInstant
    private var lastFrameAt: MonotonicInstant
    private var lostSinceLastFrame = false

    public init(policy: SourceRecoveryPolicy, isLive: Bool, startedAt now: MonotonicInstant) {
        self.policy = policy
        self.isLive = isLive
        lastActivity = now
        lastFrameAt = now
    }

    private var recovers: Bool { isLive && policy.stallTimeoutNanoseconds != nil }

    /// A frame came. - Returns: whether the state changed (to `streaming`); after a loss that is a
    /// reconnect, its gap in `lastOutageNanoseconds`.
    public mutating func frameArrived(at now: MonotonicInstant) -> Bool {
        lastActivity = now
        defer { lastFrameAt = now }
        guard state != .streaming else { return false }
        if lostSinceLastFrame {
            reconnects += 1
            lastOutageNanoseconds = now.nanoseconds(since: lastFrameAt)
        }
        lostSinceLastFrame = false
        attempt = 0
        state = .streaming
        return true
    }

    /// The time passes (the driver's watchdog): a stall is found, or a retry is due.
    public mutating func tick(at now: MonotonicInstant) -> Action {
        switch state {
        case .connecting, .streaming:
            guard recovers, let stall = policy.stallTimeoutNanoseconds else { return .none }
            let timeout = state == .connecting ? max(stall, policy.connectTimeoutNanoseconds) : stall
            guard now.nanoseconds(since: lastActivity) >= timeout else { return .none }
            lastError = "no frame for \(Double(timeout) / 1e9) s"
            state = .stalled
            return .tearDown
        case .backingOff:
            guard let retryAt, now >= retryAt else { return .none }
            self.retryAt = nil
            state = .connecting
            lastActivity = now
            return .rebuild
        case .stalled, .failed, .ended:
            return .none
        }
    }

    /// The source's run ended (by itself, or after a teardown), or its rebuild could not be made.
    public mutating func sourceEnded(_ end: SourceEnd, at now: MonotonicInstant, jitterSample: Double) -> Action {
        if case .failed(let element, let message) = end { lastError = "\(element): \(message)" }
        guard recovers else {
            if case .failed = end { state = .failed } else { state = .ended }
            return .finish
        }
        if state != .stalled, case .endOfStream = end { lastError = "the stream ended" }
        lostSinceLastFrame = true
        attempt += 1
        if let limit = policy.maxAttempts, attempt > limit {
            state = .failed
            lastError = "\(lastError ?? "lost"); gave up after \(limit) attempt\(limit == 1 ? "" : "s")"
            return .finish
        }
        retryAt = now.advanced(byNanoseconds: backoffNanoseconds(attempt: attempt, jitterSample: jitterSample))
        state = .backingOff
        return .none
    }

    /// The delay before the `attempt`th consecutive rebuild.
    public func backoffNanoseconds(attempt: Int, jitterSample: Double) -> UInt64 {
        RetryBackoff(initialNanoseconds: policy.initialBackoffNanoseconds, maximumNanoseconds: policy.maxBackoffNanoseconds,
                     jitter: policy.jitter).delayNanoseconds(attempt: attempt, jitterSample: jitterSample)
    }
}

/// Exponential backoff with jitter: the `n`th consecutive attempt waits initial × 2ⁿ⁻¹, capped,
/// scaled by 1 ± `jitter` (a sample in 0..<1 from the caller). Sources and broker connections alike.
public struct RetryBackoff: Sendable, Equatable {
    public var initialNanoseconds: UInt64
    public var maximumNanoseconds: UInt64
    public var jitter: Double

    public init(initialNanoseconds: UInt64 = 1_000_000_000, maximumNanoseconds: UInt64 = 30_000_000_000, jitter: Double = 0.2) {
        self.initialNanoseconds = initialNanoseconds
        self.maximumNanoseconds = maximumNanoseconds
        self.jitter = jitter
    }

    public func delayNanoseconds(attempt: Int, jitterSample: Double) -> UInt64 {
        let doublings = min(max(0, attempt - 1), 40)
        let base = min(Double(maximumNanoseconds), Double(initialNanoseconds) * Double(UInt64(1) << UInt64(doublings)))
        let factor = 1 + jitter * (2 * min(max(jitterSample, 0), 1) - 1)
        return UInt64(max(0, base * factor))
    }
}
