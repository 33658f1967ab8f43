import Foundation
import Testing

/// The dashboard: the page in a real headless Chromium (driven through its DevTools protocol by
/// tests/python/dashboard_check.py), and the MJPEG live view read by curl and decoded by GStreamer.
@Suite(.serialized) struct ServiceDashboardTests {
    static func startService() throws -> ServiceUnderTest {
        try ServiceUnderTest(["--no-detector", "--width", "640", "--height", "360", "--tiler-width", "1280", "--tiler-height", "360",
                              "--file-loop", "-i", ServicePaths.fileURLAVI, ServicePaths.fileURL720p])
    }

    @Test(.timeLimit(.minutes(3)))
    func theDashboardShowsTheCamerasAndTheirVideoAndAddsAndRemovesOne() throws {
        try ServicePaths.requireMedia()
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium") else {
            Issue.record("no /usr/bin/chromium: run scripts/setup.sh (make test does)")
            return
        }
        let service = try Self.startService()
        let shots = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-dashboard-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: shots, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: shots) }
        let browser = try RunningProcess(ServicePaths.path(".deps/checkers/bin/python"),
                                         [ServicePaths.path("tests/python/dashboard_check.py"), service.baseURL,
                                          "file://" + ServicePaths.path("media/sample_h265.mp4"), shots.path])
        #expect(waitFor(timeout: 120) { !browser.process.isRunning }, "the browser's check ends")
        let line = browser.standardOutput.split(separator: "\n").last.map(String.init) ?? ""
        let seen = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(browser.standardError.suffix(1500))")

        // The table: both cameras, streaming, their frame counts rising (columns: id, name, state, fps, frames, …).
        let first = seen["rows_first"] as? [[String]] ?? [], second = seen["rows_second"] as? [[String]] ?? []
        #expect(first.map { $0[0] } == ["0", "1"] && second.map { $0[0] } == ["0", "1"], "\(first) \(second)")
        #expect(second.allSatisfy { $0[2] == "streaming" })
        #expect(zip(first, second).allSatisfy { (Int($0[4]) ?? 0) < (Int($1[4]) ?? 0) }, "frames rise: \(first) → \(second)")
        // The live view: the tiled video (its size, not blank) and moving.
        let pixels1 = seen["pixels_first"] as? [String: Any] ?? [:], pixels2 = seen["pixels_second"] as? [String: Any] ?? [:]
        #expect(pixels1["width"] as? Int == 1280 && pixels1["height"] as? Int == 360, "\(pixels1)")
        #expect((pixels1["std"] as? Double ?? 0) > 20, "not a blank image: \(pixels1)")
        #expect(pixels1["hash"] as? Int != pixels2["hash"] as? Int, "the picture changes: \(pixels1) \(pixels2)")
        #expect(seen["screenshots_differ"] as? Bool == true)
        // The screenshot's live-view area holds video (a blank one compresses to a few KB) and moves.
        let viewBytes = seen["view_screenshot_bytes"] as? [Int] ?? []
        #expect(viewBytes.count == 2 && viewBytes.allSatisfy { $0 > 50_000 }, "\(viewBytes)")
        #expect(seen["view_screenshots_differ"] as? Bool == true)
        // Added through the form, its HTML name shown as text; its own view; removed with its button.
        let added = seen["added_row"] as? [String] ?? []
        #expect(added.first == "added" && added.count > 2 && added[1] == "<script>window.injected=1</script><b>bold</b>", "\(added)")
        #expect(seen["html_injected"] as? Bool == false)
        #expect((seen["added_message"] as? String ?? "").hasPrefix("STREAM_ADD_SUCCESS"))
        #expect(seen["single_view_src"] as? String == "/api/v1/view.mjpeg?camera=added")
        let single = seen["single_view_pixels"] as? [String: Any] ?? [:]
        #expect(single["width"] as? Int == 426 && single["height"] as? Int == 360, "the camera's own tile of a 1 × 3 grid: \(single)")
        #expect(seen["removed"] as? Bool == true)
        #expect((seen["rows_last"] as? [[String]] ?? []).map { $0[0] } == ["0", "1"])
        #expect(service.process.stop(SIGINT, timeout: 60) == 130)
    }

    @Test(.timeLimit(.minutes(2)))
    func theLiveViewEncodesOnlyWhenWatchedAndDecodesToFramesOfTheTiledSize() throws {
        try ServicePaths.requireMedia()
        let service = try Self.startService()
        #expect(waitFor(timeout: 30) { service.delivered() > 50 })
        let encoded = { ((try? service.scrape()) ?? "").split(separator: "\n").first { $0.hasPrefix("tributary_live_view_frames_total ") }
            .flatMap { Double($0.split(separator: " ").last ?? "") } }
        sleep(1)
        #expect(encoded() == 0, "no viewer, no JPEG")
        #expect(try service.request("GET", "/api/v1/view.mjpeg?camera=nope").status == 404)

        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-mjpeg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let stream = folder.appendingPathComponent("view.mjpeg").path
        // An independent client: curl reads 3 s of the stream, GStreamer demuxes and decodes it.
        let curl = try RunningProcess("/usr/bin/curl", ["-s", "--max-time", "3", "-o", stream, service.baseURL + "/api/v1/view.mjpeg"])
        #expect(waitFor(timeout: 10) { !curl.process.isRunning })
        let decode = try RunningProcess("/usr/bin/gst-launch-1.0", ["-q", "filesrc", "location=\(stream)", "!", "multipartdemux", "!", "jpegdec", "!",
                                                                    "videoconvert", "!", "video/x-raw,format=RGB", "!",
                                                                    "multifilesink", "location=\(folder.path)/frame-%03d.rgb"])
        #expect(waitFor(timeout: 30) { !decode.process.isRunning })
        #expect(decode.process.terminationStatus == 0, "\(decode.standardError)")
        let frames = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasPrefix("frame-") }
        #expect((10...16).contains(frames.count), "about 5 a second for 3 s: \(frames.count)")
        for frame in frames {
            let size = (try FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent(frame).path)[.size] as? Int) ?? 0
            #expect(size == 1280 * 360 * 3, "\(frame): \(size) bytes, not 1280 × 360 RGB")
        }
        sleep(1)
        #expect((encoded() ?? 0) >= Double(frames.count), "counted in /metrics")
        #expect(service.process.stop(SIGINT, timeout: 60) == 130)
    }
}
