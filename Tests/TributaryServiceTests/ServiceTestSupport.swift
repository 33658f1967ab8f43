import Foundation
import Testing

/// The repository, the built `tributary` and the sample media.
enum ServicePaths {
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func path(_ relative: String) -> String { repositoryRoot.appendingPathComponent(relative).path }

    /// The `tributary` of the current build: the one beside this test bundle first.
    static var binary: String {
        let beside = Bundle.main.executableURL.map {
            $0.resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("tributary").path
        }
        let candidates = (beside.map { [$0] } ?? []) + [".build/debug/tributary", ".build/release/tributary"].map(path)
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }

    static var fileURL720p: String { "file://" + path("media/sample_720p_h264.mp4") }
    static var fileURLAVI: String { "file://" + path("media/vtest.avi") }

    static func requireMedia() throws {
        for file in ["media/sample_720p_h264.mp4", "media/vtest.avi"] where !FileManager.default.fileExists(atPath: path(file)) {
            Issue.record("missing \(file): run scripts/setup.sh (make test does)")
            throw CancellationError()
        }
    }
}

/// A program started by a test, its output collected as it comes; stopped by PID.
final class RunningProcess: @unchecked Sendable {
    let process = Process()
    private let lock = NSLock()
    private var out = Data(), err = Data()

    init(_ executable: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = ServicePaths.repositoryRoot
        let outPipe = Pipe(), errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        outPipe.fileHandleForReading.readabilityHandler = { [self] in let d = $0.availableData; lock.withLock { out.append(d) } }
        errPipe.fileHandleForReading.readabilityHandler = { [self] in let d = $0.availableData; lock.withLock { err.append(d) } }
        // A child inherits the spawning thread's signal mask, and libdispatch's threads (which run
        // the tests) block SIGINT/SIGTERM: a broker stopped by SIGTERM would never see it. Spawned
        // with nothing blocked.
        var nothing = sigset_t(), previous = sigset_t()
        sigemptyset(&nothing)
        pthread_sigmask(SIG_SETMASK, &nothing, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var standardOutput: String { lock.withLock { String(decoding: out, as: UTF8.self) } }
    var standardError: String { lock.withLock { String(decoding: err, as: UTF8.self) } }

    /// The first match of `pattern`'s first group in standard output, waiting up to `timeout` s.
    func waitForOutput(_ pattern: String, timeout: Double) -> String? {
        let regex = try! NSRegularExpression(pattern: pattern)
        var found: String?
        _ = waitFor(timeout: timeout) {
            let text = standardOutput
            guard let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
                  let range = Range(match.range(at: 1), in: text) else { return false }
            found = String(text[range])
            return true
        }
        return found
    }

    /// Sends `signal` and waits for the exit; nil if it did not exit in time (then killed).
    func stop(_ signal: Int32, timeout: Double = 30) -> Int32? {
        if process.isRunning { kill(pid, signal) }
        let exited = waitFor(timeout: timeout) { !process.isRunning }
        if !exited { kill(pid, SIGKILL) }
        process.waitUntilExit()
        return exited ? process.terminationStatus : nil
    }

    /// Resident memory in KiB (/proc/PID/status' VmRSS).
    var residentKiB: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return nil }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
    }

    deinit { if process.isRunning { kill(pid, SIGKILL); process.waitUntilExit() } }
}

/// Waits up to `timeout` seconds for `condition`, checking every 50 ms.
@discardableResult
func waitFor(timeout: Double, _ condition: () -> Bool) -> Bool {
    let start = Date()
    while Date().timeIntervalSince(start) < timeout {
        if condition() { return true }
        usleep(50_000)
    }
    return condition()
}

/// An RTSP camera in a process of its own (tests/python/rtsp_camera.py, gst-rtsp-server): killed
/// with SIGKILL and started again on the same port for the recovery tests.
final class RTSPCamera: @unchecked Sendable {
    private(set) var process: RunningProcess?
    private(set) var port: Int

    init(port: Int = 0) throws {
        self.port = port
        try start()
    }

    var url: String { "rtsp://127.0.0.1:\(port)/camera" }

    func start() throws {
        let process = try RunningProcess("/usr/bin/python3", [ServicePaths.path("tests/python/rtsp_camera.py"), "--port", String(port)])
        guard let bound = process.waitForOutput(#"ready (\d+)"#, timeout: 20).flatMap(Int.init) else {
            _ = process.stop(SIGKILL)
            throw CameraFailed(message: "the RTSP camera did not start: \(process.standardError)")
        }
        port = bound
        self.process = process
    }

    /// Gone at once, as a camera whose power is cut: its sockets close, its packets stop.
    func kill() {
        _ = process?.stop(SIGKILL)
        process = nil
    }

    struct CameraFailed: Error { let message: String }

    deinit { kill() }
}

/// `tributary serve` started by a test on a free port, asked with curl (a real HTTP client).
final class ServiceUnderTest: @unchecked Sendable {
    let process: RunningProcess
    let baseURL: String

    /// - Parameter command: `serve`, or `worker` (its own flags in `arguments`).
    init(_ arguments: [String], command: String = "serve") throws {
        process = try RunningProcess(ServicePaths.binary, [command, "--api-port", "0"] + arguments)
        guard let address = process.waitForOutput(#"at (http://127\.0\.0\.1:\d+)"#, timeout: 60) else {
            _ = process.stop(SIGKILL)
            throw ServiceFailed(message: "the service did not listen: \(process.standardError)")
        }
        baseURL = address
    }

    struct ServiceFailed: Error { let message: String }

    struct Answer {
        var status: Int
        var body: String
        var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] }
        var reason: String? { json?["reason"] as? String }
    }

    /// curl `method path`, the body from a file when given (so a 1 MiB body is sent as is).
    func request(_ method: String, _ path: String, body: String? = nil, bodyFile: String? = nil) throws -> Answer {
        var arguments = ["-s", "-m", "20", "-X", method, "-w", "\n%{http_code}", baseURL + path]
        if let body { arguments += ["-H", "Content-Type: application/json", "--data-binary", body] }
        if let bodyFile { arguments += ["-H", "Content-Type: application/json", "--data-binary", "@" + bodyFile] }
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = arguments
        let out = Pipe()
        curl.standardOutput = out
        try curl.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        curl.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        return Answer(status: Int(lines.last ?? "") ?? 0, body: lines.dropLast().joined(separator: "\n"))
    }

    static func sensor(_ cameraID: String, url: String?, change: String, name: String? = nil) -> String {
        var value: [String: Any] = ["camera_id": cameraID, "change": change, "metadata": ["resolution": "1920 x1080", "codec": "h264"]]
        if let url { value["camera_url"] = url }
        if let name { value["camera_name"] = name }
        let body: [String: Any] = ["key": "sensor", "value": value, "headers": ["source": "vst", "created_at": "2026-12-07T11:00:00.000Z"]]
        return String(decoding: try! JSONSerialization.data(withJSONObject: body), as: UTF8.self)
    }

    func add(_ cameraID: String, url: String, name: String? = nil) throws -> Answer {
        try request("POST", "/api/v1/stream/add", body: Self.sensor(cameraID, url: url, change: "camera_add", name: name))
    }

    func remove(_ cameraID: String) throws -> Answer {
        try request("POST", "/api/v1/stream/remove", body: Self.sensor(cameraID, url: nil, change: "camera_remove"))
    }

    /// `get-stream-info`'s streams by camera id.
    func streams() throws -> [String: [String: Any]] {
        let info = try request("GET", "/api/v1/stream/get-stream-info").json?["stream-info"] as? [String: Any]
        let list = info?["stream-info"] as? [[String: Any]] ?? []
        return Dictionary(list.map { ($0["camera_id"] as? String ?? "", $0) }, uniquingKeysWith: { a, _ in a })
    }

    func scrape() throws -> String { try request("GET", "/metrics").body }

    /// A sample's value in a scrape (`name{labels}` exactly as written, labels in the order emitted).
    static func value(in scrape: String, _ name: String, camera: String, extra: String = "") -> Double? {
        for line in scrape.split(separator: "\n") where line.hasPrefix(name + "{") && line.contains("camera_id=\"\(camera)\"") && (extra.isEmpty || line.contains(extra)) {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    /// Frames delivered so far, every camera together (`get-stream-info`).
    func delivered() -> Int { ((try? streams()) ?? [:]).values.compactMap { $0["frames_delivered"] as? Int }.reduce(0, +) }

    /// Frames delivered per second over the next `seconds`.
    func deliveryRate(over seconds: Double) -> Double {
        let start = delivered(), started = Date()
        usleep(UInt32(seconds * 1e6))
        return Double(delivered() - start) / Date().timeIntervalSince(started)
    }

    func decoded(_ camera: String) throws -> Int {
        try streams()[camera]?["frames_decoded"] as? Int ?? -1
    }
}
