import Foundation
import Testing
@testable import Tributary

@Suite struct JPEGEncoderTests {
    static let left = RGBA(r: 230, g: 20, b: 20)
    static let right = RGBA(r: 20, g: 40, b: 220)

    /// Left half one colour, right half another.
    func halves(width: Int, height: Int) -> ImageBuffer {
        let image = ImageBuffer.allocateHost(width: width, height: height)
        image.withMutableHostView { view in
            for y in 0..<height { for x in 0..<width { view.setPixel(x: x, y: y, x < width / 2 ? Self.left : Self.right) } }
        }
        return image
    }

    /// Decodes a JPEG file to raw RGBA with gst-launch (jpegdec), independent of the encoder.
    func decode(_ path: String, into rawPath: String) throws -> [UInt8] {
        let result = try runProcess("/usr/bin/timeout", ["60", "gst-launch-1.0", "-q", "filesrc", "location=\(path)", "!", "jpegdec", "!",
            "videoconvert", "!", "video/x-raw,format=RGBA", "!", "filesink", "location=\(rawPath)"], timeout: 90)
        #expect(result.status == 0, "gst-launch: \(result.standardError)")
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: rawPath)))
    }

    func close(_ a: UInt8, _ b: UInt8, _ tolerance: Int = 24) -> Bool { abs(Int(a) - Int(b)) <= tolerance }

    func expectColour(_ raw: [UInt8], width: Int, x: Int, y: Int, _ expected: RGBA, sourceLocation: SourceLocation = #_sourceLocation) {
        let i = (y * width + x) * 4
        let ok = close(raw[i], expected.r) && close(raw[i + 1], expected.g) && close(raw[i + 2], expected.b)
        #expect(ok, "pixel \(x),\(y) is \(raw[i]),\(raw[i + 1]),\(raw[i + 2]), expected about \(expected)", sourceLocation: sourceLocation)
    }

    @Test(.runningTimeLimit(minutes: 2))
    func encodesAJPEGThatDecodesToTheImage() throws {
        let image = halves(width: 64, height: 48)
        let encoder = try JPEGEncoder(width: 64, height: 48)
        let bytes = try image.withHostView { try encoder.encode($0) }
        #expect(bytes.count > 100)
        #expect(Array(bytes.prefix(2)) == [0xFF, 0xD8], "SOI marker")
        #expect(Array(bytes.suffix(2)) == [0xFF, 0xD9], "EOI marker")

        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("halves.jpg").path
        try image.withHostView { try encoder.write($0, to: path) }
        #expect(FileManager.default.fileExists(atPath: path))
        let info = try discover(path)
        #expect(info.contains("Width: 64"), "\(info)")
        #expect(info.contains("Height: 48"), "\(info)")

        let raw = try decode(path, into: folder.appendingPathComponent("halves.rgba").path)
        try #require(raw.count == 64 * 48 * 4)
        expectColour(raw, width: 64, x: 8, y: 24, Self.left)
        expectColour(raw, width: 64, x: 56, y: 24, Self.right)
    }

    @Test(.runningTimeLimit(minutes: 2))
    func encodesRepeatedlyAndHonoursTheRowPitch() throws {
        // 50 px wide: the host image's rows are padded to 256 bytes, the encoder's input is 200.
        let image = halves(width: 50, height: 30)
        try #require(image.bytesPerRow != 50 * 4)
        let encoder = try JPEGEncoder(width: 50, height: 30, quality: 95)
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("pitch.jpg").path
        for _ in 0..<3 {
            let bytes = try image.withHostView { try encoder.encode($0) }
            #expect(Array(bytes.prefix(2)) == [0xFF, 0xD8] && Array(bytes.suffix(2)) == [0xFF, 0xD9])
        }
        try FileManager.default.createDirectory(atPath: folder.path, withIntermediateDirectories: true)
        try "old contents, longer than nothing".write(toFile: path, atomically: false, encoding: .utf8)
        try image.withHostView { try encoder.write($0, to: path) }  // replaces the file
        let written = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(Array(written.prefix(2)) == [0xFF, 0xD8])
        let raw = try decode(path, into: folder.appendingPathComponent("pitch.rgba").path)
        try #require(raw.count == 50 * 30 * 4)
        for y in [0, 15, 29] {
            expectColour(raw, width: 50, x: 5, y: y, Self.left)
            expectColour(raw, width: 50, x: 45, y: y, Self.right)
        }
    }

    @Test func writingIntoAMissingFolderNamesThePath() throws {
        let encoder = try JPEGEncoder(width: 16, height: 16)
        let image = halves(width: 16, height: 16)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-folder-\(UUID().uuidString)/frame.jpg").path
        do {
            try image.withHostView { try encoder.write($0, to: path) }
            Issue.record("writing to \(path) succeeded")
        } catch let error as PipelineError {
            #expect(String(describing: error).contains(path), "\(error)")
            guard case .sinkFailed(let target, _, _) = error else { Issue.record("unexpected \(error)"); return }
            #expect(target == path)
        }
    }

    /// A saved frame is whole or absent: written under a temporary name, renamed when complete.
    @Test func aWrittenJPEGIsWholeAndLeavesNoTemporaryFile() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("jpeg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let encoder = try JPEGEncoder(width: 16, height: 16)
        let path = folder.appendingPathComponent("frame.jpg").path
        try halves(width: 16, height: 16).withHostView { try encoder.write($0, to: path) }
        let bytes = [UInt8](FileManager.default.contents(atPath: path) ?? Data())
        #expect(bytes.prefix(2) == [0xFF, 0xD8] && bytes.suffix(2) == [0xFF, 0xD9], "a whole JPEG")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["frame.jpg"], "nothing else left")
    }

    @Test func anImageOfAnotherSizeIsRefused() throws {
        let encoder = try JPEGEncoder(width: 16, height: 16)
        let image = halves(width: 20, height: 16)
        #expect(throws: PipelineError.self) { try image.withHostView { try encoder.encode($0) } }
    }
}
