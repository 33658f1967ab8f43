import Foundation
import Logging
import Testing
@testable import Tributary

/// Sources added and removed while the pipeline runs, end to end on real GStreamer sources.
@Suite(.serialized) struct DynamicSourcesTests {
    let logger = Logger(label: "test")

    /// Solid red, green, blue clips (looping, so they run until removed).
    static let colours: [(argb: UInt32, rgba: RGBA)] = [(0xffff0000, RGBA(r: 255, g: 0, b: 0)), (0xff00ff00, RGBA(r: 0, g: 255, b: 0)),
                                                        (0xff0000ff, RGBA(r: 0, g: 0, b: 255))]

    func solidClips(in folder: URL) throws -> [SourceURI] {
        try Self.colours.enumerated().map { index, colour in
            let file = folder.appendingPathComponent("solid\(index).mp4").path
            try makeSolidColourVideo(at: file, argb: colour.argb, frames: 30)
            return try SourceURI(file)
        }
    }

    func configuration(_ inputs: [SourceURI]) -> PipelineConfiguration {
        var configuration = PipelineConfiguration(
            inputs: inputs,
            muxer: StreamMuxerConfiguration(batchSize: 2, width: 64, height: 48, acceptsNewSources: true),
            tilerWidth: 240, tilerHeight: 80, outputs: [.discard], fileLoop: true, perfIntervalNanoseconds: 0)
        configuration.batchSizeFollowsSources = true
        return configuration
    }

    /// What one tiled frame showed: the sources in its grid, the colour at each one's tile centre.
    struct Shown { let time: Double; let sources: [Int]; let centres: [RGBA]; let batchSize: Int }

    /// Two sources, a third added after 1 s, the first removed after 2 s: the grid follows (1 × 2,
    /// 1 × 3, 1 × 2), each tile shows its own source's colour, the source present throughout
    /// never stalls, and every frame of every source is accounted for in the ledger.
    @Test(.runningTimeLimit(minutes: 2))
    func aSourceAddedAndAnotherRemovedWhileRunning() throws {
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let clips = try solidClips(in: folder)
        let pipeline = try Pipeline(configuration: configuration(Array(clips.prefix(2))), logger: logger)
        let start = Date()
        let shown = Locked<[Shown]>([])
        pipeline.onTiledFrame = { batch, view in
            let layout = TileLayout(sourceIDs: batch.sourcesPresent, width: view.width, height: view.height)
            let centres = batch.sourcesPresent.map { id -> RGBA in
                let tile = layout.tile(of: id)
                return view.pixel(x: tile.x + tile.width / 2, y: tile.y + tile.height / 2)
            }
            let entry = Shown(time: Date().timeIntervalSince(start), sources: batch.sourcesPresent, centres: centres,
                              batchSize: batch.frames.count)
            shown.withValue { $0.append(entry) }
        }
        let run = BackgroundRun(pipeline)
        usleep(1_000_000)
        let added = try pipeline.addSource(clips[2], cameraID: "gate")
        #expect(added == 2)
        #expect(pipeline.sourceID(ofCamera: "gate") == 2)
        usleep(1_000_000)
        let dropped = pipeline.removeSource(0, policy: .drop)
        #expect(dropped != nil)
        #expect(pipeline.sourceIDs == [1, 2])
        #expect(pipeline.removeSource(0) == nil, "already gone")
        usleep(1_000_000)
        // The end: the rest leave too (drained), and no source will come.
        pipeline.removeSource(1)
        pipeline.removeSource(2)
        pipeline.closeInput()
        let outcome = try #require(run.finish(timeout: 30), "the run did not end after its input closed")
        #expect(outcome.succeeded && outcome.interruptedBy == nil)
        #expect(pipeline.sourceID(ofCamera: "gate") == nil)
        #expect(throws: SourceChangeError.self) { try pipeline.addSource(clips[0]) }

        let frames = shown.withValue { $0 }
        // The grids in the order they were shown: each change happens once.
        var grids: [[Int]] = []
        for entry in frames where grids.last != entry.sources { grids.append(entry.sources) }
        #expect(grids.first == [0, 1] && grids.contains([0, 1, 2]) && grids.contains([1, 2]), "\(grids)")
        #expect(grids.firstIndex(of: [0, 1, 2]) ?? 99 < grids.firstIndex(of: [1, 2]) ?? -1, "\(grids)")
        // H.264 in 4:2:0 moves a solid colour by a few levels.
        func close(_ a: RGBA, _ b: RGBA) -> Bool { abs(Int(a.r) - Int(b.r)) <= 12 && abs(Int(a.g) - Int(b.g)) <= 12 && abs(Int(a.b) - Int(b.b)) <= 12 }
        var mismatches = 0
        for entry in frames where entry.batchSize == entry.sources.count {  // every tile has this batch's frame
            for (id, centre) in zip(entry.sources, entry.centres) where !close(centre, Self.colours[id].rgba) { mismatches += 1 }
        }
        #expect(mismatches == 0, "\(mismatches) tiles showed another source's colour")
        #expect(frames.contains { $0.sources == [0, 1, 2] && $0.batchSize == 3 }, "the batch size followed to 3")

        // Source 1 ran from start to end: no gap of a second in its frames.
        let times = frames.filter { $0.sources.contains(1) }.map(\.time)
        let gaps = zip(times.dropFirst(), times).map { $0 - $1 }
        #expect((gaps.max() ?? 99) < 1.0, "source 1 stalled for \(gaps.max() ?? 99) s")

        for id in 0...2 {
            let counts = outcome.ledger.counts(of: id)
            #expect(counts.decoded > 10 && counts.delivered > 10, "source \(id): \(counts)")
            #expect(counts.unaccounted == 0, "source \(id): \(counts)")
        }
        #expect(outcome.ledger.counts(of: 0).dropped.keys.allSatisfy { $0 == DropReason.sourceRemoved.rawValue })
        #expect(outcome.ledger.sourceIDs == [0, 1, 2])
    }

    /// A pipeline with no source waits; sources come and go; camera ids map to fresh source ids.
    @Test(.runningTimeLimit(minutes: 2))
    func anEmptyPipelineWaitsForItsFirstSource() throws {
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let clips = try solidClips(in: folder)
        let pipeline = try Pipeline(configuration: configuration([]), logger: logger)
        let batches = Locked(0)
        pipeline.onBatch = { _ in batches.withValue { $0 += 1 } }
        let run = BackgroundRun(pipeline)
        usleep(300_000)
        #expect(run.finish(timeout: 0) == nil, "no source yet: still running")
        #expect(batches.withValue { $0 } == 0)

        let first = try pipeline.addSource(clips[0], cameraID: "door")
        #expect(BackgroundRun.waitFor(timeout: 10) { batches.withValue { $0 } > 5 }, "the first source's frames flow")
        #expect(throws: SourceChangeError.cameraPresent(cameraID: "door", sourceID: first)) { try pipeline.addSource(clips[1], cameraID: "door") }
        pipeline.removeSource(first, policy: .drop)
        // The same camera again: a new source id.
        let again = try pipeline.addSource(clips[1], cameraID: "door")
        #expect(again == first + 1)
        let before = batches.withValue { $0 }
        #expect(BackgroundRun.waitFor(timeout: 10) { batches.withValue { $0 } > before + 5 }, "the re-added camera's frames flow")
        pipeline.requestStop(signal: SIGINT)
        let outcome = try #require(run.finish(timeout: 30))
        #expect(outcome.interruptedBy == SIGINT)
        #expect(outcome.ledger.sourceIDs == [first, again])
        for id in [first, again] { #expect(outcome.ledger.counts(of: id).unaccounted == 0, "\(outcome.ledger.counts(of: id))") }
    }

    /// A pipeline of fixed inputs refuses new sources, before and while it runs.
    @Test func fixedInputsRefuseNewSources() throws {
        let pipeline = try Pipeline(configuration: PipelineConfiguration(
            inputs: [try SourceURI(TestMedia.h264)], muxer: StreamMuxerConfiguration(batchSize: 1, width: 64, height: 48),
            outputs: [.discard], perfIntervalNanoseconds: 0), logger: logger)
        #expect(throws: SourceChangeError.inputClosed(uri: TestMedia.h264)) { try pipeline.addSource(try SourceURI(TestMedia.h264)) }
        #expect(pipeline.sourceIDs == [0])
    }
}
