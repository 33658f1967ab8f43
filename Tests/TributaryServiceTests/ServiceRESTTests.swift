import Foundation
import Testing

/// `tributary serve` end to end: the real server, asked with curl, on real media and a real RTSP
/// camera (gst-rtsp-server in a process of its own).
@Suite(.serialized) struct ServiceRESTTests {
    /// The exit summary's lines: every source's frames accounted for (decoded = delivered + dropped).
    static func ledgerBalanced(_ standardError: String) -> (balanced: Bool, lines: Int) {
        let regex = try! NSRegularExpression(pattern: #"decoded (\d+), delivered (\d+), dropped (\d+)"#)
        var lines = 0, balanced = true
        for match in regex.matches(in: standardError, range: NSRange(standardError.startIndex..., in: standardError)) {
            let n = (1...3).map { Int(standardError[Range(match.range(at: $0), in: standardError)!])! }
            lines += 1
            if n[0] != n[1] + n[2] { balanced = false }
        }
        return (balanced, lines)
    }

    @Test(.timeLimit(.minutes(4)))
    func camerasComeAndGoByRESTWhileFramesFlow() throws {
        try ServicePaths.requireMedia()
        let camera = try RTSPCamera()
        let metadata = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-service-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: metadata) }
        let service = try ServiceUnderTest(["--width", "320", "--height", "240", "--tiler-width", "320", "--tiler-height", "240",
                                            "--file-loop", "--perf-interval", "1", "--meta-out", metadata])
        #expect(try service.request("GET", "/api/v1/live").status == 200, "live as soon as it serves")
        #expect(waitFor(timeout: 90) { (try? service.request("GET", "/api/v1/ready").status) == 200 }, "ready once the detector is loaded")
        #expect(try service.request("GET", "/api/v1/startup").status == 200)
        let dsReady = try service.request("GET", "/api/v1/health/get-dsready-state").json?["health-info"] as? [String: Any]
        #expect(dsReady?["ds-ready"] as? String == "YES")

        for (id, url) in [("door", ServicePaths.fileURL720p), ("street", ServicePaths.fileURLAVI), ("yard", camera.url)] {
            let answer = try service.add(id, url: url, name: "\(id) camera")
            #expect(answer.status == 200 && answer.json?["status"] as? String == "STREAM_ADD_SUCCESS", "\(answer)")
        }
        let info = try service.request("GET", "/api/v1/stream/get-stream-info").json
        #expect(info?["reason"] as? String == "GET_LIVE_STREAM_INFO_SUCCESS")
        let listed = try service.streams()
        #expect(Set(listed.keys) == ["door", "street", "yard"])
        #expect((info?["stream-info"] as? [String: Any])?["stream-count"] as? Int == 3)
        #expect(listed["door"]?["camera_name"] as? String == "door camera")
        #expect(listed.values.compactMap { $0["source_id"] as? Int }.sorted() == [0, 1, 2])

        #expect(waitFor(timeout: 60) { ["door", "street", "yard"].allSatisfy { ((try? service.decoded($0)) ?? 0) > 10 } }, "frames flow for each camera")
        let first = try service.scrape()
        let check = try promtool(first)
        #expect(check.status == 0, "promtool check metrics: \(check.output)")
        for name in ["tributary_frames_decoded_total", "tributary_frames_delivered_total", "tributary_frames_dropped_total",
                     "tributary_source_state", "tributary_source_reconnects_total", "tributary_stream_fps"] {
            #expect(ServiceUnderTest.value(in: first, name, camera: "yard") != nil, "\(name) for the RTSP camera")
        }
        for name in ["tributary_inference_seconds_bucket", "tributary_batch_fill_ratio_bucket", "tributary_frame_latency_seconds_bucket", "tributary_sources 3"] {
            #expect(first.contains(name), "\(name) in the scrape")
        }
        #expect(ServiceUnderTest.value(in: first, "tributary_source_state", camera: "yard", extra: "state=\"streaming\"") == 1)
        sleep(2)
        let second = try service.scrape()
        for id in ["door", "street", "yard"] {
            let before = ServiceUnderTest.value(in: first, "tributary_frames_delivered_total", camera: id) ?? 0
            let after = ServiceUnderTest.value(in: second, "tributary_frames_delivered_total", camera: id) ?? 0
            #expect(after > before, "\(id)'s delivered counter rises: \(before) → \(after)")
        }

        let removed = try service.remove("street")
        #expect(removed.status == 200 && removed.json?["status"] as? String == "STREAM_REMOVE_SUCCESS", "\(removed)")
        #expect(Set(try service.streams().keys) == ["door", "yard"])
        let others = try ["door", "yard"].map { try service.decoded($0) }
        #expect(waitFor(timeout: 20) { (try? ["door", "yard"].map { try service.decoded($0) }).map { zip($0, others).allSatisfy { $0 > $1 + 5 } } ?? false },
                "the others go on after a removal")

        let again = try service.add("street", url: ServicePaths.fileURLAVI)
        #expect(again.status == 200, "the same camera id again: \(again)")
        #expect(try service.streams()["street"]?["source_id"] as? Int == 3, "a new source id: ids are never reused")
        #expect(waitFor(timeout: 30) { ((try? service.decoded("street")) ?? 0) > 5 })

        let status = service.process.stop(SIGINT, timeout: 60)
        #expect(status == 130, "SIGINT: 128 + 2; \(service.process.standardError.suffix(2000))")
        let ledger = Self.ledgerBalanced(service.process.standardError)
        #expect(ledger.lines == 4 && ledger.balanced, "every frame of the 4 sources accounted for: \(service.process.standardError.suffix(1500))")
        // --meta-out: a line per delivered frame, named by the REST camera ids, valid against the schema.
        let lines = try String(contentsOfFile: metadata, encoding: .utf8).split(separator: "\n")
        let delivered = try NSRegularExpression(pattern: #"delivered (\d+)"#).matches(in: service.process.standardError,
            range: NSRange(service.process.standardError.startIndex..., in: service.process.standardError)).map {
                Int(service.process.standardError[Range($0.range(at: 1), in: service.process.standardError)!])!
            }.reduce(0, +)
        #expect(lines.count == delivered, "one metadata line per delivered frame")
        let cameras = Set(lines.compactMap { line in
            ((try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any])?["camera_id"] as? String })
        #expect(cameras == ["door", "street", "yard"])
        let validation = Process()
        validation.executableURL = URL(fileURLWithPath: ServicePaths.path(".deps/checkers/bin/python"))
        validation.arguments = [ServicePaths.path("tests/python/validate_frames.py"), metadata]
        let output = Pipe()
        validation.standardOutput = output
        try validation.run()
        let verdict = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        validation.waitUntilExit()
        #expect(validation.terminationStatus == 0 && verdict.hasPrefix("valid"), "jsonschema: \(verdict.prefix(500))")
    }

    @Test(.timeLimit(.minutes(3)))
    func badRequestsAreAnsweredWithTheirStatusAndTheServiceGoesOn() throws {
        try ServicePaths.requireMedia()
        let service = try ServiceUnderTest(["--no-detector", "--width", "160", "--height", "120", "--file-loop"])
        #expect(waitFor(timeout: 30) { (try? service.request("GET", "/api/v1/ready").status) == 200 })
        #expect(try service.add("a", url: ServicePaths.fileURLAVI).status == 200)

        func expectFailure(_ answer: ServiceUnderTest.Answer, _ status: Int, _ reasonPart: String, _ what: String) {
            #expect(answer.status == status, "\(what): \(answer)")
            #expect(answer.json?["status"] as? String == "STREAM_ADD_FAIL" || answer.json?["status"] as? String == "STREAM_REMOVE_FAIL"
                        || answer.json?["status"] as? String == "FAIL", "\(what): a JSON status")
            #expect(answer.reason?.contains(reasonPart) == true, "\(what): the reason names it: \(answer.reason ?? "none")")
        }
        expectFailure(try service.request("POST", "/api/v1/stream/add", body: #"{"key":"sensor","value":{"camera_id":"x""#), 400, "JSON", "malformed JSON")
        expectFailure(try service.request("POST", "/api/v1/stream/add", body: #"{"key":"sensor","value":{"camera_id":"x","change":"camera_add"}}"#),
                      400, "camera_url", "missing camera_url")
        expectFailure(try service.request("POST", "/api/v1/stream/add", body: #"{"value":{"camera_url":"file:///x"}}"#), 400, "camera_id", "missing camera_id")
        expectFailure(try service.request("POST", "/api/v1/stream/add", body: #"{"value":{"camera_id":7,"camera_url":"file:///x"}}"#),
                      400, "camera_id", "camera_id of the wrong type")
        expectFailure(try service.add("a", url: ServicePaths.fileURL720p), 409, "already present", "duplicate camera_id")
        expectFailure(try service.remove("nobody"), 404, "nobody", "unknown camera on remove")
        expectFailure(try service.add("b", url: "bogus://camera"), 400, "bogus", "a scheme GStreamer has no source for")
        expectFailure(try service.add("c", url: "file:///no/such/file.mp4"), 400, "/no/such/file.mp4", "a missing file")
        expectFailure(try service.request("POST", "/api/v1/stream/add", body: ServiceUnderTest.sensor("d", url: ServicePaths.fileURLAVI, change: "camera_remove")),
                      400, "camera_add", "the wrong change for the endpoint")
        let big = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-1MiB-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: big) }
        try Data(repeating: UInt8(ascii: "a"), count: 1 << 20).write(to: big)
        expectFailure(try service.request("POST", "/api/v1/stream/add", bodyFile: big.path), 413, "64 KiB", "a 1 MiB body")
        expectFailure(try service.request("GET", "/api/v1/no-such-path"), 404, "no-such-path", "an unknown path")
        let unknownFields = try service.request("POST", "/api/v1/stream/add", body:
            #"{"key":"sensor","extra":1,"value":{"camera_id":"e","camera_url":"\#(ServicePaths.fileURLAVI)","zoom":3},"headers":{"x":[1,2]}}"#)
        #expect(unknownFields.status == 200, "unknown fields are ignored: \(unknownFields)")

        // A file that is no video: added (it opens), then failed, visible, alone.
        let notVideo = ServicePaths.path("README.md")
        #expect(try service.add("broken", url: "file://" + notVideo).status == 200)
        #expect(waitFor(timeout: 20) { (try? service.streams()["broken"]?["state"] as? String) == "failed" })
        #expect((try service.streams()["broken"]?["last_error"] as? String)?.isEmpty == false, "its error is shown")
        #expect(ServiceUnderTest.value(in: try service.scrape(), "tributary_source_state", camera: "broken", extra: "state=\"failed\"") == 1)
        let before = try service.decoded("a")
        #expect(waitFor(timeout: 10) { ((try? service.decoded("a")) ?? 0) > before + 10 }, "the others go on")
        #expect(try service.request("GET", "/api/v1/live").status == 200, "still serving")
        #expect(service.process.stop(SIGTERM) == 143, "SIGTERM: 128 + 15")
    }

    @Test(.timeLimit(.minutes(4)))
    func twoHundredAddRemoveCyclesNeitherDeadlockNorGrow() throws {
        try ServicePaths.requireMedia()
        let service = try ServiceUnderTest(["--no-detector", "--width", "160", "--height", "120", "--tiler-width", "320", "--tiler-height", "240",
                                            "--file-loop", "-i", ServicePaths.fileURLAVI, ServicePaths.fileURL720p])
        #expect(waitFor(timeout: 30) { (try? service.request("GET", "/api/v1/ready").status) == 200 })
        func cycle() throws -> Bool {
            let added = try service.add("churn", url: ServicePaths.fileURLAVI)
            usleep(50_000)  // it starts decoding
            let removed = try service.remove("churn")
            return added.status == 200 && removed.status == 200
        }
        var failed = 0
        for _ in 0..<20 where try !cycle() { failed += 1 }  // warm-up: the decoders' libraries, the allocator's arenas
        // RSS wanders by ±4 MiB between samples (the allocator's arenas, GStreamer's pools), so a
        // single before/after pair is noise: "before" and "after" are the medians of the first and
        // last five of eleven samples, taken every 20 cycles. A leaked source (its decoder, its
        // buffers: MiBs) or 40 KiB a cycle passes the 5 % (≈ 6 MiB); slower leaks are the soak's
        // (docs/reliability.md).
        var samples = [try #require(service.process.residentKiB)]
        let started = Date()
        for cycleIndex in 1...200 {
            if try !cycle() { failed += 1 }
            if cycleIndex % 20 == 0 { samples.append(try #require(service.process.residentKiB)) }
        }
        let seconds = Date().timeIntervalSince(started)
        func median(_ values: ArraySlice<Int>) -> Int { values.sorted()[values.count / 2] }
        let first = median(samples.prefix(5)), last = median(samples.suffix(5))
        print("200 add/remove cycles in \(String(format: "%.1f", seconds)) s; RSS every 20 cycles (KiB): \(samples); "
              + "median of the first five \(first), of the last five \(last) (\(String(format: "%+.1f", 100 * Double(last - first) / Double(first))) %)")
        #expect(failed == 0, "every add and remove answered 200")
        #expect(Double(last) <= Double(first) * 1.05, "RSS after the cycles within 5 % of before: median \(first) → \(last) KiB, samples \(samples)")
        let decoded = try ["0", "1"].map { try service.decoded($0) }
        #expect(waitFor(timeout: 10) { (try? ["0", "1"].map { try service.decoded($0) }).map { zip($0, decoded).allSatisfy { $0 > $1 } } ?? false },
                "the two others still run")
        #expect(service.process.stop(SIGINT, timeout: 60) == 130)
        let ledger = Self.ledgerBalanced(service.process.standardError)
        #expect(ledger.lines == 222 && ledger.balanced, "every frame of the 222 sources accounted for")
    }

    @Test(.timeLimit(.minutes(1)), arguments: [["--api-port", "70000"], ["--batched-push-timeout", "-5"], ["--meta-format", "xml"],
                                                ["--redis", "http://x"], ["-c", "/no/such/config.txt"], ["--no-such-flag"],
                                                ["--max-batch-size", "0"]])
    func whatTheUserGaveWrongExitsTwoNamingIt(flags: [String]) throws {
        let process = try RunningProcess(ServicePaths.binary, ["serve", "--api-port", "0"] + flags)
        #expect(waitFor(timeout: 30) { !process.process.isRunning })
        process.process.waitUntilExit()
        #expect(process.process.terminationStatus == 2, "\(flags): \(process.standardError)")
        let named = flags.first { $0.hasPrefix("--") && $0 != "--api-port" || $0 == "-c" }.map { $0 == "-c" ? "/no/such/config.txt" : $0 }
        #expect(named.map { process.standardError.contains($0) || process.standardError.contains(flags.last!) } ?? true,
                "the message names it: \(process.standardError)")
    }
}

/// `promtool check metrics` on a scrape (Debian's prometheus package).
func promtool(_ scrape: String) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/promtool")
    process.arguments = ["check", "metrics"]
    let input = Pipe(), output = Pipe()
    process.standardInput = input
    process.standardOutput = output
    process.standardError = output
    try process.run()
    input.fileHandleForWriting.write(Data(scrape.utf8))
    try input.fileHandleForWriting.close()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, text)
}
