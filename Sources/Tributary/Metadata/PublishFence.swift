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
/// is refused at once. Both refusals are counted in the sink's `MetadataSinkCounts.fenced`.
public final class PublishFence: Sendable {
    private struct Grant {
        var token: String
        /// The lease's local deadline (`BootTimeClock`): past it, nothing is stamped, even before
        /// the worker's watchdog has stopped the camera (a process resumed after a freeze).
        var validUntil: MonotonicInstant
    }

    private let grants = Locked<[String: Grant]>([:])
    /// The highest frame number stamped, per camera: where a resumed lease's numbers continue.
    private let lastStamped = Locked<[String: Int]>([:])
    private let clock = BootTimeClock()

    public init() {}

    public func grant(camera: String, token: LeaseToken, validUntil: MonotonicInstant) {
        grants.withValue { $0[camera] = Grant(token: token.description, validUntil: validUntil) }
    }

    /// A renewal: the lease's deadline moves on (never back).
    public func extend(camera: String, token: LeaseToken, until: MonotonicInstant) {
        grants.withValue {
            guard var grant = $0[camera], grant.token == token.description else { return }
            grant.validUntil = max(grant.validUntil, until)
            $0[camera] = grant
        }
    }

    public func revoke(camera: String) { grants.withValue { $0[camera] = nil } }

    /// The camera's token while its lease is this process's and within its deadline.
    public func token(ofCamera camera: String) -> String? {
        let now = clock.now()
        return grants.withValue { $0[camera].flatMap { now < $0.validUntil ? $0.token : nil } }
    }

    /// Whether the camera runs here under a lease within its deadline.
    public func holds(camera: String) -> Bool { token(ofCamera: camera) != nil }

    func stamped(camera: String, frameNumber: Int) {
        lastStamped.withValue { $0[camera] = max($0[camera] ?? frameNumber, frameNumber) }
    }

    /// The highest frame number this process stamped for the camera.
    public func lastStampedFrame(ofCamera camera: String) -> Int? { lastStamped.withValue { $0[camera] } }

}
