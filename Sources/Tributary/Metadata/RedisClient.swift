import CHiredis
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where a Redis server is: `redis://HOST[:PORT][/DB]` (6379 by default).
public struct RedisEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var database: Int
    public var timeoutMilliseconds: Int

    /// - Parameter flag: the flag the URL came from, for the error.
    public init(url: String, flag: String = "--redis", timeoutMilliseconds: Int = 2_000) throws {
        let address = try BrokerAddress(url, scheme: "redis", defaultPort: 6379, flag: flag, form: "redis://HOST[:PORT][/DB]")
        guard let database = address.path.isEmpty ? 0 : Int(address.path), database >= 0 else {
            throw PipelineError.invalidArgument("\(flag) \(url): the database must be a number (redis://HOST[:PORT][/DB])")
        }
        self.init(host: address.host, port: address.port, database: database, timeoutMilliseconds: timeoutMilliseconds)
    }

    public init(host: String, port: Int, database: Int = 0, timeoutMilliseconds: Int = 2_000) {
        self.host = host
        self.port = port
        self.database = database
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    public var description: String { "redis://\(host):\(port)" + (database == 0 ? "" : "/\(database)") }
}

/// A reply as hiredis parsed it.
public enum RedisReply: Sendable, Equatable {
    /// A bulk or a status string.
    case string(String)
    case integer(Int)
    case array([RedisReply])
    case null
    /// The server's error reply (the connection is still good).
    case error(String)

    public var string: String? { if case .string(let text) = self { text } else { nil } }
    public var integer: Int? { if case .integer(let value) = self { value } else { nil } }
    public var array: [RedisReply]? { if case .array(let elements) = self { elements } else { nil } }
}

/// The connection failed (refused, timed out, closed): it is not used again.
public struct RedisConnectionError: Error, CustomStringConvertible {
    public var endpoint: RedisEndpoint
    public var message: String
    public init(endpoint: RedisEndpoint, message: String) {
        self.endpoint = endpoint
        self.message = message
    }
    public var description: String { "\(endpoint): \(message)" }
}

/// A Lua script run by `EVALSHA`, loaded once a connection (`SCRIPT LOAD`).
public struct RedisScript: Sendable, Hashable {
    public let source: String
    public init(_ source: String) { self.source = source }
}

/// One blocking hiredis connection: its timeouts set, its database selected. Used by one thread
/// at a time (hiredis' contexts are not thread-safe); after a `RedisConnectionError` it is dead.
public final class RedisClient {
    public let endpoint: RedisEndpoint
    private let context: UnsafeMutablePointer<redisContext>
    private var scriptHashes: [RedisScript: String] = [:]

    public init(_ endpoint: RedisEndpoint) throws(RedisConnectionError) {
        self.endpoint = endpoint
        let timeout = timeval(tv_sec: endpoint.timeoutMilliseconds / 1000, tv_usec: (endpoint.timeoutMilliseconds % 1000) * 1000)
        guard let context = redisConnectWithTimeout(endpoint.host, Int32(endpoint.port), timeout) else {
            throw RedisConnectionError(endpoint: endpoint, message: "out of memory")
        }
        if tb_redis_failed(context) != 0 || redisSetTimeout(context, timeout) != REDIS_OK {
            let error = String(cString: tb_redis_error(context))
            redisFree(context)
            throw RedisConnectionError(endpoint: endpoint, message: error)
        }
        self.context = context
        if endpoint.database != 0, case .error(let error) = try command(["SELECT", String(endpoint.database)]) {
            throw RedisConnectionError(endpoint: endpoint, message: "SELECT \(endpoint.database): \(error)")
        }
    }

    deinit { redisFree(context) }

    /// One command and its reply (an error reply is a value; a lost connection throws).
    public func command(_ arguments: [String]) throws(RedisConnectionError) -> RedisReply {
        append(arguments)
        return try readReply()
    }

    /// The commands sent at once, then their replies in order (one round trip).
    public func pipeline(_ commands: [[String]]) throws(RedisConnectionError) -> [RedisReply] {
        for arguments in commands { append(arguments) }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands { replies.append(try readReply()) }
        return replies
    }

    /// `EVALSHA` of `script`, loading it first on this connection.
    public func evaluate(_ script: RedisScript, keys: [String], arguments: [String]) throws(RedisConnectionError) -> RedisReply {
        try pipeline([evaluation(script, keys: keys, arguments: arguments)])[0]
    }

    /// The `EVALSHA` command of `script` for `pipeline` (the script loaded on this connection first).
    public func evaluation(_ script: RedisScript, keys: [String], arguments: [String]) throws(RedisConnectionError) -> [String] {
        ["EVALSHA", try hash(of: script), String(keys.count)] + keys + arguments
    }

    private func hash(of script: RedisScript) throws(RedisConnectionError) -> String {
        if let hash = scriptHashes[script] { return hash }
        switch try command(["SCRIPT", "LOAD", script.source]) {
        case .string(let hash):
            scriptHashes[script] = hash
            return hash
        case let other:
            throw RedisConnectionError(endpoint: endpoint, message: "SCRIPT LOAD: \(other)")
        }
    }

    private func append(_ arguments: [String]) {
        let cStrings = arguments.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        var pointers = cStrings.map { UnsafePointer<CChar>($0) }
        var lengths = arguments.map { $0.utf8.count }
        _ = redisAppendCommandArgv(context, Int32(arguments.count), &pointers, &lengths)
    }

    private func readReply() throws(RedisConnectionError) -> RedisReply {
        var reply: UnsafeMutableRawPointer?
        guard redisGetReply(context, &reply) == REDIS_OK, let reply else {
            throw RedisConnectionError(endpoint: endpoint, message: String(cString: tb_redis_error(context)))
        }
        defer { freeReplyObject(reply) }
        return Self.value(of: UnsafeRawPointer(reply))
    }

    private static func value(of reply: UnsafeRawPointer) -> RedisReply {
        switch tb_redis_reply_type(reply) {
        case REDIS_REPLY_STRING, REDIS_REPLY_STATUS:
            let bytes = UnsafeRawBufferPointer(start: tb_redis_reply_text(reply), count: tb_redis_reply_length(reply))
            return .string(String(decoding: bytes, as: UTF8.self))
        case REDIS_REPLY_INTEGER: return .integer(Int(tb_redis_reply_integer(reply)))
        case REDIS_REPLY_ARRAY:
            return .array((0..<tb_redis_reply_count(reply)).map { value(of: tb_redis_reply_element(reply, $0)) })
        case REDIS_REPLY_ERROR: return .error(String(cString: tb_redis_reply_text(reply)))
        default: return .null
        }
    }
}
