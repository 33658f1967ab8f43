import CMosquitto
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where frames go over MQTT: one JSON message per frame on one topic, QoS 1 (the layout DL
/// Streamer's gvametapublish and Frigate's consumers read).
public struct MQTTSinkConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var topic = "tributary/frames"
    public var clientID = "tributary-\(getpid())"
    public var spoolDirectory: String
    public var spoolMaximumBytes = 256 << 20
    public var memoryCapacity = 50_000
    /// Messages published before their acknowledgements are awaited.
    public var batchLimit = 256
    public var timeoutMilliseconds = 2_000

    /// - Parameter url: `mqtt://HOST[:PORT]` (1883 by default).
    public init(url: String, spoolDirectory: String) throws {
        let address = try BrokerAddress(url, scheme: "mqtt", defaultPort: 1883, flag: "--mqtt", form: "mqtt://HOST[:PORT]")
        host = address.host
        port = address.port
        self.spoolDirectory = spoolDirectory
    }
}

extension BrokerSink {
    /// `--mqtt`: each frame's message published at QoS 1, sent when the broker acknowledged it.
    public static func mqtt(_ configuration: MQTTSinkConfiguration, logger: Logger) throws -> BrokerSink {
        MQTTConnection.initializeLibrary()
        return try BrokerSink(name: "mqtt://\(configuration.host):\(configuration.port)/\(configuration.topic)",
                              target: "mqtt \(configuration.host):\(configuration.port) \(configuration.topic)",
                              spoolDirectory: configuration.spoolDirectory, spoolMaximumBytes: configuration.spoolMaximumBytes,
                              memoryCapacity: configuration.memoryCapacity, batchLimit: configuration.batchLimit, logger: logger) {
            MQTTConnection.open(configuration)
        }
    }
}

/// One libmosquitto client driven by hand (`mosquitto_loop` on the publisher thread, no thread of
/// its own): a batch is published, then the loop runs until every PUBACK came or the timeout.
final class MQTTConnection: BrokerConnection {
    private let client: OpaquePointer
    private let configuration: MQTTSinkConfiguration
    /// Set by the callbacks, which run inside `mosquitto_loop` on this thread.
    fileprivate var connected: Int32?
    fileprivate var acknowledged = Set<Int32>()

    private static let library = Locked(false)
    static func initializeLibrary() {
        library.withValue { done in
            if !done { mosquitto_lib_init(); done = true }
        }
    }

    private init(client: OpaquePointer, configuration: MQTTSinkConfiguration) {
        self.client = client
        self.configuration = configuration
    }

    static func open(_ configuration: MQTTSinkConfiguration) -> (connection: BrokerConnection?, error: String?) {
        guard let client = mosquitto_new(configuration.clientID, true, nil) else { return (nil, "mosquitto_new failed") }
        let connection = MQTTConnection(client: client, configuration: configuration)
        mosquitto_user_data_set(client, Unmanaged.passUnretained(connection).toOpaque())
        mosquitto_connect_callback_set(client) { _, object, code in
            guard let object else { return }
            Unmanaged<MQTTConnection>.fromOpaque(object).takeUnretainedValue().connected = code
        }
        mosquitto_publish_callback_set(client) { _, object, mid in
            guard let object else { return }
            Unmanaged<MQTTConnection>.fromOpaque(object).takeUnretainedValue().acknowledged.insert(mid)
        }
        mosquitto_max_inflight_messages_set(client, 0)  // every message of a batch in flight at once
        let code = mosquitto_connect(client, configuration.host, Int32(configuration.port), 30)
        guard code == MOSQ_ERR_SUCCESS.rawValue else {
            connection.close()
            return (nil, "connect: \(String(cString: mosquitto_strerror(code)))")
        }
        // The CONNACK, within the timeout.
        let deadline = MonotonicClock().now().advanced(byNanoseconds: UInt64(configuration.timeoutMilliseconds) * 1_000_000)
        while connection.connected == nil, MonotonicClock().now() < deadline {
            if mosquitto_loop(client, 50, 1) != MOSQ_ERR_SUCCESS.rawValue { break }
        }
        guard connection.connected == 0 else {
            let reason = connection.connected.map { String(cString: mosquitto_connack_string($0)) } ?? "no CONNACK within the timeout"
            connection.close()
            return (nil, reason)
        }
        return (connection, nil)
    }

    func send(_ entries: [MetadataSpool.Entry]) -> BrokerSendResult {
        sendQoS1(entries).map(BrokerSendResult.failed) ?? .acknowledged(fenced: 0)
    }

    /// Publishes at QoS 1 and waits for every PUBACK: nil, or the error.
    private func sendQoS1(_ entries: [MetadataSpool.Entry]) -> String? {
        var pending = Set<Int32>()
        for entry in entries {
            let json = entry.json
            var mid: Int32 = 0
            let code = json.withCString { payload in
                mosquitto_publish(client, &mid, configuration.topic, Int32(strlen(payload)), payload, 1, false)
            }
            guard code == MOSQ_ERR_SUCCESS.rawValue else { return "publish: \(String(cString: mosquitto_strerror(code)))" }
            pending.insert(mid)
        }
        let deadline = MonotonicClock().now().advanced(byNanoseconds: UInt64(configuration.timeoutMilliseconds) * 1_000_000)
        while !pending.isSubset(of: acknowledged) {
            guard MonotonicClock().now() < deadline else { return "no PUBACK within \(configuration.timeoutMilliseconds) ms" }
            let code = mosquitto_loop(client, 50, 1)
            guard code == MOSQ_ERR_SUCCESS.rawValue else { return "loop: \(String(cString: mosquitto_strerror(code)))" }
        }
        acknowledged.subtract(pending)
        return nil
    }

    func close() {
        mosquitto_disconnect(client)
        mosquitto_destroy(client)
    }
}
