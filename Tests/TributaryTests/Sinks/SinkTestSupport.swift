import Foundation
import Testing
@testable import Tributary

/// A program running in the background while a test works beside it (a client, a screenshot),
/// stopped by its process id.
final class BackgroundProcess {
    private let process = Process()
    private let out = Pipe(), err = Pipe()
    private let outData = LockedData(), errData = LockedData()
    private let start = Date()

    /// - Parameter environment: added to (or, with a nil value, removed from) this process's.
    init(_ executable: String, _ arguments: [String], environment: [String: String?] = [:]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = TestMedia.repositoryRoot
        var merged = ProcessInfo.processInfo.environment
        for (name, value) in environment { merged[name] = value }
        process.environment = merged
        process.standardOutput = out
        process.standardError = err
        let (outData, errData) = (self.outData, self.errData)
        out.fileHandleForReading.readabilityHandler = { outData.append($0.availableData) }
        err.fileHandleForReading.readabilityHandler = { errData.append($0.availableData) }
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var secondsRunning: Double { Date().timeIntervalSince(start) }
    var standardError: String { errData.string }

    func signal(_ number: Int32) { if process.isRunning { kill(pid, number) } }

    /// Waits up to `timeout` seconds for the end (SIGKILL past it) and gives what it printed;
    /// the status of a death by signal N is 128 + N, as a shell gives it (139: SIGSEGV).
    func wait(timeout: Double) -> ProcessResult {
        let timedOut = !BackgroundRun.waitFor(timeout: timeout) { !process.isRunning }
        if timedOut { kill(pid, SIGKILL) }
        process.waitUntilExit()
        out.fileHandleForReading.readabilityHandler = nil
        err.fileHandleForReading.readabilityHandler = nil
        outData.append(out.fileHandleForReading.readDataToEndOfFile())
        errData.append(err.fileHandleForReading.readDataToEndOfFile())
        let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        return ProcessResult(status: status, standardOutput: outData.string, standardError: errData.string,
                             seconds: secondsRunning, timedOut: timedOut)
    }

    deinit { if process.isRunning { kill(pid, SIGKILL); process.waitUntilExit() } }
}

/// A small H.264 MP4 of a moving ball at 10 fps, with regular timestamps (a paced output waits
/// out any gap in them).
func makeMovingPatternClip(at path: String, frames: Int) throws {
    let result = try runProcess("/usr/bin/timeout", ["60", "gst-launch-1.0", "-q", "videotestsrc", "pattern=ball", "num-buffers=\(frames)", "!",
        "video/x-raw,width=320,height=240,framerate=10/1", "!", "videoconvert", "!", "x264enc", "speed-preset=ultrafast", "!",
        "mp4mux", "!", "filesink", "location=\(path)"], timeout: 90)
    guard result.status == 0 else { throw PipelineError.invalidArgument("gst-launch failed: \(result.standardError)") }
}

/// A still H.264 MP4 of SMPTE colour bars at 10 fps: a tile unlike the sample's street scene.
func makeColourBarsClip(at path: String, frames: Int) throws {
    let result = try runProcess("/usr/bin/timeout", ["60", "gst-launch-1.0", "-q", "videotestsrc", "pattern=smpte", "num-buffers=\(frames)", "!",
        "video/x-raw,width=320,height=240,framerate=10/1", "!", "videoconvert", "!", "x264enc", "speed-preset=ultrafast", "!",
        "mp4mux", "!", "filesink", "location=\(path)"], timeout: 90)
    guard result.status == 0 else { throw PipelineError.invalidArgument("gst-launch failed: \(result.standardError)") }
}

/// An X server of its own for a test (Xvfb on a free display number), stopped by its pid.
final class VirtualDisplay {
    let number: Int
    private let server: BackgroundProcess

    init(width: Int, height: Int) throws {
        let fm = FileManager.default
        guard let free = (90..<200).first(where: { !fm.fileExists(atPath: "/tmp/.X11-unix/X\($0)") && !fm.fileExists(atPath: "/tmp/.X\($0)-lock") })
        else { throw PipelineError.invalidArgument("no free X display number in :90…:199") }
        number = free
        server = try BackgroundProcess("/usr/bin/Xvfb", [":\(free)", "-screen", "0", "\(width)x\(height)x24", "-nolisten", "tcp"])
        let up = BackgroundRun.waitFor(timeout: 15) { fm.fileExists(atPath: "/tmp/.X11-unix/X\(free)") || !server.isRunning }
        guard up, server.isRunning else { throw PipelineError.invalidArgument("Xvfb :\(free) did not start: \(server.standardError)") }
    }

    var name: String { ":\(number)" }

    deinit {
        // SIGKILL: a child of the test runner inherits its threads' blocked SIGTERM, and a
        // server has nothing to save; killed, it leaves its lock and socket behind.
        server.signal(SIGKILL)
        _ = server.wait(timeout: 10)
        try? FileManager.default.removeItem(atPath: "/tmp/.X\(number)-lock")
        try? FileManager.default.removeItem(atPath: "/tmp/.X11-unix/X\(number)")
    }
}

/// A TCP port on 127.0.0.1 that nobody listens on right now (the kernel picks it).
func freeTCPPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw PipelineError.invalidArgument("cannot open a TCP socket") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw PipelineError.invalidArgument("cannot bind a TCP socket on 127.0.0.1") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
func acceptsConnections(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}

/// GLib's own warnings and criticals ("(prog:pid): GStreamer-CRITICAL **: …"), not the app's
/// "Warning: " lines.
func glibDiagnostics(in text: String) -> [Substring] {
    text.split(separator: "\n").filter { $0.contains("CRITICAL") || $0.contains("-WARNING **") }
}

/// A screenshot in X Window Dump format, as `xwd` writes it (ZPixmap, 24 or 32 bits a pixel).
struct XWDImage: CustomStringConvertible {
    let width: Int
    let height: Int
    private let bytes: [UInt8]
    private let pixelsStart: Int
    private let bytesPerLine: Int
    private let bytesPerPixel: Int
    private let littleEndian: Bool
    private let masks: (red: UInt32, green: UInt32, blue: UInt32)

    init(_ data: Data) throws {
        let bytes = [UInt8](data)
        self.bytes = bytes
        func field(_ index: Int) throws -> Int {
            let at = index * 4
            guard at + 4 <= bytes.count else { throw PipelineError.invalidArgument("XWD shorter than its header") }
            return bytes[at..<at + 4].reduce(0) { $0 << 8 | Int($1) }  // the header is big-endian
        }
        let headerSize = try field(0)
        guard try field(1) == 7, try field(2) == 2 else { throw PipelineError.invalidArgument("not a version 7 ZPixmap XWD") }
        width = try field(4)
        height = try field(5)
        littleEndian = try field(7) == 0  // byte_order: LSBFirst
        bytesPerPixel = try field(11) / 8
        bytesPerLine = try field(12)
        masks = (UInt32(try field(14)), UInt32(try field(15)), UInt32(try field(16)))
        let colourCount = try field(19)
        pixelsStart = headerSize + colourCount * 12  // XWDColor entries follow the header
        guard bytesPerPixel >= 3, pixelsStart + bytesPerLine * height <= bytes.count else {
            throw PipelineError.invalidArgument("XWD of \(bytes.count) bytes cannot hold \(width)x\(height) at \(bytesPerPixel * 8) bits")
        }
    }

    var description: String { "XWD \(width)x\(height), \(bytesPerPixel * 8) bits a pixel" }

    /// The luma (0…255) of pixel (x, y).
    func luma(x: Int, y: Int) -> Double {
        let at = pixelsStart + y * bytesPerLine + x * bytesPerPixel
        let raw = (0..<bytesPerPixel).reduce(UInt32(0)) { value, index in
            value | UInt32(bytes[at + index]) << (8 * (littleEndian ? index : bytesPerPixel - 1 - index))
        }
        func channel(_ mask: UInt32) -> Double { mask == 0 ? 0 : Double((raw & mask) >> mask.trailingZeroBitCount) }
        return 0.299 * channel(masks.red) + 0.587 * channel(masks.green) + 0.114 * channel(masks.blue)
    }

    /// Mean and standard deviation of the luma in columns `columns`, sampled on a 4-pixel grid.
    func lumaStatistics(columns: Range<Int>) -> (mean: Double, deviation: Double) {
        var sum = 0.0, squares = 0.0, count = 0.0
        for y in stride(from: 0, to: height, by: 4) {
            for x in stride(from: columns.lowerBound, to: columns.upperBound, by: 4) {
                let value = luma(x: x, y: y)
                sum += value
                squares += value * value
                count += 1
            }
        }
        let mean = sum / count
        return (mean, (max(0, squares / count - mean * mean)).squareRoot())
    }

    /// Mean absolute luma difference between the left and the right half, pixel for pixel.
    func halvesDifference() -> Double {
        let half = width / 2
        var sum = 0.0, count = 0.0
        for y in stride(from: 0, to: height, by: 4) {
            for x in stride(from: 0, to: half, by: 4) {
                sum += abs(luma(x: x, y: y) - luma(x: x + half, y: y))
                count += 1
            }
        }
        return sum / count
    }

    /// What keeps the screen from showing two pictures side by side (empty: nothing): a half
    /// that is black or of one colour, or, with `different`, halves alike.
    func problemsWithTwoTiles(different: Bool) -> [String] {
        let half = width / 2
        var problems: [String] = []
        for (name, columns) in [("left", 0..<half), ("right", half..<width)] {
            let stats = lumaStatistics(columns: columns)
            if stats.mean < 12 { problems.append("\(name) half is black (mean luma \(stats.mean))") }
            if stats.deviation < 8 { problems.append("\(name) half is uniform (luma deviation \(stats.deviation))") }
        }
        let difference = halvesDifference()
        if different && difference < 8 { problems.append("the halves are alike (mean difference \(difference))") }
        return problems
    }
}
