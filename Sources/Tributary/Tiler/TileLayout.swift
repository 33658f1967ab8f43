/// Geometry of nvmultistreamtiler's grid: rows = int(√N), columns = ceil(N / rows), every tile the
/// same size, filled row-major in ascending source id. N is the number of sources present: the
/// grid follows sources added and removed while a pipeline runs (`init(sourceIDs:…)`).
public struct TileLayout: Sendable, Equatable {
    public let sourceCount: Int
    public let rows: Int
    public let columns: Int
    public let width: Int
    public let height: Int
    public let tileWidth: Int
    public let tileHeight: Int
    /// The sources with a tile, ascending; slot k is the k-th tile in row-major order.
    public let sourceIDs: [Int]

    /// The grid of sources `0..<sourceCount`.
    public init(sourceCount: Int, width: Int, height: Int) {
        self.init(sourceIDs: Array(0..<sourceCount), width: width, height: height)
    }

    /// The grid of the sources present, whatever their ids (ids of removed sources leave no gap).
    public init(sourceIDs: [Int], width: Int, height: Int) {
        precondition(width > 0 && height > 0)
        let ids = Array(Set(sourceIDs)).sorted()
        // No source yet: one empty tile, painted black.
        let count = max(1, ids.count)
        sourceCount = ids.count
        self.sourceIDs = ids
        var r = 1
        while (r + 1) * (r + 1) <= count { r += 1 }  // int(sqrt(N)) without floating point
        rows = r
        columns = (count + r - 1) / r
        self.width = width
        self.height = height
        tileWidth = width / columns
        tileHeight = height / rows
    }

    /// The grid of `sourceIDs` at this size, or this one when they are its sources already or not
    /// given (empty: a batch that does not say keeps the grid).
    public func following(sourceIDs: [Int]) -> TileLayout {
        guard !sourceIDs.isEmpty, sourceIDs != self.sourceIDs else { return self }
        return TileLayout(sourceIDs: sourceIDs, width: width, height: height)
    }

    /// The tile slot of a source: its rank among the sources present. A source without a tile
    /// (never by construction) takes the slot its id wraps to.
    public func slot(of sourceID: Int) -> Int {
        var low = 0, high = sourceIDs.count
        while low < high {
            let middle = (low + high) / 2
            if sourceIDs[middle] < sourceID { low = middle + 1 } else { high = middle }
        }
        return low < sourceIDs.count && sourceIDs[low] == sourceID ? low : sourceID % (rows * columns)
    }

    /// The tile of a source, in output pixels.
    public func tile(of sourceID: Int) -> (x: Int, y: Int, width: Int, height: Int) {
        let index = slot(of: sourceID)
        return ((index % columns) * tileWidth, (index / columns) * tileHeight, tileWidth, tileHeight)
    }

    /// What no frame of the batch covers: the tiles of sources with no frame in it, plus the
    /// right and bottom margins the integer division leaves. Tilers paint these black.
    public func uncoveredRegions(sourcesPresent: some Sequence<Int>) -> [(x: Int, y: Int, width: Int, height: Int)] {
        var present = [Bool](repeating: false, count: rows * columns)
        for id in sourcesPresent { present[slot(of: id)] = true }
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
