import Foundation
import Testing

/// `tributary serve --analytics`: nvdsanalytics' counts of each camera in `/metrics`.
@Suite(.serialized) struct ServiceAnalyticsTests {
    @Test(.timeLimit(.minutes(3)))
    func regionCountsAndCrossingsAreInTheMetricsAndGoWithTheirCamera() throws {
        try ServicePaths.requireMedia()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-analytics-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        // The shipped detector config with absolute model paths and the tracker on (crossings follow tracks).
        let shipped = try String(contentsOfFile: ServicePaths.path("configs/yolov3_tiny_pgie_config.txt"), encoding: .utf8)
        let detector = folder.appendingPathComponent("pgie.txt").path
        try (shipped.replacingOccurrences(of: "../models/", with: ServicePaths.path("models") + "/") + "\n[tracker]\ntracker-type=sort\nmin-hits=2\n")
            .write(toFile: detector, atomically: true, encoding: .utf8)
        let service = try ServiceUnderTest(["-c", detector, "--analytics", ServicePaths.path("configs/analytics_vtest.txt"),
                                            "--width", "768", "--height", "576", "--tiler-width", "384", "--tiler-height", "288",
                                            "--file-loop", "-i", ServicePaths.fileURLAVI])
        let crossings = { (scrape: String) in
            ["East", "West"].compactMap { ServiceUnderTest.value(in: scrape, "tributary_analytics_line_crossings_total", camera: "0", extra: "line=\"\($0)\"") }
                .reduce(0, +)
        }
        var scrape = ""
        #expect(waitFor(timeout: 120) { scrape = (try? service.scrape()) ?? ""; return crossings(scrape) > 0 },
                "people cross the street's line: \(scrape.split(separator: "\n").filter { $0.contains("analytics") })")
        print("analytics in /metrics: \(scrape.split(separator: "\n").filter { $0.hasPrefix("tributary_analytics") })")
        #expect(ServiceUnderTest.value(in: scrape, "tributary_analytics_roi_objects", camera: "0", extra: "roi=\"Left\"") != nil)
        #expect(ServiceUnderTest.value(in: scrape, "tributary_analytics_overcrowded", camera: "0", extra: "roi=\"Plaza\"") != nil)
        let check = try promtool(scrape)
        #expect(check.status == 0, "promtool check metrics: \(check.output)")

        #expect(try service.remove("0").status == 200)
        let after = try service.scrape()
        #expect(!after.contains("tributary_analytics_roi_objects{"), "a removed camera's gauges go")
        #expect(crossings(after) >= crossings(scrape), "its counters stay (Prometheus counters never go back)")
        #expect(service.process.stop(SIGINT, timeout: 60) == 130)
    }
}
