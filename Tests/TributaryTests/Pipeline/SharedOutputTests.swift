import Foundation
import Logging
import Testing
@testable import Tributary

/// `--gpus N --single-output`, on the CPU with two shards: each shard's batches, their source ids
/// made global, meet in one tiled output laid out as the whole run's grid.
@Suite(.serialized) struct SharedOutputTests {
    @Test(.runningTimeLimit(minutes: 2))
    func twoShardsMakeOneGridInGlobalSourceOrder() throws {
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        // Four inputs of four colours; shard 0 takes inputs 0–1, shard 1 inputs 2–3 (ShardPlan).
        let colours: [UInt32] = [0xFFFF_0000, 0xFF00_FF00, 0xFF00_00FF, 0xFFFF_FF00]
        var uris: [SourceURI] = []
        for (index, argb) in colours.enumerated() {
            let path = folder.appendingPathComponent("c\(index).mp4").path
            try makeSolidColourVideo(at: path, argb: argb, frames: 12)
            uris.append(try SourceURI(path))
        }
        let plan = ShardPlan(sourceCount: 4, devices: [.cpu, .cpu])
        let logger = Logger(label: "test")
        let shared = try SharedOutput(shardSources: plan.shards.map(\.sources), tilerWidth: 320, tilerHeight: 240,
                                      muxerWidth: 160, muxerHeight: 120, outputs: [.discard], osd: false, logger: logger)
        #expect(shared.layout.rows == 2 && shared.layout.columns == 2)
        var grids: [[RGBA]] = []
        shared.onTiledFrame = { _, view in
            // The centre pixel of each of the four tiles, row-major.
            grids.append([(80, 60), (240, 60), (80, 180), (240, 180)].map { x, y in
                let p = view.base.advanced(by: y * view.bytesPerRow + x * 4).assumingMemoryBound(to: UInt8.self)
                return RGBA(r: p[0], g: p[1], b: p[2], a: p[3])
            })
        }
        let pipelines = try plan.shards.enumerated().map { index, shard -> Pipeline in
            let configuration = PipelineConfiguration(
                inputs: shard.sources.map { uris[$0] },
                muxer: StreamMuxerConfiguration(batchSize: shard.sources.count, width: 160, height: 120, batchedPushTimeoutMicroseconds: -1),
                tilerWidth: 320, tilerHeight: 240, outputs: [.discard], osd: false, perfIntervalNanoseconds: 0)
            return try Pipeline(configuration: configuration, sharedOutput: (shared, index), logger: logger)
        }
        shared.start()
        let runs = pipelines.map { BackgroundRun($0) }
        let outcomes = runs.map { $0.finish(timeout: 60) }
        #expect(shared.finish() == nil)
        #expect(outcomes.allSatisfy { $0?.succeeded == true })
        #expect(grids.count == 12, "one tiled frame per pair of shard batches")
        // x264 changes colours a little: compare channels within a margin.
        func near(_ a: RGBA, _ argb: UInt32) -> Bool {
            let r = UInt8((argb >> 16) & 0xFF), g = UInt8((argb >> 8) & 0xFF), b = UInt8(argb & 0xFF)
            return abs(Int(a.r) - Int(r)) < 24 && abs(Int(a.g) - Int(g)) < 24 && abs(Int(a.b) - Int(b)) < 24
        }
        for grid in grids {
            #expect(zip(grid, colours).allSatisfy { near($0, $1) }, "tile i shows input i: \(grid)")
        }
    }
}
