import Foundation
import Testing

/// A real `redis-server` on 127.0.0.1, started by the test (append-only file in a folder of its
/// own, so a restart keeps what it had), killed and restarted by PID.
final class RedisServer: @unchecked Sendable {
    let port: Int
    let directory: URL
    private(set) var process: RunningProcess?

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-redis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var lastError = ""
        for _ in 0..<10 {
            let candidate = Int.random(in: 20_000..<40_000)
            if let started = try? Self.launch(port: candidate, directory: directory) {
                port = candidate
                process = started
                return
            }
            lastError = "port \(candidate) taken"
        }
        throw ServiceUnderTest.ServiceFailed(message: "redis-server did not start: \(lastError)")
    }

    private static func launch(port: Int, directory: URL) throws -> RunningProcess? {
        let process = try RunningProcess("/usr/bin/redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "",
                                                                    "--appendonly", "yes", "--appendfsync", "always", "--dir", directory.path])
        guard process.waitForOutput(#"(Ready to accept connections)"#, timeout: 10) != nil else {
            _ = process.stop(SIGKILL)
            return nil
        }
        return process
    }

    func kill() { _ = process?.stop(SIGKILL); process = nil }

    func restart() throws {
        guard let started = try Self.launch(port: port, directory: directory) else {
            throw ServiceUnderTest.ServiceFailed(message: "redis-server did not restart on \(port)")
        }
        process = started
    }

    var url: String { "redis://127.0.0.1:\(port)" }

    /// The independent consumer's view of a stream (tests/python/redis_stream_check.py, redis-py).
    func check(stream: String, layout: String) throws -> [String: Any] {
        let consumer = try RunningProcess(ServicePaths.path(".deps/checkers/bin/python"),
                                          [ServicePaths.path("tests/python/redis_stream_check.py"), String(port), stream, layout])
        _ = waitFor(timeout: 120) { !consumer.process.isRunning }
        consumer.process.waitUntilExit()
        let line = consumer.standardOutput.split(separator: "\n").last.map(String.init) ?? ""
        return (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? ["error": consumer.standardError]
    }

    deinit {
        kill()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// `--redis`: each frame's message in Redis Streams, in DeepStream's layouts, and nothing lost
/// while Redis is down (the disk spool, replayed in order).
@Suite(.serialized) struct MetadataRedisTests {
    static var appBinary: String {
        let beside = Bundle.main.executableURL.map {
            $0.resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("imagedata-multistream").path
        }
        return [beside, ServicePaths.path(".build/debug/imagedata-multistream")].compactMap { $0 }
            .first { FileManager.default.isExecutableFile(atPath: $0) } ?? ""
    }

    @Test(.timeLimit(.minutes(3)), arguments: ["key", "metadata"])
    func twoSourcesToTheirEndGiveOneEntryPerFrame(layout: String) throws {
        try ServicePaths.requireMedia()
        let redis = try RedisServer()
        let spool = redis.directory.appendingPathComponent("spool").path
        let app = try RunningProcess(Self.appBinary, ["-i", ServicePaths.path("media/vtest.avi"), ServicePaths.path("media/sample_720p_h264.mp4"),
                                                      "--no-display", "--no-detector", "-s", "--width", "320", "--height", "240",
                                                      "--redis", redis.url, "--redis-stream", "frames", "--redis-field", layout, "--meta-spool", spool])
        #expect(waitFor(timeout: 120) { !app.process.isRunning })
        app.process.waitUntilExit()
        #expect(app.process.terminationStatus == 0, "\(app.standardError.suffix(1000))")
        #expect(app.standardOutput.contains("published 1590, sent 1590, spooled 0, replayed 0, dropped 0"), "\(app.standardOutput.suffix(400))")
        let seen = try redis.check(stream: "frames", layout: layout)
        #expect(seen["entries"] as? Int == 1590, "one entry per frame: \(seen)")
        #expect(seen["unique"] as? Int == 1590, "message ids unique")
        #expect((seen["errors"] as? [String])?.isEmpty == true, "fields as documented: \(seen)")
        #expect(seen["cameras"] as? [String] == ["0", "1"])
    }

    @Test(.timeLimit(.minutes(3)))
    func redisDownForFiveSecondsLosesNothingAndSlowsNothing() throws {
        try ServicePaths.requireMedia()
        let redis = try RedisServer()
        let spool = redis.directory.appendingPathComponent("spool").path
        let service = try ServiceUnderTest(["--no-detector", "--width", "160", "--height", "120", "--tiler-width", "320", "--tiler-height", "240",
                                            "--file-loop", "--real-time", "-i", ServicePaths.fileURLAVI, ServicePaths.fileURL720p,
                                            "--redis", redis.url, "--meta-spool", spool])
        // --real-time: the files at their own rate, as cameras send, so the rate before and during
        // the outage is the streams' own unless the sink holds the pipeline back (as fast as they
        // decode, the clips' content moved it by ±10 %).
        #expect(waitFor(timeout: 30) { service.delivered() > 50 })
        let before = service.deliveryRate(over: 2.5)  // ≈ 3 s into the run
        redis.kill()
        usleep(500_000)
        let during = service.deliveryRate(over: 4.5)  // down 5 s in all
        try redis.restart()
        sleep(3)
        let scrape = try service.scrape()
        let spooledMetric = scrape.split(separator: "\n").first { $0.hasPrefix("tributary_meta_spooled_total{sink=\"redis://") }
        #expect(spooledMetric.flatMap { Double($0.split(separator: " ").last ?? "") }.map { $0 > 0 } == true,
                "/metrics counts the spooled messages: \(spooledMetric ?? "absent")")
        #expect(try promtool(scrape).status == 0)
        #expect(service.process.stop(SIGINT, timeout: 60) == 130)
        let summary = service.process.standardError.split(separator: "\n").first { $0.contains("redis 127.0.0.1") && $0.contains("published") }
            .map(String.init) ?? ""
        let figures = try NSRegularExpression(pattern: #"published (\d+), sent (\d+), spooled (\d+), replayed (\d+), dropped (\d+), left in the spool (\d+)"#)
        let match = try #require(figures.firstMatch(in: summary, range: NSRange(summary.startIndex..., in: summary)), "the summary: \(summary)")
        let n = (1...6).map { Int(summary[Range(match.range(at: $0), in: summary)!])! }
        print("Redis down 5 s: frames/s \(Int(before)) before, \(Int(during)) during; \(summary)")
        #expect(n[2] > 0 && n[3] == n[2] && n[4] == 0 && n[5] == 0, "spooled while down, all replayed, none dropped: \(summary)")
        #expect(during >= before * 0.9, "the pipeline's rate during the outage within 10 % of before: \(before) → \(during)")
        let seen = try redis.check(stream: "mdx-raw", layout: "key")
        let frames = try #require(Int(service.process.standardError.matches(of: /delivered (\d+)/).map { Int($0.1)! }.reduce(0, +)) as Int?)
        #expect(seen["unique"] as? Int == frames, "every frame's message is in the stream: \(seen), \(frames) frames")
        let duplicates = (seen["entries"] as? Int ?? 0) - (seen["unique"] as? Int ?? 0)
        #expect(duplicates >= 0 && duplicates <= 512, "duplicates only from the batch in flight (≤ 512), de-duplicable by id: \(duplicates)")
    }

    @Test(.timeLimit(.minutes(3)))
    func aBrokerThatNeverAnswersSlowsNothingAndAFullSpoolDropsTheOldest() throws {
        try ServicePaths.requireMedia()
        // A port that accepts every connection and never answers.
        let silent = try RunningProcess("/usr/bin/python3", ["-c", """
            import socket, time
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 0)); s.listen(64)
            print("port", s.getsockname()[1], flush=True)
            held = []
            while True: held.append(s.accept())
            """])
        let port = try #require(silent.waitForOutput(#"port (\d+)"#, timeout: 10))
        let spool = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-spool-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: spool); _ = silent.stop(SIGKILL) }
        func run(_ extra: [String]) throws -> (seconds: Double, output: String) {
            let started = Date()
            let app = try RunningProcess(Self.appBinary, ["-i", ServicePaths.path("media/vtest.avi"), ServicePaths.path("media/sample_720p_h264.mp4"),
                                                          "--no-display", "--no-detector", "-s", "--width", "320", "--height", "240"] + extra)
            _ = waitFor(timeout: 120) { !app.process.isRunning }
            app.process.waitUntilExit()
            #expect(app.process.terminationStatus == 0)
            return (Date().timeIntervalSince(started), app.standardOutput + app.standardError)
        }
        let alone = try run([])
        let stalled = try run(["--redis", "redis://127.0.0.1:\(port)", "--meta-spool", spool, "--meta-spool-mb", "0.25"])
        print("no broker: \(alone.seconds) s; a broker that never answers: \(stalled.seconds) s")
        // The run waits once for the sink's 2-s call timeout at its end, nothing more.
        #expect(stalled.seconds <= alone.seconds + 6, "not slowed: \(alone.seconds) s alone, \(stalled.seconds) s beside a silent broker")
        let summary = stalled.output.split(separator: "\n").first { $0.hasPrefix("redis 127.0.0.1") }.map(String.init) ?? ""
        let figures = try NSRegularExpression(pattern: #"published (\d+), sent (\d+), spooled (\d+), replayed (\d+), dropped (\d+), left in the spool (\d+)"#)
        let match = try #require(figures.firstMatch(in: summary, range: NSRange(summary.startIndex..., in: summary)), "\(stalled.output.suffix(800))")
        let n = (1...6).map { Int(summary[Range(match.range(at: $0), in: summary)!])! }
        #expect(n[0] == 1590 && n[1] == 0, "nothing acknowledged by a silent broker: \(summary)")
        #expect(n[2] == 1590, "everything spooled: \(summary)")
        #expect(n[4] > 0 && n[5] + n[4] == 1590, "a 0.25 MiB spool keeps the newest, drops and counts the oldest: \(summary)")
    }
}
