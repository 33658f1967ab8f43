import Foundation
import Logging
import Testing
@testable import Tributary
import TributarySample

/// The probe: in-place edits that the tiler and sinks see, honouring the pitch.
@Suite(.serialized) struct ProbeTests {
    @Test func halvingRedTouchesOnlyRedAndHonoursThePitch() {
        let image = ImageBuffer.allocateHost(width: 50, height: 3)  // 200-byte rows in 256-byte pitch
        #expect(image.bytesPerRow == 256)
        image.withMutableHostView { v in
            for y in 0..<3 {
                // Fill the padding too, to see that the edit leaves it alone.
                (v.base + y * v.bytesPerRow).initializeMemory(as: UInt8.self, repeating: 0xEE, count: v.bytesPerRow)
                for x in 0..<50 { v.setPixel(x: x, y: y, RGBA(r: UInt8((x * 5 + y) & 255), g: 7, b: 9, a: 200)) }
            }
        }
        image.withPixels { SampleEdit.halveRed(&$0) }
        image.withMutableHostView { v in
            for y in 0..<3 {
                for x in 0..<50 {
                    let r = (x * 5 + y) & 255
                    #expect(v.pixel(x: x, y: y) == RGBA(r: UInt8((r + 1) >> 1), g: 7, b: 9, a: 200))
                }
                let padding = UnsafeBufferPointer(start: (v.base + y * v.bytesPerRow + 200).assumingMemoryBound(to: UInt8.self), count: 56)
                #expect(padding.allSatisfy { $0 == 0xEE })
            }
        }
    }

    @Test func framePixelsRowsAndSubscripts() {
        let image = ImageBuffer.allocateHost(width: 4, height: 2)
        image.withPixels { pixels in
            #expect(pixels.location == .host && pixels.width == 4 && pixels.height == 2 && pixels.bytesPerRow == 64)
            pixels[x: 3, y: 1] = RGBA(r: 1, g: 2, b: 3, a: 4)
            pixels.withRow(1) { row in
                #expect(row.count == 16)
                row[12] = 99
            }
            #expect(pixels[x: 3, y: 1] == RGBA(r: 99, g: 2, b: 3, a: 4))
        }
    }

    /// The sample's edit runs in the probe; the tiled frame (1:1 tile, no OSD) must hold exactly
    /// (R + 1) >> 1 of the decoded pixels, G, B and A unchanged.
    @Test(.runningTimeLimit(minutes: 2))
    func theEditShowsDownstreamExactly() throws {
        try TestMedia.requireMedia()
        let configuration = PipelineConfiguration(
            inputs: [try SourceURI(TestMedia.h264)],
            muxer: StreamMuxerConfiguration(batchSize: 1, width: 320, height: 180), tilerWidth: 320, tilerHeight: 180,
            outputs: [.discard], osd: false, perfIntervalNanoseconds: 0)
        let pipeline = try Pipeline(configuration: configuration, logger: Logger(label: "test"))
        // The probe runs on the batch thread, the tiled frame comes from the output thread: the
        // pixels before the edit are kept per frame number.
        let before = Locked<[Int: [UInt8]]>([:])
        var checkedFrames = 0
        var mismatches = 0
        var changed = 0
        pipeline.probe = { batch in
            let frameNumber = batch.meta.frames[0].frameNumber
            batch.withPixels(ofFrame: 0) { pixels in
                var copy: [UInt8] = []
                for y in 0..<pixels.height { pixels.withRow(y) { row in for i in row.indices { copy.append(row[i]) } } }
                before.withValue { $0[frameNumber] = copy }
                SampleEdit.halveRed(&pixels)
            }
        }
        pipeline.onTiledFrame = { batch, view in
            guard let before = before.withValue({ $0.removeValue(forKey: batch.meta.frames[0].frameNumber) }) else { mismatches += 1; return }
            for y in 0..<view.height {
                let row = view.row(y)
                for x in 0..<view.width {
                    let i = (y * view.width + x) * 4
                    let r0 = Int(before[i])
                    if row[x * 4] != UInt8((r0 + 1) >> 1) || row[x * 4 + 1] != before[i + 1] || row[x * 4 + 2] != before[i + 2]
                        || row[x * 4 + 3] != before[i + 3] { mismatches += 1 }
                    if r0 > 1 { changed += 1 }
                }
            }
            checkedFrames += 1
            if checkedFrames == 20 { pipeline.requestStop(signal: SIGINT) }
        }
        let outcome = pipeline.run()
        #expect(outcome.sourceFailures.isEmpty && outcome.sinkFailure == nil)
        #expect(checkedFrames >= 20)
        #expect(mismatches == 0)
        #expect(changed > 20 * 320 * 180 / 2, "the frames have red to halve")
    }
}

/// The README's probe example, word for word inside the closure, so the documentation compiles
/// and does what it says.
@Suite(.serialized) struct ReadmeProbeExampleTests {
    @Test(.runningTimeLimit(minutes: 2))
    func theReadmeExampleHalvesRed() throws {
        try TestMedia.requireMedia()
        let configuration = PipelineConfiguration(
            inputs: [try SourceURI(TestMedia.h264)],
            muxer: StreamMuxerConfiguration(batchSize: 1, width: 160, height: 90), tilerWidth: 160, tilerHeight: 90,
            outputs: [.discard], osd: false, perfIntervalNanoseconds: 0)
        let pipeline = try Pipeline(configuration: configuration, logger: Logger(label: "test"))
        var before: [UInt8] = [], after: [UInt8] = []
        var frames = 0
        pipeline.onBatch = { batch in
            batch.frames[0].image.withHostView { v in before = Array(v.row(45)) }
        }
        pipeline.probe = { batch in
            for index in 0..<batch.frameCount {
                let people = batch.meta.frames[index].objects.filter { $0.label == "person" }.count
                batch.withPixels(ofFrame: index) { pixels in
                    // The sample's edit: R' = 0.5·R + 0.5, i.e. (R + 1) >> 1 on 8 bits.
                    for y in 0..<pixels.height {
                        pixels.withRow(y) { row in            // R, G, B, A, R, G, B, A, …
                            for x in stride(from: 0, to: row.count, by: 4) { row[x] = UInt8((Int(row[x]) + 1) >> 1) }
                        }
                    }
                    if people > 5 { pixels[x: 0, y: 0] = RGBA(r: 255, g: 0, b: 0) }
                }
            }
            batch.withPixels(ofFrame: 0) { pixels in pixels.withRow(45) { row in after = (0..<row.count).map { row[$0] } } }
            frames += 1
            if frames == 5 { pipeline.requestStop(signal: SIGINT) }
        }
        _ = pipeline.run()
        #expect(frames >= 5)
        #expect(before.count == 160 * 4 && after.count == before.count)
        for i in stride(from: 0, to: before.count, by: 4) {
            #expect(after[i] == UInt8((Int(before[i]) + 1) >> 1) && after[i + 1] == before[i + 1] && after[i + 2] == before[i + 2])
        }
    }
}
