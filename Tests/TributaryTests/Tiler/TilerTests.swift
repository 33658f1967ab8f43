import Testing
@testable import Tributary

@Suite struct TileLayoutTests {
    @Test(arguments: [(1, 1, 1), (2, 1, 2), (3, 1, 3), (4, 2, 2), (5, 2, 3), (6, 2, 3), (8, 2, 4), (9, 3, 3), (10, 3, 4), (16, 4, 4)])
    func gridFollowsTheSample(sources: Int, rows: Int, columns: Int) {
        let layout = TileLayout(sourceCount: sources, width: 1920, height: 1080)
        #expect(layout.rows == rows)
        #expect(layout.columns == columns)
        #expect(layout.tileWidth == 1920 / columns)
        #expect(layout.tileHeight == 1080 / rows)
    }

    @Test func theGridOfTheSourcesPresentHasNoGapsForRemovedIDs() {
        // Sources 0, 1, 2, 4 and 5 came; 1 and 4 left: three present, in one row.
        let layout = TileLayout(sourceIDs: [5, 0, 2], width: 300, height: 100)
        #expect(layout.sourceIDs == [0, 2, 5] && layout.rows == 1 && layout.columns == 3)
        #expect(layout.tile(of: 0) == (0, 0, 100, 100))
        #expect(layout.tile(of: 2) == (100, 0, 100, 100))
        #expect(layout.tile(of: 5) == (200, 0, 100, 100))
        #expect(layout.uncoveredRegions(sourcesPresent: [5]).map(\.x) == [0, 100], "the tiles of 0 and 2")
        // No source yet: one black tile.
        let empty = TileLayout(sourceIDs: [], width: 300, height: 100)
        #expect(empty.sourceCount == 0 && empty.rows == 1 && empty.columns == 1)
        #expect(empty.uncoveredRegions(sourcesPresent: []).count == 1)
    }

    @Test func theTilerFollowsTheSourcesPresent() {
        let tiler = Tiler(layout: TileLayout(sourceCount: 2, width: 300, height: 100))
        tiler.follow(sourceIDs: [0, 1, 2])
        #expect(tiler.layout.columns == 3 && tiler.layout.tileWidth == 100 && tiler.layout.width == 300)
        tiler.follow(sourceIDs: [1, 2])
        #expect(tiler.layout.tile(of: 2) == (150, 0, 150, 100))
        tiler.follow(sourceIDs: [])
        #expect(tiler.layout.sourceIDs == [1, 2], "a batch that does not say keeps the grid")
    }

    @Test func tilesAreRowMajorBySourceID() {
        let layout = TileLayout(sourceCount: 5, width: 1200, height: 600)  // 2 rows × 3 columns of 400×300
        #expect(layout.tile(of: 0) == (0, 0, 400, 300))
        #expect(layout.tile(of: 2) == (800, 0, 400, 300))
        #expect(layout.tile(of: 3) == (0, 300, 400, 300))
        #expect(layout.tile(of: 4) == (400, 300, 400, 300))
    }
}

@Suite struct TilerCompositingTests {
    static let colours = [RGBA(r: 255, g: 0, b: 0), RGBA(r: 0, g: 255, b: 0), RGBA(r: 0, g: 0, b: 255)]

    func solidFrame(source: Int, width: Int, height: Int) -> Frame {
        let image = ImageBuffer.allocateHost(width: width, height: height)
        image.withMutableHostView { $0.fill(Self.colours[source]) }
        return Frame(sourceID: source, frameNumber: 0, pts: 0, image: image)
    }

    @Test(arguments: [(64, 48), (100, 50), (300, 200)])
    func everyTileHoldsItsSourceAndTheGapIsBlack(sourceWidth: Int, sourceHeight: Int) {
        let layout = TileLayout(sourceCount: 3, width: 301, height: 101)  // 1 row × 3 columns of 100×101, 1 px margin
        let tiler = Tiler(layout: layout)
        let output = ImageBuffer.allocateHost(width: 301, height: 101)
        output.withMutableHostView { $0.fill(RGBA(r: 9, g: 9, b: 9)) }
        let batch = FrameBatch(batchID: 0, frames: (0..<3).map { solidFrame(source: $0, width: sourceWidth, height: sourceHeight) })
        output.withMutableHostView { tiler.composite(batch, into: $0) }
        output.withHostView { view in
            for source in 0..<3 {
                let t = layout.tile(of: source)
                for (x, y) in [(t.x, t.y), (t.x + t.width - 1, t.y + t.height - 1), (t.x + t.width / 2, t.y + t.height / 2)] {
                    #expect(view.pixel(x: x, y: y) == Self.colours[source], "source \(source) at \(x),\(y)")
                }
            }
            #expect(view.pixel(x: 300, y: 50) == RGBA(r: 0, g: 0, b: 0, a: 0), "margin is cleared")
        }
    }

    @Test func aMissingSourceLeavesABlackTile() {
        let layout = TileLayout(sourceCount: 4, width: 40, height: 40)
        let tiler = Tiler(layout: layout)
        let output = ImageBuffer.allocateHost(width: 40, height: 40)
        output.withMutableHostView { $0.fill(RGBA(r: 9, g: 9, b: 9)) }
        let batch = FrameBatch(batchID: 0, frames: [solidFrame(source: 1, width: 20, height: 20)])
        output.withMutableHostView { tiler.composite(batch, into: $0) }
        output.withHostView { view in
            #expect(view.pixel(x: 30, y: 10) == Self.colours[1])
            #expect(view.pixel(x: 10, y: 10) == RGBA(r: 0, g: 0, b: 0, a: 0))
            #expect(view.pixel(x: 30, y: 30) == RGBA(r: 0, g: 0, b: 0, a: 0))
        }
    }

    @Test func scalingPicksTheNearestSourcePixel() {
        // A 4×1 gradient scaled to 8×2 repeats each pixel twice.
        let layout = TileLayout(sourceCount: 1, width: 8, height: 2)
        let source = ImageBuffer.allocateHost(width: 4, height: 1)
        source.withMutableHostView { v in for x in 0..<4 { v.setPixel(x: x, y: 0, RGBA(r: UInt8(x * 10), g: 0, b: 0)) } }
        let output = ImageBuffer.allocateHost(width: 8, height: 2)
        output.withMutableHostView { Tiler(layout: layout).composite(FrameBatch(batchID: 0, frames: [Frame(sourceID: 0, frameNumber: 0, pts: nil, image: source)]), into: $0) }
        output.withHostView { v in
            #expect((0..<8).map { v.pixel(x: $0, y: 0).r } == [0, 0, 10, 10, 20, 20, 30, 30])
            #expect((0..<8).map { v.pixel(x: $0, y: 1).r } == [0, 0, 10, 10, 20, 20, 30, 30])
        }
    }
}
