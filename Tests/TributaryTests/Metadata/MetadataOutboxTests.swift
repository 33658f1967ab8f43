import Testing
@testable import Tributary

/// A network sink's decisions, event by event: memory, spool, replay, drop. No I/O.
@Suite struct MetadataOutboxTests {
    typealias Outbox = MetadataOutbox<Int>

    @Test func connectedItSendsInBatchesInOrder() {
        var outbox = Outbox(memoryCapacity: 100, batchLimit: 4)
        outbox.connectionChanged(true)
        #expect(outbox.published(Array(0..<10)) == 0)
        #expect(outbox.nextStep() == .send(count: 4))
        #expect(outbox.take(4) == [0, 1, 2, 3])
        outbox.sent(4)
        #expect(outbox.nextStep() == .send(count: 4))
        #expect(outbox.take(4) == [4, 5, 6, 7])
        outbox.sent(4)
        #expect(outbox.nextStep() == .send(count: 2))
        #expect(outbox.take(2) == [8, 9])
        outbox.sent(2)
        #expect(outbox.nextStep() == .idle)
        #expect(outbox.counts == .init(published: 10, sent: 10, spooled: 0, replayed: 0, dropped: 0))
    }

    @Test func disconnectedItSpoolsAndReplaysTheSpoolFirstWhenBack() {
        var outbox = Outbox(memoryCapacity: 100, batchLimit: 8)
        _ = outbox.published(Array(0..<5))
        #expect(outbox.nextStep() == .spool(count: 5), "down: to disk")
        outbox.spooled(outbox.take(5).count)
        _ = outbox.published([5, 6])
        outbox.connectionChanged(true)
        #expect(outbox.nextStep() == .replay, "back: the spool goes before newer messages")
        outbox.replayed(5)
        #expect(outbox.nextStep() == .send(count: 2))
        #expect(outbox.take(2) == [5, 6])
        outbox.sent(2)
        #expect(outbox.counts == .init(published: 7, sent: 2, spooled: 5, replayed: 5, dropped: 0))
        #expect(outbox.spoolBacklog == 0)
    }

    @Test func aBatchLostInFlightIsSpooledAndReplayed() {
        var outbox = Outbox(memoryCapacity: 100, batchLimit: 8)
        outbox.connectionChanged(true)
        _ = outbox.published(Array(0..<3))
        let batch = outbox.take(3)
        outbox.connectionChanged(false)  // the send failed
        outbox.spooled(batch.count)
        #expect(outbox.spoolBacklog == 3)
        outbox.connectionChanged(true)
        #expect(outbox.nextStep() == .replay)
    }

    @Test func fullMemoryAndAFullSpoolDropTheOldestAndCountThem() {
        var outbox = Outbox(memoryCapacity: 4, batchLimit: 8)
        #expect(outbox.published(Array(0..<6)) == 2, "the pipeline never waits: the oldest go")
        #expect(outbox.take(4) == [2, 3, 4, 5])
        outbox.spooled(4)
        outbox.spoolDropped(3)
        #expect(outbox.spoolBacklog == 1)
        #expect(outbox.counts.dropped == 5)
    }
}

/// The broker flags' addresses.
@Suite struct BrokerAddressTests {
    @Test func redisAndMQTTAddressesAreReadWithTheirDefaults() throws {
        let redis = try RedisSinkConfiguration(url: "redis://10.0.0.7:6380/3", spoolDirectory: "/tmp/s")
        #expect(redis.host == "10.0.0.7" && redis.port == 6380 && redis.database == 3)
        let plain = try RedisSinkConfiguration(url: "redis://cache", spoolDirectory: "/tmp/s")
        #expect(plain.port == 6379 && plain.database == 0)
        let mqtt = try MQTTSinkConfiguration(url: "mqtt://broker", spoolDirectory: "/tmp/s")
        #expect(mqtt.host == "broker" && mqtt.port == 1883)
        for bad in ["http://x", "redis://", "redis://host:0", "redis://host:port", "redis://host/db"] {
            #expect(throws: PipelineError.self, "\(bad)") { try RedisSinkConfiguration(url: bad, spoolDirectory: "/tmp/s") }
        }
        #expect(throws: PipelineError.self) { try MQTTSinkConfiguration(url: "mqtt://host:99999", spoolDirectory: "/tmp/s") }
    }
}
