/// The Redis keys workers share (docs/cluster.md): the camera registry, a lease and a fencing
/// epoch per camera, a heartbeat per worker, and each camera's last published frame.
public enum ClusterKeys {
    public static let prefix = "tributary:"
    /// Hash: camera id → the camera as JSON (`CameraRecord`).
    public static let cameras = prefix + "cameras"
    /// String `<worker>/<epoch>` with the lease's TTL.
    public static func lease(_ camera: String) -> String { prefix + "lease:" + camera }
    /// Integer, incremented at every grant.
    public static func epoch(_ camera: String) -> String { prefix + "epoch:" + camera }
    /// String `<frame number> <unix ms>`, written by the fenced publish.
    public static func lastFrame(_ camera: String) -> String { prefix + "frame:" + camera }
    /// String (JSON) with the lease's TTL: the worker is alive.
    public static func worker(_ id: String) -> String { prefix + "worker:" + id }
    public static let workerPattern = prefix + "worker:*"
}

/// A lease as Redis holds it and messages carry it: `<worker>/<epoch>`.
public struct LeaseToken: Sendable, Hashable, CustomStringConvertible {
    public var worker: String
    public var epoch: Int

    public init(worker: String, epoch: Int) {
        self.worker = worker
        self.epoch = epoch
    }

    public init?(_ text: String) {
        guard let slash = text.lastIndex(of: "/"), let epoch = Int(text[text.index(after: slash)...]) else { return nil }
        self.init(worker: String(text[..<slash]), epoch: epoch)
    }

    public var description: String { "\(worker)/\(epoch)" }

    /// Worker ids go into Redis keys and tokens: letters, digits, `.`, `_`, `-` (a pod's name).
    public static func isValidWorkerID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 128 && id.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "." || $0 == "_" || $0 == "-"
        }
    }
}

/// Which cameras this process may publish for, and under which lease: the worker grants a camera
/// when it claims it and revokes it when it stops it. The metadata sink stamps each message with
/// the token when the frame is published and Redis adds it only while the camera's epoch is still
/// the token's (no later grant: the fencing token); a message for a camera without a token here
/// is refused at once. Both refusals are counted.
public final class PublishFence: Sendable {
    private let tokens = Locked<[String: String]>([:])
    private let refusedCount = Locked(0)

    public init() {}

    public func grant(camera: String, token: LeaseToken) { tokens.withValue { $0[camera] = token.description } }
    public func revoke(camera: String) { tokens.withValue { $0[camera] = nil } }
    public func token(ofCamera camera: String) -> String? { tokens.withValue { $0[camera] } }

    func refused(_ count: Int) { refusedCount.withValue { $0 += count } }
    /// Messages refused so far: here (no lease) or by Redis (the lease had moved on).
    public var refused: Int { refusedCount.withValue { $0 } }
}
