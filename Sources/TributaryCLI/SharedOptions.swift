import ArgumentParser
import Logging
import Tributary

/// The flags `imagedata-multistream` and `tributary serve` share, declared once.

/// `--meta-out`, `--meta-format`, `--redis…`, `--mqtt…`, `--meta-spool…`: where each frame's metadata goes.
public struct MetadataOptions: ParsableArguments {
    public init() {}

    @Option(name: .customLong("meta-out"), help: "Write each frame's metadata as a JSON line (docs/schema/frame-v1.json) to this file; - is standard output (the program's own lines then go to standard error).")
    public var metaOut: String?

    @Option(name: .customLong("meta-format"), help: "tributary (docs/schema/frame-v1.json), deepstream-minimal (nvmsgconv payload-type 1) or deepstream (payload-type 0, a message per object).")
    public var metaFormat = "tributary"

    @Option(name: .customLong("redis"), help: "Send each frame's metadata to Redis Streams: redis://HOST:PORT[/DB].")
    public var redis: String?

    @Option(name: .customLong("redis-stream"), help: "The stream (XADD) name.")
    public var redisStream = "mdx-raw"

    @Option(name: .customLong("redis-maxlen"), help: "XADD … MAXLEN ~ N: keep about N entries.")
    public var redisMaxLength: Int?

    @Option(name: .customLong("redis-field"), help: "key (key <camera_id> value <payload> headers {}) or metadata (metadata <payload>).")
    public var redisField = "key"

    @Option(name: .customLong("mqtt"), help: "Publish each frame's metadata over MQTT at QoS 1: mqtt://HOST[:PORT].")
    public var mqtt: String?

    @Option(name: .customLong("mqtt-topic"), help: "The MQTT topic.")
    public var mqttTopic = "tributary/frames"

    @Option(name: .customLong("meta-spool"), help: "Where metadata waits on disk while a broker is unreachable (replayed in order when it is back).")
    public var metaSpool = ".tributary-spool"

    @Option(name: .customLong("meta-spool-mb"), help: "The spool's cap in MiB; over it, its oldest messages are dropped (and counted).")
    public var metaSpoolMegabytes: Double = 256

    public func validate() throws {
        if MetadataFormat(rawValue: metaFormat) == nil {
            throw ValidationError("--meta-format must be one of \(MetadataFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if metaSpoolMegabytes <= 0 { throw ValidationError("--meta-spool-mb must be positive") }
    }

    public var format: MetadataFormat { MetadataFormat(rawValue: metaFormat) ?? .tributary }

    public func makeSinks(logger: Logger, fence: PublishFence? = nil) throws -> [any MetadataSink] {
        try MetadataSinkOptions(metaOut: metaOut, redis: redis, redisStream: redisStream, redisMaxLength: redisMaxLength,
                                redisField: redisField, spool: metaSpool, spoolMegabytes: metaSpoolMegabytes,
                                mqtt: mqtt, mqttTopic: mqttTopic).makeSinks(logger: logger, fence: fence)
    }
}

/// `--rtsp-reconnect-interval`, `--rtsp-reconnect-attempts`: how live sources that drop out come back.
public struct RecoveryOptions: ParsableArguments {
    public init() {}

    @Option(name: .customLong("rtsp-reconnect-interval"), help: "Seconds without a frame before a live source is rebuilt (0: never; it then ends when its stream ends).")
    public var rtspReconnectInterval: Double = 10

    @Option(name: .customLong("rtsp-reconnect-attempts"), parsing: .unconditional, help: "Rebuilds of a lost live source before it is given up (-1: unlimited).")
    public var rtspReconnectAttempts = -1

    public func validate() throws {
        if rtspReconnectInterval < 0 { throw ValidationError("--rtsp-reconnect-interval must not be negative") }
        if rtspReconnectAttempts < -1 { throw ValidationError("--rtsp-reconnect-attempts must be -1 or more") }
    }

    public var policy: SourceRecoveryPolicy {
        SourceRecoveryPolicy(reconnectIntervalSeconds: rtspReconnectInterval, attempts: rtspReconnectAttempts)
    }
}

/// `--width`, `--height`, `--batched-push-timeout`, `--tiler-width`, `--tiler-height`: the muxer's
/// batches and the tiled output's size.
public struct LayoutOptions: ParsableArguments {
    public init() {}

    @Option(name: .customLong("width"), help: "Muxer output width.")
    public var width = 1920

    @Option(name: .customLong("height"), help: "Muxer output height.")
    public var height = 1080

    // .unconditional: "-1" is the value, not a flag (as the README writes it).
    @Option(name: .customLong("batched-push-timeout"), parsing: .unconditional, help: "Microseconds to wait for a full batch; -1 waits forever.")
    public var batchedPushTimeout = 33_000

    @Option(name: .customLong("tiler-width"), help: "Tiled output width.")
    public var tilerWidth = 1920

    @Option(name: .customLong("tiler-height"), help: "Tiled output height.")
    public var tilerHeight = 1080

    public func validate() throws {
        if width <= 0 || height <= 0 || tilerWidth <= 0 || tilerHeight <= 0 { throw ValidationError("sizes must be positive") }
        if batchedPushTimeout < -1 { throw ValidationError("--batched-push-timeout must be -1 or more") }
    }
}

/// `--analytics FILE`: nvdsanalytics' rules (regions, overcrowding, line crossing, direction).
public struct AnalyticsOptions: ParsableArguments {
    public init() {}

    @Option(name: .customLong("analytics"), help: "nvdsanalytics config: ROI counts, overcrowding, line crossing, direction (per stream; needs a [tracker] for crossings and directions).")
    public var path: String?

    /// The rules by stream (source id), in muxer pixels, and the file's warnings; none without the flag.
    public func load(_ layout: LayoutOptions) throws -> (rules: [Int: StreamAnalyticsRules], warnings: [String]) {
        guard let path else { return ([:], []) }
        return try AnalyticsConfiguration.load(path: path, muxerWidth: layout.width, muxerHeight: layout.height)
    }
}
