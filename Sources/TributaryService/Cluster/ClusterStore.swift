import FoundationEssentials
import Tributary

/// What a worker's heartbeat says (`tributary:worker:<id>`).
struct WorkerHeartbeat: Codable {
    var worker_id: String
    var capacity: Int
    var labels: [String]
    var cameras: Int
    var api: String?
}

/// The workers' Redis (the keys in `ClusterKeys`): the registry, the leases with their fencing
/// epochs, the heartbeats. Every change is one command or one Lua script, so it is atomic.
/// Over one connection; a `RedisConnectionError` means it is dead and a new store is made.
public final class ClusterStore {
    let client: RedisClient

    public init(_ endpoint: RedisEndpoint) throws(RedisConnectionError) {
        client = try RedisClient(endpoint)
    }

    /// KEYS: lease, epoch, last frame; ARGV: worker, TTL ms, the epoch to resume or "". SET NX PX
    /// with the next epoch, which is then taken (INCR) — or, when the caller held the camera's
    /// latest grant and nobody has been granted it since (its lease merely expired), that same
    /// epoch again, so what it published under it stays valid. Returns {epoch, last frame or ""},
    /// or nil when the lease is held.
    static let claimScript = RedisScript("""
        local current = tonumber(redis.call('GET', KEYS[2]) or '0')
        local epoch = current + 1
        if ARGV[3] ~= '' and tonumber(ARGV[3]) == current then epoch = current end
        if not redis.call('SET', KEYS[1], ARGV[1] .. '/' .. epoch, 'NX', 'PX', ARGV[2]) then return false end
        if epoch > current then redis.call('INCR', KEYS[2]) end
        return {epoch, redis.call('GET', KEYS[3]) or ''}
        """)
    /// KEYS: lease; ARGV: token, TTL ms. 1 if the lease was still the token's and is extended.
    static let renewScript = RedisScript("""
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
        return 0
        """)
    /// KEYS: lease; ARGV: token. 1 if it was the token's and is deleted.
    static let releaseScript = RedisScript("""
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """)

    public struct Grant: Sendable, Equatable {
        public var token: LeaseToken
        /// The camera's last published frame number and when (unix ms), if any.
        public var lastFrame: (number: Int, unixMilliseconds: Int)?
        public static func == (a: Grant, b: Grant) -> Bool {
            a.token == b.token && a.lastFrame?.number == b.lastFrame?.number && a.lastFrame?.unixMilliseconds == b.lastFrame?.unixMilliseconds
        }
    }

    /// Claims the camera's lease: the grant, or nil when another worker holds it.
    /// - Parameter resuming: the epoch of this worker's lease on it that expired (Redis was
    ///   unreachable): granted again if nobody was granted the camera since.
    public func claim(camera: String, worker: String, ttlMilliseconds: Int, resuming: Int? = nil) throws(RedisConnectionError) -> Grant? {
        let reply = try client.evaluate(Self.claimScript, keys: [ClusterKeys.lease(camera), ClusterKeys.epoch(camera), ClusterKeys.lastFrame(camera)],
                                        arguments: [worker, String(ttlMilliseconds), resuming.map(String.init) ?? ""])
        guard let parts = reply.array, parts.count == 2, let epoch = parts[0].integer else {
            if case .error(let message) = reply { throw RedisConnectionError(endpoint: client.endpoint, message: "claim: \(message)") }
            return nil
        }
        let last = (parts[1].string ?? "").split(separator: " ").compactMap { Int($0) }
        return Grant(token: LeaseToken(worker: worker, epoch: epoch), lastFrame: last.count == 2 ? (last[0], last[1]) : nil)
    }

    /// Renews the leases at once (one round trip): for each, whether Redis extended it.
    public func renew(_ leases: [(camera: String, token: LeaseToken)], ttlMilliseconds: Int) throws(RedisConnectionError) -> [Bool] {
        var commands: [[String]] = []
        for lease in leases {
            commands.append(try client.evaluation(Self.renewScript, keys: [ClusterKeys.lease(lease.camera)],
                                                  arguments: [lease.token.description, String(ttlMilliseconds)]))
        }
        return try client.pipeline(commands).map { $0.integer == 1 }
    }

    /// Deletes the lease if it is still the token's.
    @discardableResult
    public func release(camera: String, token: LeaseToken) throws(RedisConnectionError) -> Bool {
        try client.evaluate(Self.releaseScript, keys: [ClusterKeys.lease(camera)], arguments: [token.description]).integer == 1
    }

    /// This worker is alive (its key lives for the TTL).
    func heartbeat(_ beat: WorkerHeartbeat, ttlMilliseconds: Int) throws(RedisConnectionError) {
        let json = (try? JSONEncoder().encode(beat)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        _ = try client.command(["SET", ClusterKeys.worker(beat.worker_id), json, "PX", String(ttlMilliseconds)])
    }

    /// This worker is gone (its shutdown).
    func removeHeartbeat(worker: String) throws(RedisConnectionError) {
        _ = try client.command(["DEL", ClusterKeys.worker(worker)])
    }

    /// The registry, every lease of a registered camera and the live workers.
    public func view() throws(RedisConnectionError) -> ClusterView {
        var view = ClusterView()
        view.cameras = try cameras()
        view.leases = try leases(of: view.cameras.keys.sorted())
        let workerKeys = try scan(ClusterKeys.workerPattern)
        if !workerKeys.isEmpty, let values = try client.command(["MGET"] + workerKeys).array {
            for value in values {
                guard let json = value.string, let beat = try? JSONDecoder().decode(WorkerHeartbeat.self, from: Data(json.utf8)) else { continue }
                view.workers.append(WorkerRecord(workerID: beat.worker_id, capacity: beat.capacity, labels: beat.labels))
            }
        }
        return view
    }

    // MARK: the registry (REST and `tributary cameras`)

    public enum RegistryChange: Equatable { case done, alreadyPresent, absent }

    public func cameras() throws(RedisConnectionError) -> [String: CameraRecord] {
        var cameras: [String: CameraRecord] = [:]
        let fields = try client.command(["HGETALL", ClusterKeys.cameras]).array ?? []
        var index = 0
        while index + 1 < fields.count {
            if let json = fields[index + 1].string,
               let record = try? JSONDecoder().decode(CameraRecord.self, from: Data(json.utf8)) {
                cameras[record.cameraID] = record
            }
            index += 2
        }
        return cameras
    }

    /// Adds a camera (HSETNX: one add per camera id wins).
    public func add(_ camera: CameraRecord) throws(RedisConnectionError) -> RegistryChange {
        let json = (try? JSONEncoder().encode(camera)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return try client.command(["HSETNX", ClusterKeys.cameras, camera.cameraID, json]).integer == 1 ? .done : .alreadyPresent
    }

    public func remove(camera: String) throws(RedisConnectionError) -> RegistryChange {
        try client.command(["HDEL", ClusterKeys.cameras, camera]).integer == 1 ? .done : .absent
    }

    /// Every lease of the registry's cameras.
    public func leases(of cameras: [String]) throws(RedisConnectionError) -> [String: LeaseToken] {
        guard !cameras.isEmpty, let values = try client.command(["MGET"] + cameras.map(ClusterKeys.lease)).array else { return [:] }
        var leases: [String: LeaseToken] = [:]
        for (id, value) in zip(cameras, values) { if let token = value.string.flatMap(LeaseToken.init) { leases[id] = token } }
        return leases
    }

    private func scan(_ pattern: String) throws(RedisConnectionError) -> [String] {
        var keys: [String] = [], cursor = "0"
        repeat {
            guard let reply = try client.command(["SCAN", cursor, "MATCH", pattern, "COUNT", "1000"]).array, reply.count == 2 else { break }
            cursor = reply[0].string ?? "0"
            keys += (reply[1].array ?? []).compactMap(\.string)
        } while cursor != "0"
        return keys
    }
}

/// The registry as the REST API and `tributary cameras` change it: the DeepStream add/remove
/// bodies on any worker, checked as `tributary serve` checks them.
public enum CameraRegistry {
    /// The registry's cameras by id, each a JSON line with its lease's holder (`owner`, `epoch`: null when unowned).
    public static func list(at endpoint: RedisEndpoint) throws(RedisConnectionError) -> [String] {
        let store = try ClusterStore(endpoint)
        let cameras = try store.cameras()
        let leases = try store.leases(of: cameras.keys.sorted())
        struct Line: Encodable {
            var camera_id: String, camera_url: String, camera_name: String?, labels: [String], owner: String?, epoch: Int?
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(camera_id, forKey: .camera_id)
                try container.encode(camera_url, forKey: .camera_url)
                try container.encode(camera_name, forKey: .camera_name)
                try container.encode(labels, forKey: .labels)
                try container.encode(owner, forKey: .owner)
                try container.encode(epoch, forKey: .epoch)
            }
            enum CodingKeys: CodingKey { case camera_id, camera_url, camera_name, labels, owner, epoch }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return cameras.keys.sorted().map { id in
            let camera = cameras[id]!, lease = leases[id]
            let line = Line(camera_id: id, camera_url: camera.cameraURL, camera_name: camera.cameraName, labels: camera.labels,
                            owner: lease?.worker, epoch: lease?.epoch)
            return (try? encoder.encode(line)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        }
    }

    /// - Returns: the reason line of the answer.
    /// - Throws: `StreamRequestError` (a bad URL 400, an unknown camera 404, a camera present 409,
    ///   Redis unreachable 503).
    public static func change(_ change: StreamChange, labels: [String] = [], at endpoint: RedisEndpoint) throws -> String {
        let store: ClusterStore
        do { store = try ClusterStore(endpoint) } catch { throw StreamRequestError.unavailable("the camera registry (\(error))") }
        do {
            switch change.kind {
            case .add:
                guard let url = change.cameraURL else { throw StreamRequestError.badRequest("missing field: value.camera_url") }
                do { _ = try SourceURI(url) } catch { throw StreamRequestError.badRequest("camera_url: \(error)") }
                let record = CameraRecord(cameraID: change.cameraID, cameraURL: url, cameraName: change.cameraName, labels: labels)
                guard try store.add(record) == .done else {
                    throw StreamRequestError.conflict("camera_id \(change.cameraID) is already in the registry")
                }
                return "camera \(change.cameraID) added to the registry at \(endpoint)"
            case .remove:
                if let url = change.cameraURL, let present = try store.cameras()[change.cameraID], present.cameraURL != url {
                    throw StreamRequestError.badRequest("camera_url \(url) is not camera \(change.cameraID)'s (\(present.cameraURL))")
                }
                guard try store.remove(camera: change.cameraID) == .done else {
                    throw StreamRequestError.unknownCamera("no camera \(change.cameraID) in the registry")
                }
                return "camera \(change.cameraID) removed from the registry at \(endpoint)"
            }
        } catch let error as RedisConnectionError {
            throw StreamRequestError.unavailable("the camera registry (\(error))")
        }
    }
}
