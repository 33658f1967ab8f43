#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging

/// Where frame messages go: a file of JSON lines, a broker. A sink never blocks the pipeline for
/// long: network sinks queue (and spool) what they cannot send at once.
public protocol MetadataSink: AnyObject, Sendable {
    /// The messages of one batch, in order.
    func publish(_ messages: [FrameMessage]) throws
    /// The run is over: flush and close.
    func finish() throws
    /// One line for the exit summary (published, spooled, dropped …).
    var summary: String { get }
    /// Its kind and target, for the metrics' `sink` label (`redis://…`, `file:…`).
    var name: String { get }
    var counts: MetadataSinkCounts { get }
}

/// What a metadata sink did with the messages it was given.
public struct MetadataSinkCounts: Sendable, Equatable {
    public var published = 0
    public var sent = 0
    public var spooled = 0
    public var replayed = 0
    public var dropped = 0
    /// Refused by their fence (worker mode: the camera's lease was no longer this worker's).
    public var fenced = 0
    public init(published: Int = 0, sent: Int = 0, spooled: Int = 0, replayed: Int = 0, dropped: Int = 0, fenced: Int = 0) {
        self.fenced = fenced
        self.published = published
        self.sent = sent
        self.spooled = spooled
        self.replayed = replayed
        self.dropped = dropped
    }
}

/// The metadata flags the app and the service share, and the sinks they ask for.
public struct MetadataSinkOptions: Sendable {
    public var metaOut: String?
    public var redis: String?
    public var redisStream: String
    public var redisMaxLength: Int?
    public var redisField: String
    public var spool: String
    public var spoolMegabytes: Double
    public var mqtt: String?
    public var mqttTopic = "tributary/frames"

    public init(metaOut: String?, redis: String?, redisStream: String = "mdx-raw", redisMaxLength: Int? = nil,
                redisField: String = "key", spool: String = ".tributary-spool", spoolMegabytes: Double = 256,
                mqtt: String? = nil, mqttTopic: String = "tributary/frames") {
        self.metaOut = metaOut
        self.redis = redis
        self.redisStream = redisStream
        self.redisMaxLength = redisMaxLength
        self.redisField = redisField
        self.spool = spool
        self.spoolMegabytes = spoolMegabytes
        self.mqtt = mqtt
        self.mqttTopic = mqttTopic
    }

    /// - Parameter fence: worker mode: the Redis sink publishes each camera's messages only under its lease.
    public func makeSinks(logger: Logger, fence: PublishFence? = nil) throws -> [any MetadataSink] {
        var sinks: [any MetadataSink] = []
        if let metaOut { sinks.append(try JSONLinesSink(path: metaOut)) }
        if let redis {
            var configuration = try RedisSinkConfiguration(url: redis, spoolDirectory: spool + "/redis")
            configuration.stream = redisStream
            configuration.maxLength = redisMaxLength
            configuration.spoolMaximumBytes = Int(max(0.01, spoolMegabytes) * 1_048_576)
            guard let layout = RedisSinkConfiguration.Layout(rawValue: redisField) else {
                throw PipelineError.invalidArgument("--redis-field \(redisField): key or metadata")
            }
            configuration.layout = layout
            if let fence {
                configuration.fence = fence
                // A worker's metadata goes to the Redis its leases live in: when the leases are
                // back, so should the stream be, not up to 30 s later (the backoff's usual cap).
                configuration.retryBackoff.maximumNanoseconds = 1_000_000_000
            }
            sinks.append(try BrokerSink.redis(configuration, logger: logger))
        }
        if let mqtt {
            var configuration = try MQTTSinkConfiguration(url: mqtt, spoolDirectory: spool + "/mqtt")
            configuration.topic = mqttTopic
            configuration.spoolMaximumBytes = Int(max(0.01, spoolMegabytes) * 1_048_576)
            sinks.append(try BrokerSink.mqtt(configuration, logger: logger))
        }
        return sinks
    }
}

/// The publishers as one batch stage: each batch's messages built once, handed to every sink.
public final class MetadataStage: BatchStage {
    private let builder: FrameMessageBuilder
    private let sinks: [any MetadataSink]

    public init(builder: FrameMessageBuilder, sinks: [any MetadataSink]) {
        self.builder = builder
        self.sinks = sinks
    }

    public func process(_ batch: inout FrameBatch) throws {
        let messages = builder.messages(batch.meta)
        for sink in sinks { try sink.publish(messages) }
    }

    public func finish() throws {
        for sink in sinks { try sink.finish() }
    }
}

/// `--meta-out FILE|-`: one JSON line per frame, written and flushed per batch. Several pipelines
/// (the app's shards) may share it: it closes when the last one finishes.
public final class JSONLinesSink: MetadataSink, @unchecked Sendable {
    public let path: String
    /// The file while open, and the pipelines still writing to it.
    private let state: Locked<(file: UnsafeMutablePointer<FILE>?, users: Int)>
    private let written = Locked(0)

    /// - Parameters:
    ///   - path: a file (created or truncated), or `-` for standard output (a duplicate of it, so
    ///     the caller may point its own lines elsewhere).
    ///   - users: the pipelines that will publish to it and finish it.
    public init(path: String, users: Int = 1) throws {
        self.path = path
        let file = path == "-" ? fdopen(dup(STDOUT_FILENO), "w") : fopen(path, "w")
        guard let file else {
            throw PipelineError.invalidArgument("--meta-out \(path): cannot create the file (\(String(cString: strerror(errno))))")
        }
        state = Locked((file, max(1, users)))
    }

    /// The pipelines that will publish to it and finish it (before the first publishes).
    public func setUsers(_ users: Int) { state.withValue { $0.users = max(1, users) } }

    public func publish(_ messages: [FrameMessage]) throws {
        var lines = ""
        for message in messages { lines += message.json; lines += "\n" }
        let ok = state.withValue { state in
            guard let file = state.file else { return false }
            return lines.withCString { fputs($0, file) >= 0 } && fflush(file) == 0
        }
        guard ok else { throw PipelineError.sinkFailed(target: path, element: "meta-out", message: String(cString: strerror(errno))) }
        written.withValue { $0 += messages.count }
    }

    public func finish() throws {
        state.withValue { state in
            state.users -= 1
            if state.users == 0, let file = state.file {
                fclose(file)
                state.file = nil
            }
        }
    }

    public var summary: String { "meta-out \(path): \(written.withValue { $0 }) messages" }
    public var name: String { "file:\(path)" }
    public var counts: MetadataSinkCounts {
        let written = written.withValue { $0 }
        return MetadataSinkCounts(published: written, sent: written)
    }
}
