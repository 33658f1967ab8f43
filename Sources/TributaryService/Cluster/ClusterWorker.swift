import Logging
import Tributary
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `tributary worker`: where the shared Redis is and this worker's part.
public struct ClusterWorkerConfiguration: Sendable {
    public var endpoint: RedisEndpoint
    public var lease: WorkerLeaseStateMachine.Configuration
    /// The registry, the leases and the workers are read (and the heartbeat written) this often.
    public var readIntervalNanoseconds: UInt64 = 500_000_000
    /// A heartbeat lives this long: a dead worker leaves the shares (and its cameras go to the
    /// others) once both its heartbeat and its leases have expired, so not longer than a lease.
    public var heartbeatTTLNanoseconds: UInt64 = 3_000_000_000
    /// How often the deadlines are checked, apart from Redis' answers.
    public var watchIntervalNanoseconds: UInt64 = 100_000_000

    public init(endpoint: RedisEndpoint, lease: WorkerLeaseStateMachine.Configuration) {
        self.endpoint = endpoint
        self.lease = lease
    }
}

/// The driver of `WorkerLeaseStateMachine`: a thread that talks to Redis (renewals, the heartbeat,
/// the view, claims, releases) and a watchdog thread that stops a camera at its deadline even
/// while Redis does not answer; the cameras start and stop in the service's pipeline
/// (`CameraService`) and in the publish fence, in the order the machine says.
public final class ClusterWorker: @unchecked Sendable {
    /// Why and since when this worker runs a camera (`get-stream-info`).
    public struct LeaseInfo: Sendable, Equatable {
        public var token: LeaseToken
        public var sinceUnixMilliseconds: Int
        public var reason: String
        /// Between the camera's last message from its previous owner and this worker's claim.
        public var handoverGapMilliseconds: Int?
    }

    public let configuration: ClusterWorkerConfiguration
    private let cameras: CameraService
    public let fence: PublishFence
    private let logger: Logger
    /// Boot time, not monotonic: a suspended host's leases are stale when it wakes.
    private let clock = BootTimeClock()
    /// The machine and the cameras' starts and stops, one at a time.
    private let gate = ConditionLock()
    private var machine: WorkerLeaseStateMachine
    private var registry: [String: CameraRecord] = [:]
    private let leaseInfo = Locked<[String: LeaseInfo]>([:])
    private let wake = ConditionLock()
    private var stopped = false
    private var threads: [WorkerThread] = []
    private let reachable = Locked(false)
    /// The address of this worker's REST API, for its heartbeat.
    public let apiAddress = Locked<String?>(nil)

    public init(configuration: ClusterWorkerConfiguration, cameras: CameraService, fence: PublishFence, logger: Logger) {
        self.configuration = configuration
        self.cameras = cameras
        self.fence = fence
        self.logger = logger
        machine = WorkerLeaseStateMachine(configuration: configuration.lease)
    }

    public var workerID: String { configuration.lease.workerID }
    public var redisReachable: Bool { reachable.withValue { $0 } }
    public var runningCameras: Int { gate.withLock { machine.running.count } }
    public var renewFailures: Int { gate.withLock { machine.renewFailures } }
    public func lease(ofCamera camera: String) -> LeaseInfo? { leaseInfo.withValue { $0[camera] } }

    public func start() {
        threads = [
            WorkerThread(name: "cluster-redis") { [self] in runRedisLoop() },
            WorkerThread(name: "cluster-deadlines") { [self] in runWatchdog() },
        ]
    }

    /// Stops claiming, stops every camera and releases every lease (and the heartbeat).
    public func stop() {
        wake.withLock { stopped = true; wake.broadcast() }
        threads.forEach { $0.join() }
        threads = []
        let releases = gate.withLock { apply(machine.stopAll()) }
        guard let store = try? ClusterStore(configuration.endpoint) else {
            for case .release(let camera, _) in releases { fence.revoke(camera: camera) }
            logger.warning("worker \(workerID): Redis unreachable at the stop; its \(releases.count) lease(s) expire on their own")
            return
        }
        for case .release(let camera, let token) in releases {
            fence.revoke(camera: camera)
            _ = try? store.release(camera: camera, token: token)
        }
        try? store.removeHeartbeat(worker: workerID)
        logger.notice("worker \(workerID): released \(releases.count) lease(s)")
    }

    // MARK: the threads

    private var isStopped: Bool { wake.withLock { stopped } }

    private func sleep(nanoseconds: UInt64) {
        let until = clock.now().advanced(byNanoseconds: nanoseconds)
        wake.withLock { if !stopped { wake.wait(until: until) } }
    }

    private func runWatchdog() {
        while !isStopped {
            let now = clock.now()
            gate.withLock { _ = apply(machine.expire(now: now)) }
            sleep(nanoseconds: configuration.watchIntervalNanoseconds)
        }
    }

    /// When the Redis connection was last made.
    private var connectedAt = MonotonicInstant(nanoseconds: 0)

    private func runRedisLoop() {
        var store: ClusterStore?
        var lastRenewal: MonotonicInstant?
        let ttl = Int(configuration.lease.ttlNanoseconds / 1_000_000)
        while !isStopped {
            let tickStart = clock.now()
            do {
                if store == nil {
                    store = try ClusterStore(configuration.endpoint)
                    connectedAt = clock.now()
                    if !redisReachable { logger.notice("worker \(workerID): connected to \(configuration.endpoint)") }
                    reachable.withValue { $0 = true }
                }
                guard let store else { continue }
                if lastRenewal.map({ tickStart.nanoseconds(since: $0) >= configuration.lease.renewIntervalNanoseconds }) ?? true {
                    try renew(store, ttl: ttl)
                    lastRenewal = tickStart
                }
                try tick(store, ttl: ttl)
            } catch {
                if redisReachable { logger.warning("worker \(workerID): \(error); its cameras stop at their deadlines unless Redis answers") }
                reachable.withValue { $0 = false }
                store = nil
            }
            let spent = clock.now().nanoseconds(since: tickStart)
            sleep(nanoseconds: configuration.readIntervalNanoseconds > spent ? configuration.readIntervalNanoseconds - spent : 0)
        }
    }

    private var deadline: UInt64 { configuration.lease.deadlineNanoseconds }

    private func renew(_ store: ClusterStore, ttl: Int) throws(RedisConnectionError) {
        let leases = gate.withLock { machine.renewals() }
        guard !leases.isEmpty else { return }
        let sentAt = clock.now()
        let results: [Bool]
        do {
            results = try store.renew(leases, ttlMilliseconds: ttl)
        } catch {
            gate.withLock { machine.renewFailed(count: leases.count) }
            throw error
        }
        gate.withLock {
            for (lease, kept) in zip(leases, results) {
                if kept {
                    machine.renewed(camera: lease.camera, token: lease.token, sentAt: sentAt)
                    fence.extend(camera: lease.camera, token: lease.token, until: sentAt.advanced(byNanoseconds: deadline))
                } else {
                    _ = apply(machine.renewRefused(camera: lease.camera, token: lease.token))
                }
            }
        }
    }

    private func tick(_ store: ClusterStore, ttl: Int) throws(RedisConnectionError) {
        let running = gate.withLock { machine.running.count }
        try store.heartbeat(WorkerHeartbeat(worker_id: workerID, capacity: configuration.lease.capacity, labels: configuration.lease.labels,
                                            cameras: running, api: apiAddress.withValue { $0 }),
                            ttlMilliseconds: Int(min(configuration.heartbeatTTLNanoseconds, configuration.lease.ttlNanoseconds) / 1_000_000))
        let view = try store.view()
        guard cameras.phase == .running else { return }
        let now = clock.now()
        // Two reads after a (re)connection every live worker has written its heartbeat again.
        let sharesKnown = now.nanoseconds(since: connectedAt) >= 2 * configuration.readIntervalNanoseconds
        let work = gate.withLock {
            registry = view.cameras
            return apply(machine.plan(now: now, view: view, onlyLapsed: !sharesKnown))
        }
        for action in work {
            switch action {
            case .claim(let camera, let reason):
                let sentAt = clock.now()
                let grant: ClusterStore.Grant?
                let resuming = gate.withLock { machine.resumableEpoch(of: camera) }
                do {
                    grant = try store.claim(camera: camera, worker: workerID, ttlMilliseconds: ttl, resuming: resuming)
                } catch {
                    gate.withLock { machine.claimFailed(camera: camera) }
                    throw error
                }
                gate.withLock {
                    guard var grant else { return machine.claimFailed(camera: camera) }
                    let resumed = grant.token.epoch == resuming
                    if resumed, let stamped = fence.lastStampedFrame(ofCamera: camera) {
                        // Its own frames still in the spool come first: numbers go on after them.
                        grant.lastFrame = (max(grant.lastFrame?.number ?? stamped, stamped), grant.lastFrame?.unixMilliseconds ?? Self.unixMilliseconds())
                    }
                    fence.grant(camera: camera, token: grant.token, validUntil: sentAt.advanced(byNanoseconds: deadline))
                    let why = resumed ? "resumed after its lease lapsed" : reason
                    _ = apply(machine.claimed(camera: camera, token: grant.token, sentAt: sentAt, reason: why), grant: grant)
                }
            case .release(let camera, let token):
                fence.revoke(camera: camera)
                try store.release(camera: camera, token: token)
            case .start, .stop, .handOff:
                break
            }
        }
    }

    // MARK: actions

    /// Carries out the starts and stops (with `gate` held); returns the claims and releases, which
    /// need Redis.
    private func apply(_ actions: [WorkerLeaseStateMachine.Action], grant: ClusterStore.Grant? = nil) -> [WorkerLeaseStateMachine.Action] {
        var redisWork: [WorkerLeaseStateMachine.Action] = []
        for action in actions {
            switch action {
            case .start(let camera, let token, let reason):
                start(camera, token: token, reason: reason, lastFrame: grant?.lastFrame)
            case .stop(let camera, let reason):
                // Publishing stops first: a frame still in the pipeline is refused, not sent.
                fence.revoke(camera: camera)
                stopCamera(camera, reason: reason, policy: .drop)
            case .handOff(let camera, let reason):
                // Its frames in flight are still published, under the lease kept until the release.
                stopCamera(camera, reason: reason, policy: .drain)
            case .claim, .release:
                redisWork.append(action)
            }
        }
        return redisWork
    }

    private func stopCamera(_ camera: String, reason: String, policy: SourceRemovalPolicy) {
        // Not removed (the pipeline is stopping): it is still listed, with its lease, to the end.
        guard (try? cameras.remove(StreamChange(kind: .remove, cameraID: camera), policy: policy)) != nil else { return }
        leaseInfo.withValue { $0[camera] = nil }
        logger.notice("worker \(workerID): camera \(camera) stopped: \(reason)")
    }

    private func start(_ camera: String, token: LeaseToken, reason: String, lastFrame: (number: Int, unixMilliseconds: Int)?) {
        guard let record = registry[camera] else { return }
        let now = Self.unixMilliseconds()
        leaseInfo.withValue {
            $0[camera] = LeaseInfo(token: token, sinceUnixMilliseconds: now, reason: reason,
                                   handoverGapMilliseconds: lastFrame.map { max(0, now - $0.unixMilliseconds) })
        }
        do {
            let change = StreamChange(kind: .add, cameraID: camera, cameraName: record.cameraName, cameraURL: record.cameraURL)
            try cameras.add(change, firstFrameNumber: lastFrame.map { $0.number + 1 } ?? 0)
            let continued = lastFrame.map { ", frames from \($0.number + 1) (\(max(0, now - $0.unixMilliseconds)) ms after its last message)" } ?? ""
            logger.notice("worker \(workerID): camera \(camera) started under lease \(token): \(reason)\(continued)")
        } catch {
            logger.error("worker \(workerID): camera \(camera) (\(record.cameraURL)): \(error)")
        }
    }

    static func unixMilliseconds() -> Int {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return spec.tv_sec * 1000 + spec.tv_nsec / 1_000_000
    }
}
