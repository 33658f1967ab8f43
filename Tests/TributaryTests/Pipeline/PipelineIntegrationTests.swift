import Foundation
import Testing
@testable import Tributary
import Logging

/// Real media through real GStreamer: the sample files that `scripts/setup.sh` makes.
@Suite(.serialized) struct PipelineIntegrationTests {
    let logger = Logger(label: "test")

    /// Each source holds a pulled frame until the next pull (so its buffer is its own and the probe
    /// edits it in place, without a copy); across `--file-loop` restarts the held last frame still
    /// goes out before the first frame of the next round, and probes write in place.
    @Test(.runningTimeLimit(minutes: 2))
    func fileLoopDeliversEveryFrameInOrderAcrossRestarts() throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let clip = folder.appendingPathComponent("clip.mp4").path
        let length = 12
        try makeShortSampleClip(at: clip, frames: length)
        let configuration = PipelineConfiguration(
            inputs: [try SourceURI(clip)],
            muxer: StreamMuxerConfiguration(batchSize: 1, width: 160, height: 120, batchedPushTimeoutMicroseconds: -1),
            tilerWidth: 160, tilerHeight: 120, outputs: [.discard], osd: false, fileLoop: true, perfIntervalNanoseconds: 0)
        let pipeline = try Pipeline(configuration: configuration, logger: logger)
        var numbers: [Int] = []
        var rows: [UInt64] = []  // a hash of one row per frame
        var editedInPlace = true
        pipeline.probe = { batch in
            numbers.append(batch.meta.frames[0].frameNumber)
            batch.withPixels(ofFrame: 0) { pixels in
                pixels.withRow(60) { row in
                    rows.append((0..<row.count).reduce(UInt64(0xcbf2_9ce4_8422_2325)) { ($0 ^ UInt64(row[$1])) &* 0x100_0000_01b3 })
                }
                pixels[x: 0, y: 0] = RGBA(r: 1, g: 2, b: 3)
            }
            if numbers.count == 3 * length + 2 { pipeline.requestStop(signal: SIGINT) }
        }
        pipeline.onTiledFrame = { _, tiled in
            // The probe's write is what the tiler saw: the frame was changed in place.
            if tiled.pixel(x: 0, y: 0) != RGBA(r: 1, g: 2, b: 3) { editedInPlace = false }
        }
        let outcome = pipeline.run()
        #expect(outcome.ledger.counts(of: 0).unaccounted == 0)
        #expect(numbers == Array(0..<numbers.count), "frame numbers keep counting, no gaps")
        #expect(numbers.count >= 3 * length + 2)
        // Round two and three show the same pictures as round one, frame by frame.
        for index in length..<(3 * length) { #expect(rows[index] == rows[index % length], "frame \(index)") }
        #expect(editedInPlace)
    }

    @Test(.runningTimeLimit(minutes: 5))
    func threeCodecsAndSizesDeliverEveryFrameExactlyOnce() throws {
        try TestMedia.requireMedia()
        let inputs = try [TestMedia.h264, TestMedia.h265, TestMedia.avi].map(SourceURI.init)
        let configuration = PipelineConfiguration(
            inputs: inputs,
            muxer: StreamMuxerConfiguration(batchSize: 3, width: 160, height: 120, batchedPushTimeoutMicroseconds: -1),
            tilerWidth: 320, tilerHeight: 240, outputs: [.discard], perfIntervalNanoseconds: 0)
        let pipeline = try Pipeline(configuration: configuration, logger: logger)
        var seen = Array(repeating: [Int](), count: 3)
        var batchShapes: [[Int]] = []
        var batchIDs: [Int] = []
        pipeline.onBatch = { batch in
            batchShapes.append(batch.frames.map(\.sourceID))
            batchIDs.append(batch.batchID)
            for (frame, meta) in zip(batch.frames, batch.meta.frames) {
                #expect(frame.sourceID == meta.sourceID && frame.frameNumber == meta.frameNumber && meta.batchID == batch.batchID)
                #expect(frame.image.width == 160 && frame.image.height == 120)
                seen[frame.sourceID].append(frame.frameNumber)
            }
        }
        let outcome = pipeline.run()
        #expect(outcome.succeeded)
        for source in 0..<3 {
            #expect(seen[source] == Array(0..<TestMedia.sampleFrameCount), "source \(source): every frame once, in order")
            let counts = outcome.ledger.counts(of: source)
            #expect(counts.decoded == TestMedia.sampleFrameCount && counts.delivered == TestMedia.sampleFrameCount)
            #expect(counts.droppedTotal == 0 && counts.unaccounted == 0)
        }
        // All three run to the same length, and −1 waits for full batches: every batch has one
        // frame of each source.
        #expect(batchShapes.count == TestMedia.sampleFrameCount)
        #expect(batchShapes.allSatisfy { $0 == [0, 1, 2] })
        #expect(batchIDs == Array(0..<batchIDs.count))
    }

    @Test(.runningTimeLimit(minutes: 2))
    func solidColourSourcesLandInTheirTiles() throws {
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        // Red, green, blue, white in sources 0–3: a 2 × 2 grid.
        let colours: [(UInt32, RGBA)] = [(0xffff0000, RGBA(r: 255, g: 0, b: 0)), (0xff00ff00, RGBA(r: 0, g: 255, b: 0)),
                                         (0xff0000ff, RGBA(r: 0, g: 0, b: 255)), (0xffffffff, RGBA(r: 255, g: 255, b: 255))]
        var inputs: [SourceURI] = []
        for (index, colour) in colours.enumerated() {
            let file = folder.appendingPathComponent("solid\(index).mp4").path
            try makeSolidColourVideo(at: file, argb: colour.0)
            inputs.append(try SourceURI(file))
        }
        let configuration = PipelineConfiguration(
            inputs: inputs, muxer: StreamMuxerConfiguration(batchSize: 4, width: 64, height: 48, batchedPushTimeoutMicroseconds: -1),
            tilerWidth: 200, tilerHeight: 100, outputs: [.discard], perfIntervalNanoseconds: 0)
        let pipeline = try Pipeline(configuration: configuration, logger: logger)
        let layout = TileLayout(sourceCount: 4, width: 200, height: 100)
        var centres: [[RGBA]] = []
        pipeline.onTiledFrame = { _, view in
            centres.append((0..<4).map { s in
                let t = layout.tile(of: s)
                return view.pixel(x: t.x + t.width / 2, y: t.y + t.height / 2)
            })
        }
        let outcome = pipeline.run()
        #expect(outcome.succeeded)
        #expect(centres.count == 10)
        // H.264 in 4:2:0 moves a solid colour by a few levels; the tile must be that colour.
        func close(_ a: RGBA, _ b: RGBA) -> Bool { abs(Int(a.r) - Int(b.r)) <= 12 && abs(Int(a.g) - Int(b.g)) <= 12 && abs(Int(a.b) - Int(b.b)) <= 12 }
        for frame in centres {
            for s in 0..<4 { #expect(close(frame[s], colours[s].1), "tile \(s) is \(frame[s]), want \(colours[s].1)") }
        }
    }

    @Test(.runningTimeLimit(minutes: 2))
    func aBrokenSourceFailsAloneAndTheOthersFinish() throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let broken = folder.appendingPathComponent("not-a-video.mp4").path
        try Data("this is not a video".utf8).write(to: URL(fileURLWithPath: broken))
        let configuration = PipelineConfiguration(
            inputs: [try SourceURI(TestMedia.h264), try SourceURI(broken)],
            muxer: StreamMuxerConfiguration(batchSize: 2, width: 160, height: 120), tilerWidth: 320, tilerHeight: 120,
            outputs: [.discard], perfIntervalNanoseconds: 0)
        let pipeline = try Pipeline(configuration: configuration, logger: logger)
        let outcome = pipeline.run()
        #expect(!outcome.succeeded)
        #expect(outcome.sourceFailures.map(\.source) == [1])
        #expect(outcome.sourceFailures.first?.uri == broken)
        #expect(outcome.ledger.counts(of: 0).delivered == TestMedia.sampleFrameCount, "the good source loses nothing")
        #expect(outcome.ledger.counts(of: 1).decoded == 0)
    }

    @Test(.runningTimeLimit(minutes: 2))
    func anRTSPSourceIsLiveAndDeliversFrames() throws {
        try TestMedia.requireMedia()
        let server = try RTSPServer(address: "127.0.0.1", port: 0, mountPath: "/test", launch:
            "( filesrc location=\"\(TestMedia.h264)\" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )")
        defer { server.stop() }
        #expect(server.port > 0)
        let configuration = PipelineConfiguration(
            inputs: [try SourceURI(server.url)],
            muxer: StreamMuxerConfiguration(batchSize: 1, width: 160, height: 120), tilerWidth: 160, tilerHeight: 120,
            outputs: [.discard], perfIntervalNanoseconds: 0)
        let pipeline = try Pipeline(configuration: configuration, logger: logger)
        let frames = Locked(0)
        pipeline.onBatch = { batch in frames.withValue { $0 += batch.frames.count } }
        let run = BackgroundRun(pipeline)
        let arrived = BackgroundRun.waitFor(timeout: 30) { frames.withValue { $0 } >= 15 }
        pipeline.requestStop(signal: SIGINT)
        let outcome = run.finish(timeout: 30)
        #expect(arrived, "15 frames within 30 s from rtsp://127.0.0.1")
        #expect(outcome?.anyLive == true)
        #expect(outcome?.interruptedBy == SIGINT)
        #expect(outcome?.sourceFailures.isEmpty == true)
    }
}
