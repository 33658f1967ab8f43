import Testing
import Tributary
@testable import TributaryService

/// The workers' lease logic event by event on instants of our own: claims up to a share, the local
/// deadline before the TTL, renewals counted from when they were sent, hand-offs, capacity and labels.
@Suite struct WorkerLeaseStateMachineTests {
    static let second: UInt64 = 1_000_000_000
    func at(_ seconds: Double) -> MonotonicInstant { MonotonicInstant(nanoseconds: UInt64(seconds * 1e9) + 1_000 * Self.second) }

    func cameras(_ count: Int, labels: [String: [String]] = [:]) -> [String: CameraRecord] {
        Dictionary(uniqueKeysWithValues: (1...count).map { n in
            let id = "cam\(n)"
            return (id, CameraRecord(cameraID: id, cameraURL: "file:///\(id).mp4", labels: labels[id] ?? []))
        })
    }

    func machine(_ worker: String, capacity: Int = 4, labels: [String] = []) -> WorkerLeaseStateMachine {
        WorkerLeaseStateMachine(configuration: .init(workerID: worker, capacity: capacity, labels: labels))
    }

    func claims(_ actions: [WorkerLeaseStateMachine.Action]) -> [String] {
        actions.compactMap { if case .claim(let camera, _) = $0 { camera } else { nil } }.sorted()
    }

    /// Cameras stopped, the lease lost or going (`.stop`).
    func stops(_ actions: [WorkerLeaseStateMachine.Action]) -> [String] {
        actions.compactMap { if case .stop(let camera, _) = $0 { camera } else { nil } }.sorted()
    }

    /// Cameras stopped while their lease is kept a little longer (`.handOff`).
    func handOffs(_ actions: [WorkerLeaseStateMachine.Action]) -> [String] {
        actions.compactMap { if case .handOff(let camera, _) = $0 { camera } else { nil } }.sorted()
    }

    /// Claims every camera its plan asks for, as Redis would grant them, at `time`.
    func grantAll(_ m: inout WorkerLeaseStateMachine, _ actions: [WorkerLeaseStateMachine.Action], epoch: Int = 1, at time: Double) {
        for case .claim(let camera, let reason) in actions {
            let started = m.claimed(camera: camera, token: LeaseToken(worker: m.configuration.workerID, epoch: epoch), sentAt: at(time), reason: reason)
            #expect(started.count == 1)
        }
    }

    @Test func sharesAreEvenInWorkerOrderAndCappedByCapacity() {
        let three = ClusterView(cameras: cameras(7), workers: [.init(workerID: "b", capacity: 4), .init(workerID: "a", capacity: 4),
                                                               .init(workerID: "c", capacity: 4)])
        #expect(three.targets() == ["a": 3, "b": 2, "c": 2])
        let capped = ClusterView(cameras: cameras(7), workers: [.init(workerID: "a", capacity: 1), .init(workerID: "b", capacity: 4),
                                                                .init(workerID: "c", capacity: 4)])
        #expect(capped.targets() == ["a": 1, "b": 3, "c": 3])
        let tooFew = ClusterView(cameras: cameras(9), workers: [.init(workerID: "a", capacity: 2), .init(workerID: "b", capacity: 3)])
        #expect(tooFew.targets() == ["a": 2, "b": 3])
        #expect(ClusterView(cameras: [:], workers: [.init(workerID: "a", capacity: 2)]).targets() == ["a": 0])
    }

    @Test func aLoneWorkerClaimsUpToItsCapacityAndStartsWhatIsGranted() {
        var m = machine("w1", capacity: 4)
        let view = ClusterView(cameras: cameras(6))
        let first = m.plan(now: at(0), view: view)
        #expect(claims(first).count == 4, "its share is all 6, its capacity 4")
        // Claims in flight count: the next tick asks for nothing more.
        #expect(claims(m.plan(now: at(1), view: view)).isEmpty)
        grantAll(&m, first, at: 0)
        #expect(m.running.count == 4)
        #expect(m.renewals().count == 4)
    }

    @Test func aCameraStopsAtItsLocalDeadlineBeforeTheTTL() {
        var m = machine("w1")
        let view = ClusterView(cameras: cameras(1))
        grantAll(&m, m.plan(now: at(0), view: view), at: 0)
        // TTL 6 s, margin 2 s: the deadline is 4 s after the claim was sent.
        #expect(m.expire(now: at(3.9)).isEmpty)
        let token = LeaseToken(worker: "w1", epoch: 1)
        m.renewed(camera: "cam1", token: token, sentAt: at(2))
        #expect(m.expire(now: at(5.9)).isEmpty, "renewed at 2 s: good until 6 s")
        #expect(stops(m.expire(now: at(6))) == ["cam1"])
        #expect(m.expired == 1 && m.running.isEmpty)
        // No release: its key expires by itself at 8 s, after the stop.
        #expect(m.renewals().isEmpty)
    }

    @Test func aRenewalCountsFromWhenItWasSentNotAnswered() {
        var m = machine("w1")
        let token = LeaseToken(worker: "w1", epoch: 1)
        grantAll(&m, m.plan(now: at(0), view: ClusterView(cameras: cameras(1))), at: 0)
        m.renewed(camera: "cam1", token: token, sentAt: at(3.5))
        // A late answer about an older renewal does not move the deadline back.
        m.renewed(camera: "cam1", token: token, sentAt: at(1))
        #expect(m.expire(now: at(7.4)).isEmpty)
        #expect(stops(m.expire(now: at(7.5))) == ["cam1"])
    }

    @Test func lapsedCamerasAreClaimedAgainFirstWithTheirEpoch() {
        var m = machine("w1", capacity: 2)
        let view = ClusterView(cameras: cameras(6))
        grantAll(&m, m.plan(now: at(0), view: view), epoch: 7, at: 0)
        let mine = m.running
        #expect(mine.count == 2)
        // Redis away: both lapse at their deadline.
        #expect(stops(m.expire(now: at(4))) == mine)
        #expect(mine.allSatisfy { m.resumableEpoch(of: $0) == 7 })
        // Back, before the others' heartbeats are: only its own two.
        #expect(claims(m.plan(now: at(9), view: view, onlyLapsed: true)) == mine)
        // One was taken by another worker meanwhile: no longer resumable.
        var m2 = machine("w1", capacity: 2)
        grantAll(&m2, m2.plan(now: at(0), view: view), epoch: 7, at: 0)
        _ = m2.expire(now: at(4))
        var taken = view
        taken.leases[mine[0]] = LeaseToken(worker: "w2", epoch: 8)
        _ = m2.plan(now: at(9), view: taken)
        #expect(m2.resumableEpoch(of: mine[0]) == nil && m2.resumableEpoch(of: mine[1]) == 7)
    }

    @Test func aRefusedRenewalOrAnotherHolderStopsTheCamera() {
        var m = machine("w1")
        let view = ClusterView(cameras: cameras(2))
        grantAll(&m, m.plan(now: at(0), view: view), at: 0)
        #expect(stops(m.renewRefused(camera: "cam1", token: LeaseToken(worker: "w1", epoch: 1))) == ["cam1"])
        var taken = view
        taken.leases = ["cam2": LeaseToken(worker: "w2", epoch: 9)]
        #expect(stops(m.plan(now: at(1), view: taken)) == ["cam2"])
        #expect(m.running.isEmpty)
        // A refusal about a token it no longer holds changes nothing.
        #expect(m.renewRefused(camera: "cam2", token: LeaseToken(worker: "w1", epoch: 1)).isEmpty)
    }

    @Test func aNewWorkerGetsAShareFromTheBusiestOneCameraAtATime() {
        // w1 runs 4, w2 runs 2; w3 joins with none: targets 2/2/2, so only w1 hands off, one per tick.
        var w1 = machine("w1")
        let all = cameras(6)
        var view = ClusterView(cameras: all, workers: [.init(workerID: "w1", capacity: 4), .init(workerID: "w2", capacity: 4)])
        grantAll(&w1, w1.plan(now: at(0), view: view), at: 0)
        #expect(w1.running.count == 3)
        for camera in w1.running { view.leases[camera] = LeaseToken(worker: "w1", epoch: 1) }
        // w1 claimed its share, 3; w2 the other 3 — and then one more of w2's went to w1 (4 against 2).
        let w2Cameras = all.keys.filter { view.leases[$0] == nil }.sorted()
        for camera in w2Cameras.dropLast() { view.leases[camera] = LeaseToken(worker: "w2", epoch: 1) }
        let extra = w2Cameras.last!
        _ = w1.claimed(camera: extra, token: LeaseToken(worker: "w1", epoch: 2), sentAt: at(0), reason: "test")
        view.leases[extra] = LeaseToken(worker: "w1", epoch: 2)
        #expect(w1.running.count == 4)

        view.workers.append(.init(workerID: "w3", capacity: 4))
        let handoff = w1.plan(now: at(1), view: view)
        #expect(handOffs(handoff).count == 1 && stops(handoff).isEmpty && claims(handoff).isEmpty)
        let gone = handOffs(handoff)[0]
        // Still renewed until it is released, a second later.
        #expect(w1.renewals().count == 4 && w1.running.count == 3)
        #expect(w1.plan(now: at(1.5), view: view).isEmpty, "one hand-off in flight at a time")
        let release = w1.plan(now: at(2), view: view)
        #expect(release.first == .release(camera: gone, token: view.leases[gone]!))
        // w3 is still short (the view shows w1 with 4): the next hand-off starts, a second after the first.
        #expect(handOffs(release).count == 1 && w1.running.count == 2)

        // w3 claims what is unowned.
        view.leases[gone] = nil
        var w3 = machine("w3")
        #expect(claims(w3.plan(now: at(2), view: view)) == [gone])
    }

    @Test func labelsAndCapacityDecideWhoMayClaim() {
        let all = cameras(3, labels: ["cam1": ["gpu"]])
        let workers: [WorkerRecord] = [.init(workerID: "a", capacity: 4), .init(workerID: "b", capacity: 4, labels: ["gpu"])]
        var a = machine("a")
        // a's share is 2 of 3, but cam1 is pinned to "gpu".
        let planA = claims(a.plan(now: at(0), view: ClusterView(cameras: all, workers: workers)))
        #expect(!planA.contains("cam1") && planA.count == 2)
        // b (share 1) takes cam1; and a pinned camera nobody short of a share may run is taken beyond the share.
        var b = machine("b", labels: ["gpu"])
        var view = ClusterView(cameras: all, workers: workers)
        view.leases = ["cam2": LeaseToken(worker: "a", epoch: 1), "cam3": LeaseToken(worker: "a", epoch: 1)]
        #expect(claims(b.plan(now: at(0), view: view)) == ["cam1"])
        var full = machine("c", capacity: 1)
        grantAll(&full, full.plan(now: at(0), view: ClusterView(cameras: cameras(3))), at: 0)
        #expect(full.running.count == 1)
        #expect(claims(full.plan(now: at(1), view: ClusterView(cameras: cameras(3)))).isEmpty, "at capacity")
    }

    @Test func aCameraRemovedFromTheRegistryStopsAndItsLeaseGoesAfterItsLastMessages() {
        var m = machine("w1")
        grantAll(&m, m.plan(now: at(0), view: ClusterView(cameras: cameras(2))), at: 0)
        let token = LeaseToken(worker: "w1", epoch: 1)
        var view = ClusterView(cameras: cameras(2))
        view.cameras["cam2"] = nil
        view.leases = ["cam1": token, "cam2": token]
        #expect(m.plan(now: at(1), view: view) == [.handOff(camera: "cam2", reason: "removed from the registry")])
        #expect(m.plan(now: at(2), view: view) == [.release(camera: "cam2", token: token)])
    }

    @Test func aStoppingWorkerStopsAndReleasesEverythingAndClaimsNoMore() {
        var m = machine("w1")
        let view = ClusterView(cameras: cameras(3))
        let planned = m.plan(now: at(0), view: view)
        grantAll(&m, Array(planned.prefix(2)), at: 0)
        let actions = m.stopAll()
        #expect(handOffs(actions).count == 2 && actions.filter { if case .release = $0 { true } else { false } }.count == 2)
        // A claim that was in flight when the stop came is given back at once.
        guard case .claim(let late, _) = planned[2] else { Issue.record("expected a claim"); return }
        #expect(m.claimed(camera: late, token: LeaseToken(worker: "w1", epoch: 5), sentAt: at(1), reason: "")
                == [.release(camera: late, token: LeaseToken(worker: "w1", epoch: 5))])
        #expect(claims(m.plan(now: at(2), view: view)).isEmpty)
    }

    @Test func workersClaimingAtOnceAskForCamerasInDifferentOrders() {
        let ids = (1...12).map { "cam\($0)" }
        let orders = ["w1", "w2", "w3"].map { worker in ids.sorted { WorkerLeaseStateMachine.rank(worker, $0) < WorkerLeaseStateMachine.rank(worker, $1) } }
        #expect(Set(orders.map { $0.first! }).count == 3, "\(orders.map { $0.first! })")
    }
}
