/// Geometry of nvmultistreamtiler's grid: rows = int(√N), columns = ceil(N / rows), row-major by
/// source id, every tile the same size.
public struct TileLayout: Sendable, Equatable {
    public let sourceCount: Int
    public let rows: Int
    public let columns: Int
    public let width: Int
    public let height: Int
    public let tileWidth: Int
    public let tileHeight: Int

    public init(sourceCount: Int, width: Int, height: Int) {
        precondition(sourceCount > 0 && width > 0 && height > 0)
        self.sourceCount = sourceCount
        var r = 1
        while (r + 1) * (r + 1) <= sourceCount { r += 1 }  // int(sqrt(N)) without floating point
        rows = r
        columns = (sourceCount + r - 1) / r
        self.width = width
        self.height = height
        tileWidth = width / columns
        tileHeight = height / rows
    }

    /// The tile of a source, in output pixels.
    public func tile(of sourceID: Int) -> (x: Int, y: Int, width: Int, height: Int) {
        let index = sourceID % (rows * columns)
        return ((index % columns) * tileWidth, (index / columns) * tileHeight, tileWidth, tileHeight)
    }

    /// What no frame of the batch covers: the tiles of sources with no frame in it, plus the
    /// right and bottom margins the integer division leaves. Tilers paint these black.
    public func uncoveredRegions(sourcesPresent: some Sequence<Int>) -> [(x: Int, y: Int, width: Int, height: Int)] {
        var present = [Bool](repeating: false, count: rows * columns)
        for id in sourcesPresent { present[id % present.count] = true }
        var regions: [(x: Int, y: Int, width: Int, height: Int)] = []
        for slot in 0..<present.count where !present[slot] {
            regions.append(((slot % columns) * tileWidth, (slot / columns) * tileHeight, tileWidth, tileHeight))
        }
        let usedWidth = columns * tileWidth, usedHeight = rows * tileHeight
        if usedWidth < width { regions.append((usedWidth, 0, width - usedWidth, height)) }
        if usedHeight < height { regions.append((0, usedHeight, usedWidth, height - usedHeight)) }
        return regions
    }
}
