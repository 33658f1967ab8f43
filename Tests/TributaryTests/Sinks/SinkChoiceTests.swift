import Testing
@testable import Tributary

/// The sink's choices made once when it is built: the window sink for the session's display,
/// the RTSP key interval, and the source's timeline over `--file-loop`.
struct SinkChoiceTests {
    /// `opens` for a session where exactly `working` open.
    private func only(_ working: Set<String>) -> (String) -> Bool { { working.contains($0) } }

    @Test func xWithXVideoGetsXvimagesink() throws {
        #expect(try VideoSink.displaySink(display: ":0", waylandDisplay: nil, opens: only(["xvimagesink", "ximagesink", "dfbvideosink"])) == "xvimagesink")
    }

    /// Xvfb has no XVideo adaptors: xvimagesink does not open there.
    @Test func xWithoutXVideoGetsXimagesink() throws {
        #expect(try VideoSink.displaySink(display: ":99", waylandDisplay: "wayland-0", opens: only(["ximagesink", "waylandsink", "dfbvideosink"])) == "ximagesink")
    }

    @Test func waylandAloneGetsWaylandsinkElseGlimagesink() throws {
        #expect(try VideoSink.displaySink(display: nil, waylandDisplay: "wayland-0", opens: only(["waylandsink", "glimagesink"])) == "waylandsink")
        #expect(try VideoSink.displaySink(display: "", waylandDisplay: "wayland-0", opens: only(["glimagesink", "dfbvideosink"])) == "glimagesink")
    }

    /// Never DirectFB (it crashes under X): without an X sink the error names the package.
    @Test func noWorkingSinkIsAnErrorNamingThePlugin() {
        do {
            let sink = try VideoSink.displaySink(display: ":0", waylandDisplay: nil, opens: only(["dfbvideosink", "autovideosink", "glimagesink"]))
            Issue.record("got \(sink)")
        } catch {
            #expect("\(error)".contains("ximagesink") && "\(error)".contains("gstreamer1.0-x"), "\(error)")
        }
        #expect(throws: PipelineError.self) { try VideoSink.displaySink(display: nil, waylandDisplay: "wayland-0", opens: only(["dfbvideosink"])) }
        #expect(throws: PipelineError.self) { try VideoSink.displaySink(display: nil, waylandDisplay: nil, opens: only(["ximagesink"])) }
    }

    /// The real probe opens installed elements only.
    @Test func theProbeOpensInstalledElementsOnly() {
        #expect(GStreamer.elementAtReady("no-such-sink") == nil)
        #expect(GStreamer.elementAtReady("fakesink") != nil)
    }

    /// ximagesink is probed before xvimagesink (its held connection keeps a bare X server from
    /// resetting when xvimagesink's failed probe disconnects), and xvimagesink still wins.
    @Test func underXTheSinkEveryServerTakesIsProbedFirst() throws {
        var probed: [String] = []
        let sink = try VideoSink.displaySink(display: ":0", waylandDisplay: nil) { factory in
            probed.append(factory)
            return true
        }
        #expect(probed == ["ximagesink", "xvimagesink"])
        #expect(sink == "xvimagesink")
    }

    @Test func keyFramesAtLeastOnceASecond() {
        #expect(VideoSink.keyInterval(numerator: 10, denominator: 1) == 10)
        #expect(VideoSink.keyInterval(numerator: 30000, denominator: 1001) == 29)
        #expect(VideoSink.keyInterval(numerator: 1, denominator: 2) == 1)
    }

    /// A 3-frame file at 10 fps played three times: one timeline of 9 frames 100 ms apart.
    @Test func loopedPassesContinueTheTimeline() {
        var timeline = LoopTimeline()
        var placed: [UInt64?] = []
        for pass in 0..<3 {
            if pass > 0 { timeline.restarted() }
            for frame in 0..<3 { placed.append(timeline.place(pts: UInt64(frame) * 100_000_000, duration: 100_000_000)) }
        }
        #expect(placed == (0..<9).map { UInt64($0) * 100_000_000 })
        #expect(timeline.place(pts: nil, duration: nil) == nil)
    }

    /// Without durations the gap between frames stands in; a file starting late starts its
    /// next pass right after the last frame all the same.
    @Test func loopedPassesWithoutDurations() {
        var timeline = LoopTimeline()
        #expect(timeline.place(pts: 500, duration: nil) == 500)
        #expect(timeline.place(pts: 600, duration: nil) == 600)
        timeline.restarted()
        #expect(timeline.place(pts: 500, duration: nil) == 700)
        #expect(timeline.place(pts: 600, duration: nil) == 800)
    }
}
