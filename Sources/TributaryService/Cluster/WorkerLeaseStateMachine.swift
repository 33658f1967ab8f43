import Tributary

/// A camera in the shared registry (`tributary:cameras`).
public struct CameraRecord: Sendable, Equatable, Codable {
    public var cameraID: String
    public var cameraURL: String
    public var cameraName: String?
    /// Only a worker with every one of these labels may run it.
    public var labels: [String]

    public init(cameraID: String, cameraURL: String, cameraName: String? = nil, labels: [String] = []) {
        self.cameraID = cameraID
        self.cameraURL = cameraURL
        self.cameraName = cameraName
        self.labels = labels
    }
}

extension CameraRecord {
    enum CodingKeys: String, CodingKey {
        case cameraID = "camera_id", cameraURL = "camera_url", cameraName = "camera_name", labels
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        cameraID = try container.decode(String.self, forKey: .cameraID)
        cameraURL = try container.decode(String.self, forKey: .cameraURL)
        cameraName = try container.decodeIfPresent(String.self, forKey: .cameraName)
        labels = try container.decodeIfPresent([String].self, forKey: .labels) ?? []
    }
}

/// A live worker, as its heartbeat (`tributary:worker:<id>`) shows it.
public struct WorkerRecord: Sendable, Equatable {
    public var workerID: String
    public var capacity: Int
    public var labels: [String]

    public init(workerID: String, capacity: Int, labels: [String] = []) {
        self.workerID = workerID
        self.capacity = capacity
        self.labels = labels
    }

    func mayRun(_ camera: CameraRecord) -> Bool { camera.labels.allSatisfy(labels.contains) }
}

/// What a worker reads from Redis at a tick: the registry, every lease, the live workers.
public struct ClusterView: Sendable, Equatable {
    public var cameras: [String: CameraRecord]
    public var leases: [String: LeaseToken]
    public var workers: [WorkerRecord]

    public init(cameras: [String: CameraRecord] = [:], leases: [String: LeaseToken] = [:], workers: [WorkerRecord] = []) {
        self.cameras = cameras
        self.leases = leases
        self.workers = workers
    }

    /// How many cameras each worker should run: all of them shared in worker-id order, none over
    /// its capacity (what a capped worker cannot take goes to the others). Every worker computes
    /// the same from the same view.
    public func targets() -> [String: Int] {
        var targets: [String: Int] = [:]
        var open = workers.sorted { $0.workerID < $1.workerID }
        var remaining = cameras.count
        while !open.isEmpty && remaining > 0 {
            let share = remaining / open.count, extra = remaining % open.count
            let capped = open.enumerated().filter { index, worker in share + (index < extra ? 1 : 0) > worker.capacity }
            if capped.isEmpty {
                for (index, worker) in open.enumerated() { targets[worker.workerID] = share + (index < extra ? 1 : 0) }
                return targets
            }
            for (_, worker) in capped {
                targets[worker.workerID] = worker.capacity
                remaining -= worker.capacity
            }
            let cappedIDs = Set(capped.map(\.element.workerID))
            open.removeAll { cappedIDs.contains($0.workerID) }
        }
        for worker in open { targets[worker.workerID] = 0 }
        return targets
    }

    /// The cameras each worker holds a lease for.
    public func owned() -> [String: Int] {
        var owned: [String: Int] = [:]
        for (camera, lease) in leases where cameras[camera] != nil { owned[lease.worker, default: 0] += 1 }
        return owned
    }
}

/// One worker's leases, decided without a clock, a socket or a thread (the muxer's pattern): the
/// driver (`ClusterWorker`) feeds it what it read and what Redis answered, on whatever clock, and
/// carries out the actions it returns. The rule that keeps two workers off one camera: a camera is
/// stopped here once `ttl − safetyMargin` has passed since the last renewal that Redis took was
/// *sent*, so before its key can expire and another worker claim it.
public struct WorkerLeaseStateMachine: Sendable {
    public struct Configuration: Sendable, Equatable {
        public var workerID: String
        public var capacity: Int
        public var labels: [String]
        public var ttlNanoseconds: UInt64 = 6_000_000_000
        public var renewIntervalNanoseconds: UInt64 = 2_000_000_000
        /// The local deadline comes this long before the TTL: a stop's own time, clock drift.
        public var safetyMarginNanoseconds: UInt64 = 2_000_000_000
        /// A camera handed off is stopped at once and its lease deleted this much later, so its
        /// last messages are published (under its lease) and its next owner starts after the stop.
        public var handoffDelayNanoseconds: UInt64 = 1_000_000_000
        /// Claims started at one tick (no thundering herd on a new registry).
        public var claimsPerTick = 4

        public init(workerID: String, capacity: Int, labels: [String] = []) {
            self.workerID = workerID
            self.capacity = capacity
            self.labels = labels
        }

        public var record: WorkerRecord { WorkerRecord(workerID: workerID, capacity: capacity, labels: labels) }
        /// From a renewal's (or the claim's) sending to the camera's local deadline.
        public var deadlineNanoseconds: UInt64 { ttlNanoseconds - min(safetyMarginNanoseconds, ttlNanoseconds / 2) }
    }

    /// A camera this worker holds a lease for.
    public struct Held: Sendable, Equatable {
        public var token: LeaseToken
        public var since: MonotonicInstant
        /// When the last renewal (or the claim) that Redis took was sent.
        public var renewedAt: MonotonicInstant
        /// Why this worker runs it (`get-stream-info`'s `lease_reason`).
        public var reason: String
        /// Stopped and handed off: the lease goes at this instant.
        public var releaseAt: MonotonicInstant?
    }

    public enum Action: Sendable, Equatable {
        /// Claim the camera's lease (SET NX PX, INCR its epoch).
        case claim(camera: String, reason: String)
        /// Start it: the lease is ours.
        case start(camera: String, token: LeaseToken, reason: String)
        /// Stop it now, and stop publishing for it (the lease is lost or going).
        case stop(camera: String, reason: String)
        /// Stop it now; what it has in flight is still published under its lease until the release.
        case handOff(camera: String, reason: String)
        /// Stop publishing for it and delete the lease if it is still ours.
        case release(camera: String, token: LeaseToken)
    }

    public let configuration: Configuration
    public private(set) var held: [String: Held] = [:]
    public private(set) var claiming: Set<String> = []
    /// The epochs of this worker's leases that expired or were refused (not handed off): claimed
    /// again first, and with the same epoch when nobody was granted the camera meanwhile.
    public private(set) var lapsed: [String: Int] = [:]
    public private(set) var renewFailures = 0
    /// Cameras stopped because their deadline passed without a renewal.
    public private(set) var expired = 0
    private var stopping = false

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Cameras that run here (held and not handed off).
    public var running: [String] { held.filter { $0.value.releaseAt == nil }.keys.sorted() }

    // MARK: deadlines and renewals

    /// The cameras whose deadline has passed: stopped, given up (their keys expire on their own).
    public mutating func expire(now: MonotonicInstant) -> [Action] {
        var actions: [Action] = []
        for (camera, lease) in held.sorted(by: { $0.key < $1.key })
        where now.nanoseconds(since: lease.renewedAt) >= configuration.deadlineNanoseconds {
            held[camera] = nil
            if lease.releaseAt == nil {
                expired += 1
                lapsed[camera] = lease.token.epoch
            }
            actions.append(.stop(camera: camera, reason: "lease \(lease.token) not renewed for \(configuration.deadlineNanoseconds / 1_000_000) ms"))
        }
        return actions
    }

    /// The leases to renew now, with their tokens (every held one, handed-off ones too until released).
    public func renewals() -> [(camera: String, token: LeaseToken)] {
        held.sorted { $0.key < $1.key }.map { ($0.key, $0.value.token) }
    }

    /// Redis renewed it; `sentAt` is when the renewal was sent.
    public mutating func renewed(camera: String, token: LeaseToken, sentAt: MonotonicInstant) {
        guard var lease = held[camera], lease.token == token else { return }
        lease.renewedAt = max(lease.renewedAt, sentAt)
        held[camera] = lease
    }

    /// Redis refused the renewal: the lease is no longer ours (it expired, another worker has it).
    public mutating func renewRefused(camera: String, token: LeaseToken) -> [Action] {
        guard let lease = held[camera], lease.token == token else { return [] }
        held[camera] = nil
        if lease.releaseAt == nil { lapsed[camera] = token.epoch }
        return [.stop(camera: camera, reason: "lease \(token) lost")]
    }

    /// The renewal got no answer (Redis unreachable): the deadline decides.
    public mutating func renewFailed(count: Int = 1) { renewFailures += count }

    // MARK: claims

    /// The claim won: the camera starts here.
    public mutating func claimed(camera: String, token: LeaseToken, sentAt: MonotonicInstant, reason: String) -> [Action] {
        claiming.remove(camera)
        lapsed[camera] = nil
        guard !stopping else { return [.release(camera: camera, token: token)] }
        held[camera] = Held(token: token, since: sentAt, renewedAt: sentAt, reason: reason)
        return [.start(camera: camera, token: token, reason: reason)]
    }

    /// Another worker had it, or Redis did not answer.
    public mutating func claimFailed(camera: String) { claiming.remove(camera) }

    /// The epoch to ask for again when claiming the camera (see `lapsed`).
    public func resumableEpoch(of camera: String) -> Int? { lapsed[camera] }

    // MARK: the plan at each tick

    /// Given what Redis holds now: stops what is no longer ours or no longer registered, releases
    /// what was handed off, hands one camera off when another worker is short of its share, and
    /// claims unowned cameras up to this worker's share (or beyond it, up to its capacity, a camera
    /// no worker short of its share may run). `onlyLapsed`: just after (re)connecting, before the
    /// other workers' heartbeats are back, only its own lapsed cameras are claimed (the shares are
    /// not known yet: alone in the view, it would take the others' too).
    public mutating func plan(now: MonotonicInstant, view: ClusterView, onlyLapsed: Bool = false) -> [Action] {
        var actions: [Action] = []
        let me = configuration.workerID
        for (camera, lease) in held.sorted(by: { $0.key < $1.key }) {
            if let holder = view.leases[camera], holder != lease.token {
                held[camera] = nil
                actions.append(.stop(camera: camera, reason: "lease \(lease.token) lost to \(holder)"))
            } else if let releaseAt = lease.releaseAt {
                if now >= releaseAt {
                    held[camera] = nil
                    actions.append(.release(camera: camera, token: lease.token))
                }
            } else if view.cameras[camera] == nil {
                // As a hand-off: its last messages go out under its lease, which goes a little later.
                held[camera]?.releaseAt = now.advanced(byNanoseconds: configuration.handoffDelayNanoseconds)
                actions.append(.handOff(camera: camera, reason: "removed from the registry"))
            }
        }
        guard !stopping else { return actions }

        var workers = view.workers
        if !workers.contains(where: { $0.workerID == me }) { workers.append(configuration.record) }
        let targetsView = ClusterView(cameras: view.cameras, leases: view.leases, workers: workers)
        let targets = targetsView.targets()
        var owned = view.owned()
        owned[me] = held.count + claiming.count
        let target = targets[me] ?? 0
        let unowned = view.cameras.values.filter { view.leases[$0.cameraID] == nil && held[$0.cameraID] == nil }
        lapsed = lapsed.filter { camera, _ in view.cameras[camera] != nil && view.leases[camera] == nil }

        // Hand one off when others are short by more than the unowned cameras can make up: the
        // busiest (ties by id) go first, one camera each per tick.
        let deficit = workers.reduce(0) { $0 + max(0, (targets[$1.workerID] ?? 0) - (owned[$1.workerID] ?? 0)) }
        let handoffsNeeded = deficit - unowned.count
        if handoffsNeeded > 0, running.count > target, !held.values.contains(where: { $0.releaseAt != nil }) {
            let surplus = workers.filter { (owned[$0.workerID] ?? 0) > (targets[$0.workerID] ?? 0) }
                .sorted { a, b in
                    let sa = (owned[a.workerID] ?? 0) - (targets[a.workerID] ?? 0), sb = (owned[b.workerID] ?? 0) - (targets[b.workerID] ?? 0)
                    return sa != sb ? sa > sb : a.workerID < b.workerID
                }
            if let rank = surplus.firstIndex(where: { $0.workerID == me }), rank < handoffsNeeded, let camera = running.last,
               var lease = held[camera] {
                let reason = "handed off: \(running.count) ran here for a share of \(target)"
                lease.releaseAt = now.advanced(byNanoseconds: configuration.handoffDelayNanoseconds)
                held[camera] = lease
                actions.append(.handOff(camera: camera, reason: reason))
            }
        }

        // Claims: unowned cameras this worker may run, in an order of its own (rendezvous hashing:
        // workers claiming at once mostly ask for different cameras).
        let mine = Set(configuration.labels)
        let eligible = unowned.filter { camera in
            camera.labels.allSatisfy(mine.contains) && !claiming.contains(camera.cameraID) && (!onlyLapsed || lapsed[camera.cameraID] != nil)
        }
            .sorted { a, b in
                // Its own lapsed cameras first: their spooled messages stay valid if it gets them back.
                let lapsedA = lapsed[a.cameraID] != nil, lapsedB = lapsed[b.cameraID] != nil
                return lapsedA != lapsedB ? lapsedA : Self.rank(me, a.cameraID) < Self.rank(me, b.cameraID)
            }
        var count = held.filter { $0.value.releaseAt == nil }.count + claiming.count
        var claims = 0
        for camera in eligible where claims < configuration.claimsPerTick && count < configuration.capacity {
            let reason: String
            if count < target {
                reason = "claimed: unowned, share \(target) of \(view.cameras.count)"
            } else if !workers.contains(where: { worker in
                worker.workerID != me && worker.mayRun(camera) && (owned[worker.workerID] ?? 0) < (targets[worker.workerID] ?? 0)
            }) {
                reason = "claimed: unowned, and no worker short of its share may run it"
            } else {
                continue
            }
            claiming.insert(camera.cameraID)
            actions.append(.claim(camera: camera.cameraID, reason: reason))
            count += 1
            claims += 1
        }
        return actions
    }

    /// Shutting down: every camera stops and every lease goes; nothing more is claimed.
    public mutating func stopAll() -> [Action] {
        stopping = true
        var actions: [Action] = []
        for (camera, lease) in held.sorted(by: { $0.key < $1.key }) {
            if lease.releaseAt == nil { actions.append(.handOff(camera: camera, reason: "the worker is stopping")) }
            actions.append(.release(camera: camera, token: lease.token))
        }
        held = [:]
        return actions
    }

    /// FNV-1a of worker and camera: a stable, per-worker order of the cameras.
    static func rank(_ worker: String, _ camera: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in worker.utf8 + [0] + camera.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }
}
