import Foundation
import Testing

/// A real `mosquitto` on 127.0.0.1, started by the test and stopped by PID; it saves its sessions
/// every second (persistence in a folder of its own), so a restart keeps the subscriber's session
/// and what is queued for it, as a production broker would. It runs as the test's user: started by
/// root, mosquitto otherwise becomes `mosquitto`, cannot write the folder, and a restart forgets the
/// subscriber (then what the sink replays before the subscriber is back reaches no one).
final class MQTTBroker: @unchecked Sendable {
    let port: Int
    let directory: URL
    private(set) var process: RunningProcess?

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-mqtt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for _ in 0..<10 {
            let candidate = Int.random(in: 20_000..<40_000)
            if let started = try Self.launch(port: candidate, directory: directory) {
                port = candidate
                process = started
                return
            }
        }
        throw ServiceUnderTest.ServiceFailed(message: "mosquitto did not start")
    }

    private static func launch(port: Int, directory: URL) throws -> RunningProcess? {
        let configuration = directory.appendingPathComponent("mosquitto.conf")
        try """
            listener \(port) 127.0.0.1
            allow_anonymous true
            persistence true
            persistence_location \(directory.path)/
            autosave_interval 1
            max_queued_messages 0
            user \(String(cString: getpwuid(getuid()).pointee.pw_name))
            """.write(to: configuration, atomically: true, encoding: .utf8)
        let process = try RunningProcess("/usr/sbin/mosquitto", ["-c", configuration.path])
        // mosquitto says nothing on standard output: ready once the port answers.
        let ready = waitFor(timeout: 5) {
            let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(socket) }
            var address = sockaddr_in(sin_family: sa_family_t(AF_INET), sin_port: in_port_t(UInt16(port).bigEndian),
                                      sin_addr: in_addr(s_addr: inet_addr("127.0.0.1")), sin_zero: (0, 0, 0, 0, 0, 0, 0, 0))
            return withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 } }
        }
        guard ready, process.process.isRunning else { _ = process.stop(SIGKILL); return nil }
        return process
    }

    /// Whether it exited on `signal` within 10 s (else it was killed).
    @discardableResult
    func kill(_ signal: Int32 = SIGKILL) -> Bool {
        defer { process = nil }
        return process?.stop(signal, timeout: 10) != nil
    }

    func restart() throws {
        guard let started = try Self.launch(port: port, directory: directory) else { throw ServiceUnderTest.ServiceFailed(message: "mosquitto did not restart") }
        process = started
    }

    var url: String { "mqtt://127.0.0.1:\(port)" }

    /// An independent subscriber (tests/python/mqtt_collect.py, paho-mqtt), ready when this returns.
    func subscriber(topic: String, quietSeconds: Double = 3, limitSeconds: Double = 120) throws -> RunningProcess {
        let subscriber = try RunningProcess(ServicePaths.path(".deps/checkers/bin/python"),
                                            [ServicePaths.path("tests/python/mqtt_collect.py"), String(port), topic,
                                             String(quietSeconds), String(limitSeconds)])
        guard subscriber.waitForOutput(#"(ready)"#, timeout: 20) != nil else {
            throw ServiceUnderTest.ServiceFailed(message: "the subscriber did not subscribe: \(subscriber.standardError)")
        }
        return subscriber
    }

    static func result(of subscriber: RunningProcess, timeout: Double) -> [String: Any] {
        _ = waitFor(timeout: timeout) { !subscriber.process.isRunning }
        let line = subscriber.standardOutput.split(separator: "\n").last.map(String.init) ?? ""
        return (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? ["error": subscriber.standardError]
    }

    deinit {
        kill()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// `--mqtt`: each frame's message at QoS 1 on one topic, read by an independent paho subscriber.
@Suite(.serialized) struct MetadataMQTTTests {
    @Test(.timeLimit(.minutes(3)))
    func twoSourcesToTheirEndGiveOneMessagePerFrame() throws {
        try ServicePaths.requireMedia()
        let broker = try MQTTBroker()
        let subscriber = try broker.subscriber(topic: "cameras/frames")
        let spool = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-spool-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: spool) }
        let app = try RunningProcess(MetadataRedisTests.appBinary, ["-i", ServicePaths.path("media/vtest.avi"), ServicePaths.path("media/sample_720p_h264.mp4"),
                                                                    "--no-display", "--no-detector", "-s", "--width", "320", "--height", "240",
                                                                    "--mqtt", broker.url, "--mqtt-topic", "cameras/frames", "--meta-spool", spool])
        #expect(waitFor(timeout: 120) { !app.process.isRunning })
        app.process.waitUntilExit()
        #expect(app.process.terminationStatus == 0, "\(app.standardError.suffix(800))")
        #expect(app.standardOutput.contains("published 1590, sent 1590, spooled 0, replayed 0, dropped 0"), "\(app.standardOutput.suffix(400))")
        let seen = MQTTBroker.result(of: subscriber, timeout: 30)
        #expect(seen["messages"] as? Int == 1590, "one message per frame: \(seen)")
        #expect(seen["unique"] as? Int == 1590)
        #expect(seen["cameras"] as? [String] == ["0", "1"])
    }

    @Test(.timeLimit(.minutes(3)))
    func theBrokerDownForFiveSecondsLosesNothing() throws {
        try ServicePaths.requireMedia()
        let broker = try MQTTBroker()
        let subscriber = try broker.subscriber(topic: "tributary/frames", quietSeconds: 8)
        let spool = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-spool-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: spool) }
        let service = try ServiceUnderTest(["--no-detector", "--width", "160", "--height", "120", "--tiler-width", "320", "--tiler-height", "240",
                                            "--file-loop", "--real-time", "-i", ServicePaths.fileURL720p,
                                            "--mqtt", broker.url, "--meta-spool", spool])
        // --real-time: see the Redis outage test.
        #expect(waitFor(timeout: 30) { service.delivered() > 50 })
        let before = service.deliveryRate(over: 2.5)
        // SIGTERM: the broker saves what it acknowledged. A SIGKILLed mosquitto loses the messages it
        // acknowledged since its last save and had not yet passed on (seen: 31 in 1 of 5 runs) — its
        // loss, not the sink's, which this test is about.
        #expect(broker.kill(SIGTERM), "mosquitto exits on SIGTERM")
        usleep(500_000)
        let during = service.deliveryRate(over: 4.5)  // down 5 s in all
        try broker.restart()
        sleep(4)
        #expect(service.process.stop(SIGINT, timeout: 60) == 130)
        let summary = service.process.standardError.split(separator: "\n").first { $0.contains("mqtt 127.0.0.1") && $0.contains("published") }
            .map(String.init) ?? ""
        print("MQTT broker down 5 s: frames/s \(Int(before)) before, \(Int(during)) during; \(summary)")
        #expect(during >= before * 0.9, "the pipeline's rate during the outage within 10 % of before: \(before) → \(during)")
        #expect(summary.contains("dropped 0, left in the spool 0"), "\(summary)")
        #expect(summary.contains("spooled") && !summary.contains("spooled 0,"), "spooled while the broker was down: \(summary)")
        let frames = service.process.standardError.matches(of: /delivered (\d+)/).map { Int($0.1)! }.reduce(0, +)
        let seen = MQTTBroker.result(of: subscriber, timeout: 30)
        let gaps = (seen["gaps"] as? [String: [[Int]]])?["0"] ?? [[-1, -1]]
        let duplicates = (seen["messages"] as? Int ?? 0) - (seen["unique"] as? Int ?? 0)
        print("MQTT subscriber: \(seen["unique"] ?? "?") of \(frames) frames, \(duplicates) duplicates; runs missing: \(gaps)")
        #expect(seen["unique"] as? Int == frames, "every frame's message reached the subscriber: \(seen)")
        #expect((seen["highest"] as? [String: Int])?["0"] == frames - 1 && gaps.isEmpty, "runs missing: \(gaps)")
        // At-least-once: duplicates only from what was in flight when the broker went — one send of
        // the sink (at most its batch limit, 256) and the broker's window to the subscriber (20).
        #expect(duplicates <= 256 + 20, "duplicates \(duplicates)")
    }
}
