import Foundation
import Testing
@testable import Tributary
@testable import TributaryService

/// Two `tributary worker`s on one real `redis-server` (127.0.0.1): the registry changed by REST on
/// either worker and by `tributary cameras`, every camera run by exactly one of them with its lease
/// in `get-stream-info`, the worker metrics, and a graceful stop that hands its cameras over.
/// (Failover across hosts — kill, freeze, a cut link, Redis restarted — is `ClusterFailoverTests`.)
@Suite(.serialized) struct ClusterWorkerTests {
    func worker(_ id: String, redis: RedisServer, capacity: Int = 4) throws -> ServiceUnderTest {
        try ServiceUnderTest(["--redis", redis.url, "--worker-id", id, "--capacity", String(capacity), "--no-detector", "--file-loop",
                              "--real-time", "--width", "160", "--height", "120", "--tiler-width", "320", "--tiler-height", "240",
                              "--meta-spool", redis.directory.appendingPathComponent("spool-\(id)").path], command: "worker")
    }

    func cameras(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = try RunningProcess(ServicePaths.binary, ["cameras"] + arguments)
        _ = waitFor(timeout: 20) { !process.process.isRunning }
        process.process.waitUntilExit()
        return (process.process.terminationStatus, process.standardOutput + process.standardError)
    }

    /// Which worker runs each camera, from both workers' `get-stream-info`.
    func owners(_ workers: [String: ServiceUnderTest]) throws -> [String: [String]] {
        var owners: [String: [String]] = [:]
        for (id, worker) in workers { for camera in try worker.streams().keys { owners[camera, default: []].append(id) } }
        return owners
    }

    @Test(.timeLimit(.minutes(3)))
    func camerasAddedAnywhereRunOnceWithTheirLeasesAndMoveOnAGracefulStop() throws {
        try ServicePaths.requireMedia()
        let redis = try RedisServer()
        let w1 = try worker("w1", redis: redis), w2 = try worker("w2", redis: redis)
        // By REST on either worker, and by the CLI: all go to the registry.
        #expect(try w1.add("cam1", url: ServicePaths.fileURL720p).status == 200)
        #expect(try w2.add("cam2", url: ServicePaths.fileURLAVI).status == 200)
        let added = try cameras(["add", "--redis", redis.url, "--camera-id", "cam3", "--camera-url", ServicePaths.fileURL720p])
        #expect(added.status == 0, "\(added.output)")
        let bad = try w1.add("cam4", url: "nosuch://camera")
        #expect(bad.status == 400 && bad.reason?.contains("nosuch") == true, "\(bad.body)")
        #expect(try w2.add("cam1", url: ServicePaths.fileURL720p).status == 409)
        #expect(try w1.remove("cam9").status == 404)
        #expect(try cameras(["add", "--redis", redis.url, "--camera-id", "cam1", "--camera-url", ServicePaths.fileURL720p]).status == 2)

        // Each camera on exactly one worker, 2 + 1 (the share in worker-id order), frames flowing.
        let both = ["w1": w1, "w2": w2]
        #expect(waitFor(timeout: 20) { (try? self.owners(both))?.count == 3 })
        let owners = try self.owners(both)
        #expect(owners.values.allSatisfy { $0.count == 1 }, "\(owners)")
        #expect(try w1.streams().count == 2 && w2.streams().count == 1, "\(owners)")
        for (camera, stream) in try w1.streams().merging(try w2.streams(), uniquingKeysWith: { a, _ in a }) {
            let worker = owners[camera]?.first
            #expect(stream["lease_worker"] as? String == worker && (stream["lease_epoch"] as? Int ?? 0) >= 1, "\(stream)")
            #expect((stream["lease_reason"] as? String)?.hasPrefix("claimed") == true || (stream["lease_reason"] as? String) != nil)
        }
        #expect(waitFor(timeout: 20) { w1.delivered() > 30 && w2.delivered() > 15 })
        let list = try cameras(["list", "--redis", redis.url])
        #expect(list.status == 0 && list.output.split(separator: "\n").count == 3, "\(list.output)")
        for (camera, worker) in owners { #expect(list.output.contains(#""camera_id":"\#(camera)""#) && list.output.contains(#""owner":"\#(worker[0])""#)) }

        // The worker metrics, promtool-clean.
        let scrape = try w1.scrape()
        #expect(scrape.contains(#"tributary_worker_cameras{worker_id="w1"} 2"#), "\(scrape.split(separator: "\n").filter { $0.contains("worker") })")
        #expect(scrape.contains(#"tributary_lease_renew_failures_total{worker_id="w1"} 0"#))
        #expect(scrape.contains("tributary_fenced_publish_rejected_total"))
        let check = try promtool(scrape)
        #expect(check.status == 0, "promtool check metrics: \(check.output)")

        // Removed by REST on the other worker: its owner stops it.
        let removed = try #require(owners["cam2"]?.first)
        #expect(try (removed == "w1" ? w2 : w1).remove("cam2").status == 200)
        #expect(waitFor(timeout: 5) { (try? (removed == "w1" ? w1 : w2).streams()["cam2"]) == nil })
        // Its lease goes a second after the stop (its last messages are published under it first).
        let store = try ClusterStore(RedisEndpoint(url: redis.url))
        #expect(waitFor(timeout: 5) { (try? store.client.command(["GET", ClusterKeys.lease("cam2")])) == .null })

        // w1 stops (SIGTERM): its leases are released, w2 takes its cameras within a few seconds.
        let w1Cameras = Set(try w1.streams().keys)
        let stopped = Date()
        #expect(w1.process.stop(SIGTERM) == 143)
        #expect(w1.process.standardError.contains("released \(w1Cameras.count) lease(s)"), "\(w1.process.standardError.suffix(800))")
        #expect(waitFor(timeout: 10) { Set((try? w2.streams().keys).map(Array.init) ?? []).isSuperset(of: w1Cameras) })
        let handover = Date().timeIntervalSince(stopped)
        #expect(handover < 5, "released leases are claimed at the next read: \(handover) s")
        // The next owner continues the frame numbers: the lease info says when its predecessor last published.
        for camera in w1Cameras {
            let stream = try #require(try w2.streams()[camera])
            #expect(stream["lease_worker"] as? String == "w2" && stream["handover_gap_ms"] is Int, "\(stream)")
        }
        _ = w2.process.stop(SIGTERM)
    }
}
