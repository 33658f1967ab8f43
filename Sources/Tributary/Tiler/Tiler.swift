/// Composites a batch into one frame: each source's frame scaled (nearest neighbour, tables built
/// once per geometry) into its tile; tiles with no frame in the batch are black. Every output
/// pixel is written exactly once.
public final class Tiler: @unchecked Sendable {
    /// The grid; it follows the sources present (`follow(sourceIDs:)`), at the same output size.
    public private(set) var layout: TileLayout
    /// The source and tile sizes the tables were built for.
    private var cachedSizes: (sourceWidth: Int, sourceHeight: Int, tileWidth: Int, tileHeight: Int)?
    /// For each tile column, the byte offset of the source pixel in a source row.
    private var columnOffsets: [Int] = []
    /// For each tile row, the source row.
    private var rowIndex: [Int] = []

    public init(layout: TileLayout) { self.layout = layout }

    /// Lays the grid out for these sources (a source added or removed); nothing when they are the
    /// grid's already, or not given (empty).
    public func follow(sourceIDs: [Int]) {
        layout = layout.following(sourceIDs: sourceIDs)
    }

    package func composite(_ batch: FrameBatch, into output: MutableImageView) {
        precondition(output.width == layout.width && output.height == layout.height, "output size differs from the tiler's")
        for frame in batch.frames {
            // With more sources than tiles (never by construction) the later one wins.
            frame.image.withHostView { source in draw(source, into: output, tile: layout.tile(of: frame.sourceID)) }
        }
        for region in layout.uncoveredRegions(sourcesPresent: batch.frames.map(\.sourceID)) {
            fill(output, x: region.x, y: region.y, width: region.width, height: region.height)
        }
    }

    /// The host output of a batch: the tiles, then the OSD's boxes and labels (rects in muxer
    /// pixels) over them when there is an OSD.
    package func composite(_ batch: FrameBatch, osd: OSDRenderer?, muxerWidth: Int, muxerHeight: Int, into output: MutableImageView) {
        composite(batch, into: output)
        osd?.drawObjects(of: batch.meta, layout: layout, muxerWidth: muxerWidth, muxerHeight: muxerHeight, on: output)
    }

    private func prepareTables(sourceWidth: Int, sourceHeight: Int) {
        if let cached = cachedSizes, cached == (sourceWidth, sourceHeight, layout.tileWidth, layout.tileHeight) { return }
        cachedSizes = (sourceWidth, sourceHeight, layout.tileWidth, layout.tileHeight)
        // Sample at pixel centres: src = floor((dst + 0.5) * srcSize / dstSize).
        columnOffsets = (0..<layout.tileWidth).map { x in min(sourceWidth - 1, (2 * x + 1) * sourceWidth / (2 * layout.tileWidth)) * 4 }
        rowIndex = (0..<layout.tileHeight).map { y in min(sourceHeight - 1, (2 * y + 1) * sourceHeight / (2 * layout.tileHeight)) }
    }

    private func draw(_ source: ImageView, into output: MutableImageView, tile: (x: Int, y: Int, width: Int, height: Int)) {
        let rowBytes = tile.width * 4
        if source.width == tile.width && source.height == tile.height {
            for y in 0..<tile.height {
                (output.base + (tile.y + y) * output.bytesPerRow + tile.x * 4)
                    .copyMemory(from: source.base + y * source.bytesPerRow, byteCount: rowBytes)
            }
            return
        }
        prepareTables(sourceWidth: source.width, sourceHeight: source.height)
        columnOffsets.withUnsafeBufferPointer { columns in
            var previousSourceRow = -1
            for y in 0..<tile.height {
                let destination = output.base + (tile.y + y) * output.bytesPerRow + tile.x * 4
                let sourceRow = rowIndex[y]
                if sourceRow == previousSourceRow {
                    // Upscaling repeats rows: copy the row just written.
                    destination.copyMemory(from: destination - output.bytesPerRow, byteCount: rowBytes)
                    continue
                }
                previousSourceRow = sourceRow
                let src = source.base + sourceRow * source.bytesPerRow
                let dst = destination.assumingMemoryBound(to: UInt32.self)
                for x in 0..<tile.width {
                    dst[x] = src.loadUnaligned(fromByteOffset: columns[x], as: UInt32.self)
                }
            }
        }
    }

    private func fill(_ output: MutableImageView, x: Int, y: Int, width: Int, height: Int) {
        guard width > 0 && height > 0 else { return }
        for row in y..<(y + height) {
            (output.base + row * output.bytesPerRow + x * 4).initializeMemory(as: UInt8.self, repeating: 0, count: width * 4)
        }
    }
}
