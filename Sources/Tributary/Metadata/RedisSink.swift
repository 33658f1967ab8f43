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

    public var endpoint: RedisEndpoint
    public var host: String { endpoint.host }
    public var port: Int { endpoint.port }
    public var database: Int { endpoint.database }
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
    /// Worker mode: each entry is added only while its camera's epoch is the one it was published under.
    public var fence: PublishFence?
    /// Between attempts to connect again.
    public var retryBackoff = RetryBackoff()

    /// - Parameter url: `redis://HOST[:PORT][/DB]` (6379 by default).
    public init(url: String, spoolDirectory: String) throws {
        endpoint = try RedisEndpoint(url: url)
        self.spoolDirectory = spoolDirectory
    }
}

extension BrokerSink {
    /// `--redis`: each frame's message as a Redis Streams entry (pipelined XADDs).
    public static func redis(_ configuration: RedisSinkConfiguration, logger: Logger) throws -> BrokerSink {
        try BrokerSink(name: "redis://\(configuration.host):\(configuration.port)/\(configuration.stream)",
                       target: "redis \(configuration.host):\(configuration.port) \(configuration.stream)",
                       spoolDirectory: configuration.spoolDirectory, spoolMaximumBytes: configuration.spoolMaximumBytes,
                       memoryCapacity: configuration.memoryCapacity, batchLimit: configuration.batchLimit,
                       fence: configuration.fence, backoff: configuration.retryBackoff, logger: logger) {
            do {
                return (RedisStreamConnection(client: try RedisClient(configuration.endpoint), configuration: configuration), nil)
            } catch {
                return (nil, (error as? RedisConnectionError)?.message ?? "\(error)")
            }
        }
    }
}

/// The metadata sink's connection: pipelined `XADD`s, or in worker mode the fenced script per entry.
final class RedisStreamConnection: BrokerConnection {
    private let client: RedisClient
    private let configuration: RedisSinkConfiguration

    /// Adds the entry only if the camera's epoch (KEYS[1]) is still the one it was published under
    /// (ARGV[1]) — no later grant has been made, whether or not the lease has expired meanwhile —
    /// then notes the camera's last frame number and the entry's time (KEYS[3]) for the next owner.
    /// 1: added; 0: refused (fenced). ARGV: epoch, frame number, MAXLEN or "", the fields.
    static let fencedAdd = RedisScript("""
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
        local args = {KEYS[2]}
        if ARGV[3] ~= '' then args[#args + 1] = 'MAXLEN'; args[#args + 1] = '~'; args[#args + 1] = ARGV[3] end
        args[#args + 1] = '*'
        for i = 4, #ARGV do args[#args + 1] = ARGV[i] end
        local id = redis.call('XADD', unpack(args))
        redis.call('SET', KEYS[3], ARGV[2] .. ' ' .. string.match(id, '^%d+'), 'PX', 86400000)
        return 1
        """)

    init(client: RedisClient, configuration: RedisSinkConfiguration) {
        self.client = client
        self.configuration = configuration
    }

    func send(_ entries: [MetadataSpool.Entry]) -> BrokerSendResult {
        do {
            var commands: [[String]] = []
            commands.reserveCapacity(entries.count)
            for entry in entries {
                let fields: [String]
                switch configuration.layout {
                case .keyValue: fields = ["key", entry.cameraID, "value", entry.json, "headers", Self.headers(fence: entry.fence)]
                case .metadata: fields = ["metadata", entry.json]
                }
                if let fence = entry.fence.flatMap(LeaseToken.init) {
                    let keys = [ClusterKeys.epoch(entry.cameraID), configuration.stream, ClusterKeys.lastFrame(entry.cameraID)]
                    let arguments = [String(fence.epoch), String(entry.frameNumber), configuration.maxLength.map(String.init) ?? ""] + fields
                    commands.append(try client.evaluation(Self.fencedAdd, keys: keys, arguments: arguments))
                } else {
                    var head = ["XADD", configuration.stream]
                    if let maxLength = configuration.maxLength { head += ["MAXLEN", "~", String(maxLength)] }
                    commands.append(head + ["*"] + fields)
                }
            }
            var fenced = 0
            for reply in try client.pipeline(commands) {
                switch reply {
                case .error(let error): return .failed(error)
                case .integer(0): fenced += 1
                default: break
                }
            }
            return .acknowledged(fenced: fenced)
        } catch {
            return .failed(error.message)
        }
    }

    func close() {}

    /// `{}`, or in worker mode who published it: `{"worker":"w1","epoch":7}`.
    static func headers(fence: String?) -> String {
        guard let fence, let lease = LeaseToken(fence) else { return "{}" }
        var json = JSONText(capacity: 48)
        json.beginObject()
        json.field("worker", lease.worker)
        json.field("epoch", lease.epoch)
        json.endObject()
        return json.text
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
