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

    /// - Parameter url: `redis://HOST[:PORT][/DB]` (6379 by default).
    public init(url: String, spoolDirectory: String) throws {
        let address = try BrokerAddress(url, scheme: "redis", defaultPort: 6379, flag: "--redis", form: "redis://HOST[:PORT][/DB]")
        host = address.host
        port = address.port
        guard let database = address.path.isEmpty ? 0 : Int(address.path), database >= 0 else {
            throw PipelineError.invalidArgument("--redis \(url): the database must be a number (redis://HOST[:PORT][/DB])")
        }
        self.database = database
        self.spoolDirectory = spoolDirectory
    }
}

extension BrokerSink {
    /// `--redis`: each frame's message as a Redis Streams entry (pipelined XADDs).
    public static func redis(_ configuration: RedisSinkConfiguration, logger: Logger) throws -> BrokerSink {
        try BrokerSink(name: "redis://\(configuration.host):\(configuration.port)/\(configuration.stream)",
                       target: "redis \(configuration.host):\(configuration.port) \(configuration.stream)",
                       spoolDirectory: configuration.spoolDirectory, spoolMaximumBytes: configuration.spoolMaximumBytes,
                       memoryCapacity: configuration.memoryCapacity, batchLimit: configuration.batchLimit, logger: logger) {
            RedisConnection.open(configuration)
        }
    }
}

/// One hiredis context (the blocking API), its timeouts set, its database selected.
final class RedisConnection: BrokerConnection {
    private let context: UnsafeMutablePointer<redisContext>
    private let configuration: RedisSinkConfiguration

    private init(context: UnsafeMutablePointer<redisContext>, configuration: RedisSinkConfiguration) {
        self.context = context
        self.configuration = configuration
    }

    static func open(_ configuration: RedisSinkConfiguration) -> (connection: BrokerConnection?, error: String?) {
        let timeout = timeval(tv_sec: configuration.timeoutMilliseconds / 1000, tv_usec: (configuration.timeoutMilliseconds % 1000) * 1000)
        guard let context = redisConnectWithTimeout(configuration.host, Int32(configuration.port), timeout) else { return (nil, "out of memory") }
        if tb_redis_failed(context) != 0 || redisSetTimeout(context, timeout) != REDIS_OK {
            let error = String(cString: tb_redis_error(context))
            redisFree(context)
            return (nil, error)
        }
        let connection = RedisConnection(context: context, configuration: configuration)
        if configuration.database != 0 {
            connection.append(["SELECT", String(configuration.database)])
            if let error = connection.readReply() {
                connection.close()
                return (nil, "SELECT \(configuration.database): \(error)")
            }
        }
        return (connection, nil)
    }

    func send(_ entries: [(cameraID: String, json: String)]) -> String? {
        var head = ["XADD", configuration.stream]
        if let maxLength = configuration.maxLength { head += ["MAXLEN", "~", String(maxLength)] }
        head.append("*")
        for (camera, json) in entries {
            switch configuration.layout {
            case .keyValue: append(head + ["key", camera, "value", json, "headers", "{}"])
            case .metadata: append(head + ["metadata", json])
            }
        }
        var failure: String?
        for _ in entries {
            if let error = readReply() {
                failure = failure ?? error
                if tb_redis_failed(context) != 0 { break }  // the connection is gone: no more replies
            }
        }
        return failure
    }

    func close() { redisFree(context) }

    private func append(_ arguments: [String]) {
        let cStrings = arguments.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        var pointers = cStrings.map { UnsafePointer<CChar>($0) }
        var lengths = arguments.map { $0.utf8.count }
        _ = redisAppendCommandArgv(context, Int32(arguments.count), &pointers, &lengths)
    }

    private func readReply() -> String? {
        var reply: UnsafeMutableRawPointer?
        guard redisGetReply(context, &reply) == REDIS_OK, let reply else { return String(cString: tb_redis_error(context)) }
        defer { freeReplyObject(reply) }
        return tb_redis_reply_type(reply) == REDIS_REPLY_ERROR ? String(cString: tb_redis_reply_text(reply)) : nil
    }
}

/// `SCHEME://HOST[:PORT][/PATH]`, as the broker flags take it.
struct BrokerAddress {
    var host: String
    var port: Int
    var path: String

    init(_ url: String, scheme: String, defaultPort: Int, flag: String, form: String) throws {
        let bad = PipelineError.invalidArgument("\(flag) \(url): expected \(form)")
        guard url.hasPrefix(scheme + "://") else { throw bad }
        let parts = url.dropFirst(scheme.count + 3).split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let hostPort = parts.first.map(String.init) ?? ""
        let colon = hostPort.lastIndex(of: ":")
        host = colon.map { String(hostPort[..<$0]) } ?? hostPort
        port = colon.map { Int(hostPort[hostPort.index(after: $0)...]) ?? -1 } ?? defaultPort
        path = parts.count > 1 ? String(parts[1]) : ""
        guard !host.isEmpty, (1...65535).contains(port) else { throw bad }
    }
}
