import Foundation
import Testing

/// Per-camera recovery end to end: RTSP cameras whose server is killed and started again on the
/// same port while `tributary serve` runs, beside file cameras that must never wait for them.
@Suite(.serialized) struct ServiceRecoveryTests {
    /// One poll of every camera: its state and decoded frames, when.
    struct Sample { var time: Date; var state: [String: String]; var decoded: [String: Int] }

    static func sample(_ service: ServiceUnderTest) -> Sample? {
        guard let streams = try? service.streams() else { return nil }
        return Sample(time: Date(), state: streams.mapValues { $0["state"] as? String ?? "" },
                      decoded: streams.mapValues { $0["frames_decoded"] as? Int ?? 0 })
    }

    /// The longest time `camera`'s decoded count stood still across `samples`, in seconds.
    static func longestPause(_ samples: [Sample], _ camera: String) -> Double {
        var longest = 0.0
        var since = samples.first?.time
        for (previous, next) in zip(samples, samples.dropFirst()) {
            if next.decoded[camera, default: 0] > previous.decoded[camera, default: 0] { since = next.time }
            longest = max(longest, next.time.timeIntervalSince(since ?? next.time))
        }
        return longest
    }

    @Test(.timeLimit(.minutes(3)))
    func aCameraWhoseServerDiesForFiveSecondsComesBackAndTheFileNeverWaits() throws {
        try ServicePaths.requireMedia()
        let camera = try RTSPCamera()
        let service = try ServiceUnderTest(["--no-detector", "--width", "160", "--height", "120", "--tiler-width", "160", "--tiler-height", "120",
                                            "--file-loop", "--rtsp-reconnect-interval", "2", "-i", camera.url, ServicePaths.fileURLAVI])
        #expect(waitFor(timeout: 30) { Self.sample(service).map { $0.state["0"] == "streaming" && $0.decoded["1", default: 0] > 0 } ?? false })
        var samples: [Sample] = []
        func poll(for seconds: Double) {
            let end = Date().addingTimeInterval(seconds)
            while Date() < end {
                if let sample = Self.sample(service) { samples.append(sample) }
                usleep(200_000)
            }
        }
        poll(for: 1)
        camera.kill()
        let killed = Date()
        poll(for: 5)
        try camera.start()
        let restarted = Date()
        var recoveredAt: Date?
        let deadline = restarted.addingTimeInterval(2 + 16 + 2)  // interval + the longest backoff due by then (1+2+4+8, +20 %) + 2 s
        while Date() < deadline, recoveredAt == nil {
            poll(for: 0.2)
            if let last = samples.last, last.state["0"] == "streaming", last.decoded["0", default: 0] > samples.first!.decoded["0", default: 0] + 5,
               last.time > restarted { recoveredAt = last.time }
        }
        poll(for: 1)
        let states = samples.filter { $0.time > killed }.compactMap { $0.state["0"] }
        #expect(states.contains { $0 == "backing-off" || $0 == "stalled" }, "lost: \(Set(states))")
        #expect(recoveredAt != nil, "frames again within the interval + backoff + 2 s of the server's return; states: \(states)")
        let scrape = try service.scrape()
        #expect(ServiceUnderTest.value(in: scrape, "tributary_source_reconnects_total", camera: "0") == 1)
        #expect(ServiceUnderTest.value(in: scrape, "tributary_source_reconnects_total", camera: "1") == 0)
        let gap = ServiceUnderTest.value(in: scrape, "tributary_source_gap_seconds_total", camera: "0") ?? 0
        #expect(gap >= 4.5 && gap <= 30, "the gap counted: \(gap) s for a 5-s outage")
        #expect(Self.longestPause(samples, "1") <= 1.0, "the file camera never paused longer than 1 s: \(Self.longestPause(samples, "1")) s")
        let status = service.process.stop(SIGINT)
        #expect(status == 130)
        #expect(service.process.standardError.contains("camera 0"), "a warning names the camera")
        #expect(service.process.standardError.contains("reconnected 1 time ("), "the exit summary counts the reconnect and its gap")
        #expect(ServiceRESTTests.ledgerBalanced(service.process.standardError).balanced)
    }

    @Test(.timeLimit(.minutes(3)))
    func eightCamerasDownForTenSecondsAllRecoverTogether() throws {
        let camera = try RTSPCamera()
        let ids = (0..<8).map(String.init)
        let service = try ServiceUnderTest(["--no-detector", "--width", "160", "--height", "120", "--tiler-width", "320", "--tiler-height", "240",
                                            "--rtsp-reconnect-interval", "2", "-i"] + Array(repeating: camera.url, count: 8))
        #expect(waitFor(timeout: 40) { Self.sample(service).map { s in ids.allSatisfy { s.state[$0] == "streaming" } } ?? false },
                "8 cameras streaming")
        camera.kill()
        #expect(waitFor(timeout: 10) { Self.sample(service).map { s in ids.allSatisfy { s.state[$0] != "streaming" } } ?? false }, "all 8 lost")
        sleep(10)
        let decodedBefore = Self.sample(service)?.decoded ?? [:]
        try camera.start()
        let restarted = Date()
        var recovered: [String: Double] = [:]
        while Date().timeIntervalSince(restarted) < 20, recovered.count < 8 {
            if let s = Self.sample(service) {
                for id in ids where recovered[id] == nil && s.state[id] == "streaming" && s.decoded[id, default: 0] > decodedBefore[id, default: 0] {
                    recovered[id] = s.time.timeIntervalSince(restarted)
                }
            }
            usleep(200_000)
        }
        print("8 cameras back, seconds after the server's return: \(recovered.sorted { $0.key < $1.key }.map { String(format: "%.1f", $0.value) })")
        #expect(recovered.count == 8, "all 8 back: \(recovered)")
        #expect(recovered.values.allSatisfy { $0 <= 15 }, "each within 15 s of the server's return: \(recovered.sorted { $0.key < $1.key })")
        let scrape = try service.scrape()
        for id in ids { #expect(ServiceUnderTest.value(in: scrape, "tributary_source_reconnects_total", camera: id) == 1, "camera \(id)") }
        #expect(service.process.stop(SIGTERM) == 143)
    }

    @Test(.timeLimit(.minutes(3)))
    func aFrozenServerIsAStallAndAReconnectNotAnEnd() throws {
        // SIGSTOP: the connection stays open and silent (before, the RTSP client ended the session
        // after ≈ 25 s and the run ended as at end-of-stream).
        let camera = try RTSPCamera()
        let service = try ServiceUnderTest(["--no-detector", "--width", "160", "--height", "120", "--tiler-width", "160", "--tiler-height", "120",
                                            "--rtsp-reconnect-interval", "2", "-i", camera.url])
        #expect(waitFor(timeout: 30) { Self.sample(service)?.state["0"] == "streaming" })
        let server = try #require(camera.process?.pid)
        kill(server, SIGSTOP)
        var seen: Set<String> = []
        _ = waitFor(timeout: 6) { if let s = Self.sample(service)?.state["0"] { seen.insert(s) }; return false }
        kill(server, SIGCONT)
        let resumed = Date()
        let before = try service.decoded("0")
        let back = waitFor(timeout: 25) {
            if let s = Self.sample(service) { seen.insert(s.state["0"] ?? "") }
            return Self.sample(service).map { $0.state["0"] == "streaming" && $0.decoded["0", default: 0] > before + 5 } ?? false
        }
        print("frozen camera streaming again \(String(format: "%.1f", Date().timeIntervalSince(resumed))) s after SIGCONT; states \(seen.sorted())")
        #expect(seen.contains("stalled") || seen.contains("backing-off"), "the freeze is seen as a stall: \(seen)")
        #expect(!seen.contains("ended"), "never an end")
        #expect(back, "streaming again after the server resumes")
        #expect(ServiceUnderTest.value(in: try service.scrape(), "tributary_source_reconnects_total", camera: "0") == 1)
        #expect(service.process.stop(SIGINT) == 130)
    }
}
