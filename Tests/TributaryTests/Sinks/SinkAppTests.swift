import Foundation
import Testing
@testable import Tributary

private let ffmpeg = "/usr/bin/ffmpeg"
private let xvfb = "/usr/bin/Xvfb"
private let xwd = "/usr/bin/xwd"
private let valgrind = "/usr/bin/valgrind"

/// The app's outputs as a user meets them (issue 21): an output that cannot be written, an RTSP
/// client joining a running stream, the on-screen window.
@Suite(.serialized) struct SinkAppTests {
    /// The sink's pipeline fails to start: one error naming the path, exit 1, and nothing
    /// released twice (which GLib reports as CRITICALs, valgrind as reads of freed memory).
    @Test(arguments: ["/no/such/dir/out.mp4", "/etc/hostname/out.mp4"])
    func anUnwritableOutputFailsOnceNamingThePath(output: String) throws {
        try TestMedia.requireMedia()
        let result = try runProcess(TestMedia.appBinary, ["-i", TestMedia.h264, "--no-detector", "-o", output], timeout: 30)
        #expect(!result.timedOut)
        #expect(result.status == 1, "stderr: \(result.standardError)")
        #expect(result.standardError.contains("Error: ") && result.standardError.contains(output), "stderr: \(result.standardError)")
        #expect(glibDiagnostics(in: result.standardError).isEmpty, "stderr: \(result.standardError)")
    }

    /// The same failure under valgrind: no read or write of freed memory (the failure branch of
    /// the sink's init and its deinit both released the pipeline, appsrc and pool).
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: valgrind), "valgrind is not installed (scripts/setup.sh installs it)"))
    func anUnwritableOutputReleasesEachReferenceOnce() throws {
        try TestMedia.requireMedia()
        let result = try runProcess(valgrind, [TestMedia.appBinary, "-i", TestMedia.h264, "--no-detector",
                                               "-o", "/no/such/dir/out.mp4"], timeout: 120)
        #expect(result.status == 1, "stderr: \(result.standardError.suffix(4000))")
        for problem in ["Invalid read", "Invalid write", "Invalid free"] {
            #expect(!result.standardError.contains(problem), "valgrind: \(result.standardError.suffix(4000))")
        }
        #expect(result.standardError.contains("ERROR SUMMARY"), "did valgrind run? \(result.standardError.suffix(2000))")
    }

    /// FFmpeg joins the RTSP stream of a looping 2 s clip mid-stream: it gets SPS/PPS before the
    /// first slice, timestamps that keep increasing over the loops, key frames every second,
    /// and 5 s of stream in about 5 s at the clip's 10 fps (the branch is paced to real time).
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: ffmpeg), "ffmpeg is not installed (scripts/setup.sh installs it)"),
          .runningTimeLimit(minutes: 3))
    func anFFmpegClientJoiningMidStreamDecodesCleanlyInRealTime() throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let clip = folder.appendingPathComponent("loop.mp4").path
        try makeMovingPatternClip(at: clip, frames: 20)  // 2 s at 10 fps: it loops while the client watches
        let port = try freeTCPPort()
        let app = try BackgroundProcess(TestMedia.appBinary, [
            "-i", clip, "--file-loop", "--no-detector", "-s", "--perf-interval", "0", "--rtsp-port", "\(port)",
            "--width", "640", "--height", "360", "--tiler-width", "640", "--tiler-height", "360"])
        let listening = BackgroundRun.waitFor(timeout: 30) { acceptsConnections(port: port) || !app.isRunning }
        try #require(listening && app.isRunning, "the RTSP server never listened: \(app.standardError)")
        // Join mid-stream, not at its first key frame.
        if app.secondsRunning < 3 { usleep(UInt32((3 - app.secondsRunning) * 1e6)) }

        // SIGKILL: the test runner's children inherit a blocked SIGTERM.
        let client = try runProcess("/usr/bin/timeout", ["-s", "KILL", "40", ffmpeg, "-hide_banner", "-nostdin", "-rtsp_transport", "tcp",
                                                         "-i", "rtsp://127.0.0.1:\(port)/ds-test", "-t", "5", "-vf", "showinfo", "-f", "null", "-"],
                                    timeout: 50)
        app.signal(SIGINT)
        let appResult = app.wait(timeout: 30)

        let log = client.standardError
        #expect(client.status == 0, "ffmpeg: \(log.suffix(3000))")
        #expect(client.seconds < 20, "ffmpeg took \(client.seconds) s for 5 s of stream")
        #expect(client.seconds > 3.5, "5 s of stream in \(client.seconds) s: the stream is not paced to real time")
        for problem in ["non-existing PPS", "decode_slice_header error", "no frame!", "non monotonically increasing dts"] {
            #expect(!log.contains(problem), "ffmpeg logged '\(problem)': \(log.suffix(3000))")
        }
        let frames = log.matches(of: /frame=\s*(\d+)/).last.flatMap { Int($0.1) } ?? 0
        #expect((45...56).contains(frames), "\(frames) frames decoded for 5 s at 10 fps")
        let keyFrames = log.matches(of: /iskey:1/).count
        #expect(keyFrames >= 4, "\(keyFrames) key frames in 5 s: one a second expected")
        #expect(appResult.status == 130, "app: \(appResult.standardError)")
        #expect(glibDiagnostics(in: appResult.standardError).isEmpty, "app: \(appResult.standardError)")
    }

    /// MP4 and RTSP together: the tee's RTSP branch plays in real time, so the MP4 is written
    /// at that pace too, and finalised (its muxer must not wait for a preroll that never comes).
    @Test(.runningTimeLimit(minutes: 2))
    func anMP4BesideRTSPIsWrittenAtThePaceOfTheStream() throws {
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let clip = folder.appendingPathComponent("ball.mp4").path, output = folder.appendingPathComponent("out.mp4").path
        try makeMovingPatternClip(at: clip, frames: 20)
        // A background process, SIGKILLed past its time: a deadlocked app ignores runProcess's SIGTERM.
        let app = try BackgroundProcess(TestMedia.appBinary, ["-i", clip, "--no-detector", "-s", "--perf-interval", "0",
                                                              "--rtsp-port", "\(try freeTCPPort())", "-o", output,
                                                              "--width", "320", "--height", "240", "--tiler-width", "320", "--tiler-height", "240"])
        let result = app.wait(timeout: 40)
        #expect(!result.timedOut && result.status == 0, "stderr: \(result.standardError)")
        try #require(!result.timedOut, "the app hung")
        #expect(result.seconds > 1.5, "2 s of video out in \(result.seconds) s: not paced to real time")
        let info = try discover(output)
        #expect(info.contains("H.264") && info.contains("Duration: 0:00:02"), "\(info)")
    }

    /// The window path under a real X server (Xvfb, which has no XVideo): the app picks the
    /// sink that works there, shows both tiles, survives, and stops with SIGINT's 130 and its
    /// summary. The two sample clips are one street scene (so their tiles look alike); colour
    /// bars beside the scene show two different tiles.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: xvfb) && FileManager.default.isExecutableFile(atPath: xwd),
                   "Xvfb or xwd is not installed (scripts/setup.sh installs xvfb and x11-apps)"),
          .runningTimeLimit(minutes: 3), arguments: [(bars: false, detector: false), (bars: true, detector: false), (bars: true, detector: true)])
    func theWindowShowsBothTilesUnderX(bars: Bool, detector: Bool) throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let second = bars ? folder.appendingPathComponent("bars.mp4").path : TestMedia.h265
        if bars { try makeColourBarsClip(at: second, frames: 50) }
        let display = try VirtualDisplay(width: 1280, height: 720)

        // Before the app the screen is empty: the check below can fail.
        let empty = try screenshot(display: display.name)
        #expect(!empty.problemsWithTwoTiles(different: false).isEmpty, "an empty screen passed for two tiles")
        // Xvfb has no XVideo adaptors, as xvinfo (x11-utils) says, so xvimagesink cannot work.
        let xv = FileManager.default.isExecutableFile(atPath: "/usr/bin/xvinfo")
            ? try runProcess("/usr/bin/xvinfo", ["-display", display.name], timeout: 20).standardOutput : ""
        let expectedSink = xv.contains("no adaptors present") ? "ximagesink" : xv.contains("Adaptor #") ? "xvimagesink" : nil

        let app = try BackgroundProcess(TestMedia.appBinary, (detector ? [] : ["--no-detector"]) + [
            "-i", TestMedia.h264, second, "--file-loop", "-s", "--perf-interval", "0", "--log-level", "info",
            "--width", "640", "--height", "360", "--tiler-width", "1280", "--tiler-height", "720"],
            environment: ["DISPLAY": display.name, "WAYLAND_DISPLAY": nil])
        // Frames on screen for a few seconds (with the detector, its model loads first).
        BackgroundRun.waitFor(timeout: detector ? 10 : 5) { !app.isRunning }
        let stillRunning = app.isRunning
        let shot = stillRunning ? try screenshot(display: display.name) : nil
        app.signal(SIGINT)
        let result = app.wait(timeout: 60)

        #expect(stillRunning, "the app ended early with \(result.status): \(result.standardError)")
        #expect(result.status != 128 + SIGSEGV, "crashed with SIGSEGV: \(result.standardError)")
        #expect(result.status == 130, "stderr: \(result.standardError)")
        #expect(result.standardOutput.contains("End-of-stream") && result.standardOutput.contains("decoded "), "\(result.standardOutput)")
        #expect(glibDiagnostics(in: result.standardError).isEmpty, "stderr: \(result.standardError)")
        if let expectedSink {
            #expect(result.standardError.contains("display: \(expectedSink)"), "xvinfo: \(xv)\nstderr: \(result.standardError)")
        }
        if let shot {
            #expect(shot.width == 1280 && shot.height == 720, "\(shot)")
            let problems = shot.problemsWithTwoTiles(different: bars)
            #expect(problems.isEmpty, "\(problems)")
        }
    }

    private func screenshot(display: String) throws -> XWDImage {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-\(UUID().uuidString).xwd")
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try runProcess(xwd, ["-root", "-display", display, "-silent", "-out", file.path], timeout: 20)
        try #require(result.status == 0, "xwd: \(result.standardError)")
        return try XWDImage(Data(contentsOf: file))
    }
}
