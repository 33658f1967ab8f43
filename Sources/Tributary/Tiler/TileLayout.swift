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
}
