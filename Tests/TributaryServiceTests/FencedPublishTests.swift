import Foundation
import Logging
import Testing
@testable import Tributary
@testable import TributaryService

/// The leases and the fenced publish against a real `redis-server`: a lease is one worker's at a
/// time with a new epoch at every grant, and a message goes into the stream only while the lease
/// it was published under is still the camera's.
@Suite(.serialized) struct FencedPublishTests {
    func message(_ camera: String, _ frame: Int) -> FrameMessage {
        FrameMessage(id: "\(camera):run:\(frame)", cameraID: camera, sourceID: 0, frameNumber: frame,
                     json: #"{"camera_id":"\#(camera)","frame_number":\#(frame)}"#)
    }

    @Test(.timeLimit(.minutes(1)))
    func aLeaseIsOneWorkersWithANewEpochAtEachGrant() throws {
        let redis = try RedisServer()
        let store = try ClusterStore(RedisEndpoint(url: redis.url))
        let first = try #require(try store.claim(camera: "cam1", worker: "w1", ttlMilliseconds: 6_000))
        #expect(first.token == LeaseToken(worker: "w1", epoch: 1) && first.lastFrame == nil)
        #expect(try store.claim(camera: "cam1", worker: "w2", ttlMilliseconds: 6_000) == nil, "held: SET NX refuses")
        #expect(try store.renew([("cam1", first.token), ("cam1", LeaseToken(worker: "w2", epoch: 1))], ttlMilliseconds: 6_000) == [true, false])
        #expect(try store.release(camera: "cam1", token: LeaseToken(worker: "w1", epoch: 7)) == false, "not its token")
        #expect(try store.release(camera: "cam1", token: first.token))
        let second = try #require(try store.claim(camera: "cam1", worker: "w2", ttlMilliseconds: 300))
        #expect(second.token == LeaseToken(worker: "w2", epoch: 2))
        usleep(500_000)
        #expect(try store.renew([("cam1", second.token)], ttlMilliseconds: 6_000) == [false], "expired: not renewed back to life")
        #expect(try store.claim(camera: "cam1", worker: "w3", ttlMilliseconds: 6_000)?.token == LeaseToken(worker: "w3", epoch: 3))
    }

    @Test(.timeLimit(.minutes(1)))
    func aLapsedLeaseIsResumedWithItsEpochOnlyIfNobodyWasGrantedItSince() throws {
        let redis = try RedisServer()
        let store = try ClusterStore(RedisEndpoint(url: redis.url))
        let first = try #require(try store.claim(camera: "cam1", worker: "w1", ttlMilliseconds: 200))
        usleep(400_000)  // expired: Redis was away, say
        let resumed = try #require(try store.claim(camera: "cam1", worker: "w1", ttlMilliseconds: 200, resuming: first.token.epoch))
        #expect(resumed.token == first.token, "nobody else was granted it: the same epoch, its spooled messages still valid")
        usleep(400_000)
        let other = try #require(try store.claim(camera: "cam1", worker: "w2", ttlMilliseconds: 200))
        #expect(other.token == LeaseToken(worker: "w2", epoch: 2))
        usleep(400_000)
        let late = try #require(try store.claim(camera: "cam1", worker: "w1", ttlMilliseconds: 6_000, resuming: first.token.epoch))
        #expect(late.token == LeaseToken(worker: "w1", epoch: 3), "w2 had it meanwhile: a new epoch")
    }

    @Test(.timeLimit(.minutes(1)))
    func aStaleWorkersMessagesAreRefusedAndCounted() throws {
        let redis = try RedisServer()
        let endpoint = try RedisEndpoint(url: redis.url)
        let store = try ClusterStore(endpoint)
        let lease = try #require(try store.claim(camera: "cam1", worker: "w1", ttlMilliseconds: 60_000))
        let fence = PublishFence()
        fence.grant(camera: "cam1", token: lease.token, validUntil: BootTimeClock().now().advanced(byNanoseconds: 60_000_000_000))
        var configuration = try RedisSinkConfiguration(url: redis.url, spoolDirectory: redis.directory.appendingPathComponent("spool").path)
        configuration.stream = "frames"
        configuration.fence = fence
        let sink = try BrokerSink.redis(configuration, logger: Logger(label: "test"))
        // cam2 has no lease here: refused before it is queued.
        try sink.publish((0..<5).map { message("cam1", $0) } + [message("cam2", 0), message("cam2", 1)])
        #expect(waitFor(timeout: 10) { sink.counts.sent == 5 })
        #expect(sink.counts.fenced == 2, "refused before it was queued")

        // The lease expires but nobody claims the camera: w1's frames are still the camera's only
        // ones (no later epoch), so they are taken.
        _ = try store.client.command(["DEL", ClusterKeys.lease("cam1")])
        try sink.publish([message("cam1", 5)])
        #expect(waitFor(timeout: 10) { sink.counts.sent == 6 })

        // Another worker takes the camera (w1 was paused past its TTL): w1's late frames are refused by Redis.
        let taken = try #require(try store.claim(camera: "cam1", worker: "w2", ttlMilliseconds: 60_000))
        #expect(taken.lastFrame?.number == 5, "the next owner continues after frame 5")
        try sink.publish((6..<9).map { message("cam1", $0) })
        #expect(waitFor(timeout: 10) { sink.counts.fenced == 5 })
        try sink.finish()
        #expect(sink.counts == MetadataSinkCounts(published: 11, sent: 6, fenced: 5))

        let entries = try #require(try store.client.command(["XRANGE", "frames", "-", "+"]).array)
        #expect(entries.count == 6)
        let fields = entries.compactMap { $0.array?.last?.array?.compactMap(\.string) }
        #expect(fields.allSatisfy { $0.count == 6 && $0[1] == "cam1" && $0[5] == #"{"worker":"w1","epoch":1}"# }, "\(fields.first ?? [])")
        #expect(fields.map { $0[3] }.last == #"{"camera_id":"cam1","frame_number":5}"#)
    }
}
