import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A live connection to a broker: sends entries and says when each is acknowledged.
protocol BrokerConnection: AnyObject {
    /// Sends the entries (camera id, JSON, fence); `.failed` closes the connection (by the caller,
    /// and it is not used again).
    func send(_ entries: [MetadataSpool.Entry]) -> BrokerSendResult
    func close()
}

/// What the broker did with a batch.
enum BrokerSendResult: Equatable {
    /// Every entry answered: taken, or refused by its fence (its lease is no longer the camera's).
    case acknowledged(fenced: Int)
    case failed(String)
}

/// A network metadata sink (`--redis`, `--mqtt`): each frame's message sent from a publisher thread
/// of its own (the C clients' contexts are not thread-safe) in pipelined batches, with timeouts,
/// reconnection with backoff, and a disk spool while the broker is unreachable, replayed in order
/// when it is back (`MetadataOutbox`'s decisions). `publish` never waits on the broker.
public final class BrokerSink: MetadataSink, @unchecked Sendable {
    public let name: String
    private let target: String
    private let spoolDirectory: String
    private let spoolMaximumBytes: Int
    private let outbox: Locked<MetadataOutbox<FrameMessage>>
    private let connect: () -> (connection: BrokerConnection?, error: String?)
    private let wake = ConditionLock()
    private var finishing = false
    private var thread: WorkerThread?
    /// The pipelines still publishing (the app's shards share one sink).
    private let users = Locked(1)
    private let logger: Logger
    /// When the memory queue last overflowed was said (at most every 10 s: a flood of lines helps nobody).
    private let lastDropWarning = Locked<MonotonicInstant?>(nil)
    /// Worker mode: each message carries its camera's lease, and one without is refused here.
    private let fence: PublishFence?
    /// Between attempts to connect again.
    private let backoff: RetryBackoff

    init(name: String, target: String, spoolDirectory: String, spoolMaximumBytes: Int, memoryCapacity: Int, batchLimit: Int,
         fence: PublishFence? = nil, backoff: RetryBackoff = RetryBackoff(), logger: Logger,
         connect: @escaping () -> (connection: BrokerConnection?, error: String?)) throws {
        self.name = name
        self.fence = fence
        self.backoff = backoff
        self.target = target
        self.spoolDirectory = spoolDirectory
        self.spoolMaximumBytes = spoolMaximumBytes
        self.logger = logger
        self.connect = connect
        outbox = Locked(MetadataOutbox(memoryCapacity: memoryCapacity, batchLimit: batchLimit))
        signal(SIGPIPE, SIG_IGN)  // a broken connection is an error to handle, not the process's end
        let spool = try MetadataSpool(directory: spoolDirectory, maximumBytes: spoolMaximumBytes)
        outbox.withValue { $0.spooled(spool.backlog) }
        thread = WorkerThread(name: "meta-publisher") { [self] in runPublisher(spool: spool) }
    }

    public func publish(_ messages: [FrameMessage]) throws {
        var stamped = messages
        if let fence {
            // Stamped now, with the frame: a lease lost later must not let this frame's message through.
            stamped = messages.compactMap { message in
                guard let token = fence.token(ofCamera: message.cameraID) else { return nil }
                fence.stamped(camera: message.cameraID, frameNumber: message.frameNumber)
                var message = message
                message.fence = token
                return message
            }
        }
        let dropped = outbox.withValue {
            $0.refused(messages.count - stamped.count)
            return $0.published(stamped)
        }
        if dropped > 0 { warnDropped() }
        wake.withLock { wake.broadcast() }
    }

    private func warnDropped() {
        let now = MonotonicClock().now()
        let due = lastDropWarning.withValue { last -> Bool in
            guard last.map({ now.nanoseconds(since: $0) >= 10_000_000_000 }) ?? true else { return false }
            last = now
            return true
        }
        if due { logger.warning("\(target): memory queue full: dropping the oldest messages; \(counts.dropped) so far") }
    }

    /// The pipelines that will publish to it and finish it (before the first publishes).
    public func setUsers(_ count: Int) { users.withValue { $0 = max(1, count) } }

    /// Once the last user finished: sends what is left (when the broker is down, it stays spooled).
    public func finish() throws {
        guard users.withValue({ $0 -= 1; return $0 == 0 }) else { return }
        wake.withLock { finishing = true; wake.broadcast() }
        thread?.join()
        thread = nil
    }

    public var counts: MetadataSinkCounts { outbox.withValue { $0.counts } }

    public var summary: String {
        let c = counts
        let backlog = outbox.withValue { $0.spoolBacklog }
        return "\(target): published \(c.published), sent \(c.sent), spooled \(c.spooled), replayed \(c.replayed), "
            + "dropped \(c.dropped)" + (fence == nil ? "" : ", fenced \(c.fenced)") + ", left in the spool \(backlog)"
    }

    // MARK: the publisher thread

    private func runPublisher(spool: MetadataSpool) {
        var connection: BrokerConnection?
        var attempt = 0
        var nextAttempt = MonotonicClock().now()
        defer { connection?.close(); spool.close() }
        while true {
            let clock = MonotonicClock().now()
            if connection == nil, clock >= nextAttempt {
                let (made, error) = connect()
                connection = made
                outbox.withValue { $0.connectionChanged(made != nil) }
                if made == nil {
                    attempt += 1
                    if attempt == 1 { logger.warning("\(target): \(error ?? "cannot connect"); spooling to \(spoolDirectory) until it answers") }
                    nextAttempt = clock.advanced(byNanoseconds: backoff.delayNanoseconds(attempt: attempt, jitterSample: Double.random(in: 0..<1)))
                } else if attempt > 0 {
                    logger.notice("\(target): connected again after \(attempt) attempt(s)")
                    attempt = 0
                }
            }
            let step = outbox.withValue { $0.nextStep() }
            let done = wake.withLock { finishing }
            switch step {
            case .idle:
                if done { return }
                waitBriefly(until: nil)
            case .spool(let count):
                let messages = outbox.withValue { $0.take(count) }
                spoolMessages(messages, into: spool)
                // Finishing while the broker is down: what is in memory is spooled, then the run ends.
                if done, connection == nil, outbox.withValue({ $0.memory.isEmpty }) { return }
                if connection == nil && !done { waitBriefly(until: nextAttempt) }
            case .send(let count):
                let messages = outbox.withValue { $0.take(count) }
                switch connection?.send(messages.map(Self.entry)) ?? .failed("not connected") {
                case .failed(let failure):
                    lost(&connection, failure, &nextAttempt, &attempt)
                    spoolMessages(messages, into: spool)
                case .acknowledged(let fenced):
                    outbox.withValue { $0.sent(messages.count - fenced); $0.fenced(fenced) }
                }
            case .replay:
                guard let (number, entries) = spool.oldest() else { outbox.withValue { $0.replayed(0) }; continue }
                switch connection?.send(entries) ?? .failed("not connected") {
                case .failed(let failure):
                    lost(&connection, failure, &nextAttempt, &attempt)
                case .acknowledged(let fenced):
                    spool.removeOldest(number)
                    outbox.withValue { $0.replayed(entries.count - fenced, fenced: fenced) }
                }
            }
        }
    }

    /// Up to 100 ms (or until `deadline`, if sooner), or until a publish or the finish.
    private func waitBriefly(until deadline: MonotonicInstant?) {
        let soon = MonotonicClock().now().advanced(byNanoseconds: 100_000_000)
        wake.withLock { if !finishing { wake.wait(until: min(deadline ?? soon, soon)) } }
    }

    private func spoolMessages(_ messages: [FrameMessage], into spool: MetadataSpool) {
        let dropped = spool.append(messages.map(Self.entry))
        outbox.withValue {
            $0.spooled(messages.count)
            if dropped > 0 { $0.spoolDropped(dropped) }
        }
        if dropped > 0 { logger.warning("\(target): spool over \(spoolMaximumBytes >> 10) KiB, dropped its \(dropped) oldest messages") }
    }

    private static func entry(_ message: FrameMessage) -> MetadataSpool.Entry {
        MetadataSpool.Entry(cameraID: message.cameraID, json: message.json, fence: message.fence, frameNumber: message.frameNumber)
    }

    private func lost(_ connection: inout BrokerConnection?, _ failure: String, _ nextAttempt: inout MonotonicInstant, _ attempt: inout Int) {
        logger.warning("\(target): \(failure); spooling to \(spoolDirectory) until it is back")
        connection?.close()
        connection = nil
        outbox.withValue { $0.connectionChanged(false) }
        attempt = 1
        nextAttempt = MonotonicClock().now().advanced(byNanoseconds: 500_000_000)
    }
}
