import CHiredis
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where and how frames go to Redis Streams, DeepStream's layouts.
public struct RedisSinkConfiguration: Sendable {
    /// How each entry names its payload.
    public enum Layout: String, Sendable {
        /// `XADD <stream> * key <camera_id> value <payload> headers {}`: nvmsgbroker's Redis
        /// adapter with "sensor id extraction" (what NVIDIA's VSS consumers read).
        case keyValue = "key"
        /// `XADD <stream> * metadata <payload>`: its classic format.
        case metadata
    }

    public var host: String
    public var port: Int
    public var database: Int
    public var stream = "mdx-raw"
    /// `XADD … MAXLEN ~ N`; nil: unbounded.
    public var maxLength: Int?
    public var layout = Layout.keyValue
    /// `--meta-spool DIR`: where messages wait on disk while Redis is unreachable.
    public var spoolDirectory: String
    public var spoolMaximumBytes = 256 << 20
    public var memoryCapacity = 50_000
    /// XADDs pipelined per round trip.
    public var batchLimit = 512
    public var timeoutMilliseconds = 2_000

    /// - Parameter url: `redis://HOST:PORT[/DB]`.
    public init(url: String, spoolDirectory: String) throws {
        guard url.hasPrefix("redis://") else { throw PipelineError.invalidArgument("--redis \(url): expected redis://HOST:PORT[/DB]") }
        let rest = url.dropFirst("redis://".count)
        let parts = rest.split(separator: "/", maxSplits: 1)
        let hostPort = parts.first.map(String.init) ?? ""
        let colon = hostPort.lastIndex(of: ":")
        host = colon.map { String(hostPort[..<$0]) } ?? hostPort
        port = colon.flatMap { Int(hostPort[hostPort.index(after: $0)...]) } ?? 6379
        database = parts.count > 1 ? Int(parts[1]) ?? -1 : 0
        guard !host.isEmpty, (1...65535).contains(port), database >= 0 else {
            throw PipelineError.invalidArgument("--redis \(url): expected redis://HOST:PORT[/DB]")
        }
        self.spoolDirectory = spoolDirectory
    }
}

/// `--redis`: each frame's message as a Redis Streams entry, from a publisher thread of its own
/// (a hiredis context is not thread-safe) with pipelined XADDs, timeouts on connect and every
/// call, reconnection with backoff, and a disk spool while Redis is unreachable
/// (`MetadataOutbox`'s decisions). `publish` never waits on Redis.
public final class RedisSink: MetadataSink, @unchecked Sendable {
    public let configuration: RedisSinkConfiguration
    private let outbox: Locked<MetadataOutbox<FrameMessage>>
    private let wake = ConditionLock()
    private var finishing = false
    private var thread: WorkerThread?
    /// The pipelines still publishing (the app's shards share one sink).
    private let users = Locked(1)
    private let logger: Logger

    public init(configuration: RedisSinkConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        outbox = Locked(MetadataOutbox(memoryCapacity: configuration.memoryCapacity, batchLimit: configuration.batchLimit))
        signal(SIGPIPE, SIG_IGN)  // a broken connection is an error to handle, not the process's end
        let spool = try MetadataSpool(directory: configuration.spoolDirectory, maximumBytes: configuration.spoolMaximumBytes)
        outbox.withValue { $0.spooled(spool.backlog) }
        thread = WorkerThread(name: "redis-publisher") { [self] in runPublisher(spool: spool) }
    }

    public func publish(_ messages: [FrameMessage]) throws {
        let dropped = outbox.withValue { $0.published(messages) }
        if dropped > 0 { warnDropped() }
        wake.withLock { wake.broadcast() }
    }

    /// When the memory queue last overflowed was said (at most every 10 s: a flood of lines helps nobody).
    private let lastDropWarning = Locked<MonotonicInstant?>(nil)

    private func warnDropped() {
        let now = MonotonicClock().now()
        let due = lastDropWarning.withValue { last -> Bool in
            guard last.map({ now.nanoseconds(since: $0) >= 10_000_000_000 }) ?? true else { return false }
            last = now
            return true
        }
        if due { logger.warning("redis: memory queue full (\(configuration.memoryCapacity) messages): dropping the oldest; \(counts.dropped) so far") }
    }

    /// The pipelines that will publish to it and finish it (before the first publishes).
    public func setUsers(_ count: Int) { users.withValue { $0 = max(1, count) } }

    /// Once the last user finished: sends what is left (when Redis is down, it stays spooled).
    public func finish() throws {
        guard users.withValue({ $0 -= 1; return $0 == 0 }) else { return }
        wake.withLock { finishing = true; wake.broadcast() }
        thread?.join()
        thread = nil
    }

    public var counts: MetadataSinkCounts { outbox.withValue { $0.counts } }
    public var name: String { "redis://\(configuration.host):\(configuration.port)/\(configuration.stream)" }

    public var summary: String {
        let c = counts
        let backlog = outbox.withValue { $0.spoolBacklog }
        return "redis \(configuration.host):\(configuration.port) \(configuration.stream): published \(c.published), sent \(c.sent), "
            + "spooled \(c.spooled), replayed \(c.replayed), dropped \(c.dropped), left in the spool \(backlog)"
    }

    // MARK: the publisher thread

    private func runPublisher(spool: MetadataSpool) {
        var connection: OpaquePointer?
        let backoff = RetryBackoff()
        var attempt = 0
        var nextAttempt = MonotonicClock().now()
        defer { if let connection { redisFree(UnsafeMutablePointer(connection)) }; spool.close() }
        while true {
            let clock = MonotonicClock().now()
            if connection == nil, clock >= nextAttempt {
                connection = connect()
                outbox.withValue { $0.connectionChanged(connection != nil) }
                if connection == nil {
                    attempt += 1
                    nextAttempt = clock.advanced(byNanoseconds: backoff.delayNanoseconds(attempt: attempt, jitterSample: Double.random(in: 0..<1)))
                } else if attempt > 0 {
                    logger.notice("redis \(configuration.host):\(configuration.port): connected again after \(attempt) attempt(s)")
                    attempt = 0
                }
            }
            let step = outbox.withValue { $0.nextStep() }
            let done = wake.withLock { finishing }
            switch step {
            case .idle:
                if done { return }
                wake.withLock { if !finishing { wake.wait(until: MonotonicClock().now().advanced(byNanoseconds: 100_000_000)) } }
            case .spool(let count):
                let messages = outbox.withValue { $0.take(count) }
                spoolMessages(messages, into: spool)
                // Finishing while Redis is down: what is in memory is spooled, then the run ends.
                if done, connection == nil, outbox.withValue({ $0.memory.isEmpty }) { return }
                if connection == nil && !done {
                    wake.withLock { if !finishing { wake.wait(until: min(nextAttempt, MonotonicClock().now().advanced(byNanoseconds: 100_000_000))) } }
                }
            case .send(let count):
                let messages = outbox.withValue { $0.take(count) }
                if let failure = xadd(messages.map { ($0.cameraID, $0.json) }, on: connection!) {
                    lost(&connection, failure, &nextAttempt, &attempt)
                    spoolMessages(messages, into: spool)
                } else {
                    outbox.withValue { $0.sent(messages.count) }
                }
            case .replay:
                guard let (number, entries) = spool.oldest() else { outbox.withValue { $0.replayed(0) }; continue }
                if let failure = xadd(entries.map { ($0.cameraID, $0.json) }, on: connection!) {
                    lost(&connection, failure, &nextAttempt, &attempt)
                } else {
                    spool.removeOldest(number)
                    outbox.withValue { $0.replayed(entries.count) }
                }
            }
        }
    }

    private func spoolMessages(_ messages: [FrameMessage], into spool: MetadataSpool) {
        let dropped = spool.append(messages.map { MetadataSpool.Entry(cameraID: $0.cameraID, json: $0.json) })
        outbox.withValue {
            $0.spooled(messages.count)
            if dropped > 0 { $0.spoolDropped(dropped) }
        }
        if dropped > 0 { logger.warning("redis: spool over \(configuration.spoolMaximumBytes >> 20) MiB, dropped its \(dropped) oldest messages") }
    }

    private func lost(_ connection: inout OpaquePointer?, _ failure: String, _ nextAttempt: inout MonotonicInstant, _ attempt: inout Int) {
        logger.warning("redis \(configuration.host):\(configuration.port): \(failure); spooling to \(configuration.spoolDirectory) until it is back")
        if let connection { redisFree(UnsafeMutablePointer(connection)) }
        connection = nil
        outbox.withValue { $0.connectionChanged(false) }
        attempt = 1
        nextAttempt = MonotonicClock().now().advanced(byNanoseconds: 500_000_000)
    }

    private var timeout: timeval {
        timeval(tv_sec: configuration.timeoutMilliseconds / 1000, tv_usec: (configuration.timeoutMilliseconds % 1000) * 1000)
    }

    /// A connected context (its database selected), or nil.
    private func connect() -> OpaquePointer? {
        guard let context = redisConnectWithTimeout(configuration.host, Int32(configuration.port), timeout) else { return nil }
        if tb_redis_failed(context) != 0 || redisSetTimeout(context, timeout) != REDIS_OK {
            redisFree(context)
            return nil
        }
        let pointer = OpaquePointer(context)
        if configuration.database != 0, xcommand(["SELECT", String(configuration.database)], on: pointer) != nil {
            redisFree(context)
            return nil
        }
        return pointer
    }

    /// One command, its reply read; nil on success, else the error.
    private func xcommand(_ arguments: [String], on connection: OpaquePointer) -> String? {
        append(arguments, to: connection)
        return readReply(connection)
    }

    /// The entries as pipelined XADDs, every reply read; nil on success, else the first error.
    private func xadd(_ entries: [(cameraID: String, json: String)], on connection: OpaquePointer) -> String? {
        var head = ["XADD", configuration.stream]
        if let maxLength = configuration.maxLength { head += ["MAXLEN", "~", String(maxLength)] }
        head.append("*")
        for (camera, json) in entries {
            switch configuration.layout {
            case .keyValue: append(head + ["key", camera, "value", json, "headers", "{}"], to: connection)
            case .metadata: append(head + ["metadata", json], to: connection)
            }
        }
        var failure: String?
        for _ in entries {
            if let error = readReply(connection) {
                failure = failure ?? error
                if tb_redis_failed(UnsafePointer(connection)) != 0 { break }  // the connection is gone: no more replies
            }
        }
        return failure
    }

    private func append(_ arguments: [String], to connection: OpaquePointer) {
        let cStrings = arguments.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        var pointers = cStrings.map { UnsafePointer<CChar>($0) }
        var lengths = arguments.map { $0.utf8.count }
        _ = redisAppendCommandArgv(UnsafeMutablePointer(connection), Int32(arguments.count), &pointers, &lengths)
    }

    private func readReply(_ connection: OpaquePointer) -> String? {
        var reply: UnsafeMutableRawPointer?
        guard redisGetReply(UnsafeMutablePointer(connection), &reply) == REDIS_OK, let reply else {
            return String(cString: tb_redis_error(UnsafePointer(connection)))
        }
        defer { freeReplyObject(reply) }
        return tb_redis_reply_type(reply) == REDIS_REPLY_ERROR ? String(cString: tb_redis_reply_text(reply)) : nil
    }
}
