/// The OSD on the GPU (nvdsosd on device memory): the same boxes and labels as `OSDRenderer`,
/// painted by two kernels into a pitched RGBA device image. Per call the host lays the objects
/// out with the CPU renderer's layout (`OSDLayout.Sizes`), turns the result into a small draw
/// list (`OSDDrawList`), uploads it into buffers that are reused and grown, and launches
/// `osd_fill_rects` (borders, label backgrounds) then `osd_draw_glyphs` (label text from the glyph
/// atlas, uploaded once). The result is the CPU OSD's, pixel for pixel, for printable ASCII
/// labels; other characters are laid out and drawn as "?" (the atlas holds ASCII only).
///
/// Calls are serialised; the draw list buffers are reused, so work queued on a previous call's
/// stream is waited for before a call on another stream overwrites them.
package final class DeviceOSD: @unchecked Sendable {
    package let device: CUDADevice
    package let renderer: OSDRenderer
    package let atlas: GlyphAtlas
    private let atlasMemory: DeviceMemory
    private let fillRects: CUDAFunction
    private let drawGlyphs: CUDAFunction
    private let state = Locked(Buffers())

    /// Device copies of the last draw list, grown as needed.
    private struct Buffers {
        var rects: DeviceMemory?
        var glyphs: DeviceMemory?
        var runs: DeviceMemory?
        var lastStream: CUDAStream?
    }

    package init(device: CUDADevice, renderer: OSDRenderer) throws {
        self.device = device
        self.renderer = renderer
        let atlas = GlyphAtlas(renderer: renderer)
        let atlasMemory = try device.allocate(byteCount: atlas.alpha.count)
        try atlas.alpha.withUnsafeBytes { bytes in
            try device.copy2D(from: .host(UnsafeMutableRawPointer(mutating: bytes.baseAddress!)), sourcePitch: atlas.width,
                              to: .device(atlasMemory.address), targetPitch: atlas.width, widthBytes: atlas.width, height: atlas.height)
        }
        self.atlas = atlas
        self.atlasMemory = atlasMemory
        fillRects = try device.function(named: "osd_fill_rects", source: CUDAKernels.osdFillRects)
        drawGlyphs = try device.function(named: "osd_draw_glyphs", source: CUDAKernels.osdDrawGlyphs)
    }

    /// Draws every frame's objects of `meta` on the tiled device image `image` (`bytesPerRow`
    /// pitch, `width × height` RGBA pixels), like `OSDRenderer.drawObjects`: rects are in muxer
    /// pixels and scaled into their source's tile. Queued on `stream`; returns without waiting.
    package func draw(_ meta: BatchMeta, layout: TileLayout, muxerWidth: Int, muxerHeight: Int, on image: DevicePointer,
                      bytesPerRow: Int, width: Int, height: Int, stream: CUDAStream) throws {
        let list = OSDDrawList(meta, layout: layout, muxerWidth: muxerWidth, muxerHeight: muxerHeight,
                               imageWidth: width, imageHeight: height, renderer: renderer, atlas: atlas)
        guard !list.rects.isEmpty || !list.runs.isEmpty else { return }
        try state.withValue { buffers in
            if let last = buffers.lastStream, last !== stream { try last.synchronize() }
            buffers.lastStream = stream
            let rects = try upload(list.rects, into: &buffers.rects, stream: stream)
            let glyphs = try upload(list.glyphs, into: &buffers.glyphs, stream: stream)
            let runs = try upload(list.runs, into: &buffers.runs, stream: stream)

            if !list.rects.isEmpty {
                var arguments = KernelArguments()
                arguments.append(rects)
                arguments.append(list.rects.count)
                arguments.append(image)
                arguments.append(bytesPerRow)
                arguments.append(width)
                arguments.append(height)
                try fillRects.launch(grid: Self.grid(itemCount: list.rects.count, largestArea: list.largestRectArea),
                                     block: (Self.threadsPerBlock, 1, 1), stream: stream, arguments: arguments)
            }
            if !list.runs.isEmpty {
                var arguments = KernelArguments()
                arguments.append(runs)
                arguments.append(list.runs.count)
                arguments.append(glyphs)
                arguments.append(atlasMemory.address)
                arguments.append(atlas.width)
                arguments.append(image)
                arguments.append(bytesPerRow)
                arguments.append(width)
                arguments.append(height)
                try drawGlyphs.launch(grid: Self.grid(itemCount: list.runs.count, largestArea: list.largestRunArea),
                                      block: (Self.threadsPerBlock, 1, 1), stream: stream, arguments: arguments)
            }
        }
    }

    private static let threadsPerBlock = 256

    /// grid.y: one row of blocks per item (the kernels stride over more than 65535); grid.x:
    /// enough blocks for the largest item's pixels, capped (threads loop over the rest).
    private static func grid(itemCount: Int, largestArea: Int) -> (x: Int, y: Int, z: Int) {
        let blocks = (largestArea + threadsPerBlock - 1) / threadsPerBlock
        return (min(max(blocks, 1), 64), min(itemCount, 65_535), 1)
    }

    /// Copies `items` on `stream` into `buffer`, reallocated when too small; returns its address.
    private func upload<Element>(_ items: [Element], into buffer: inout DeviceMemory?, stream: CUDAStream) throws -> DevicePointer {
        let byteCount = items.count * MemoryLayout<Element>.stride
        if (buffer?.byteCount ?? 0) < byteCount {
            // The old buffer may still be read by queued kernels: let them finish before it goes.
            if buffer != nil { try stream.synchronize() }
            buffer = nil
            buffer = try device.allocate(byteCount: max(byteCount * 2, 4096))
        }
        let memory = buffer!
        if byteCount > 0 {
            // From pageable memory the driver stages the bytes before returning, so the array
            // may go as soon as this returns.
            try items.withUnsafeBytes { bytes in
                try device.copy(byteCount: byteCount, from: .host(UnsafeMutableRawPointer(mutating: bytes.baseAddress!)),
                                to: .device(memory.address), stream: stream, wait: false)
            }
        }
        return memory.address
    }
}

/// What the GPU OSD paints for one batch, built on the host from the shared OSD layout. Its
/// element types are laid out like the kernels' structs (Int32 fields, in order).
///
/// Draw order is resolved here, not on the device: Cairo paints item after item, so a later
/// item covers an earlier one. Each item's rects and text clips are cut by every later item's
/// painted rects, which leaves every pixel to at most one item: the kernels then run fully in
/// parallel, without write races, and give Cairo's result.
package struct OSDDrawList {
    /// A rectangle painted opaque in one colour: a border strip, a small box, a label background.
    package struct FillRect: Equatable, Sendable {
        package var x0: Int32, y0: Int32, x1: Int32, y1: Int32
        /// `RGBA.packed`.
        package var colour: UInt32
    }

    /// One glyph bitmap of the atlas placed in the image.
    package struct GlyphQuad: Equatable, Sendable {
        /// The bitmap's top-left corner in the image.
        package var x: Int32, y: Int32
        package var atlasX: Int32, atlasY: Int32, width: Int32, height: Int32
    }

    /// A label's glyphs (`glyphCount` quads from `firstGlyph`), blended in `colour` through their
    /// summed coverage (as Cairo does for glyphs that overlap), only inside `clip`.
    package struct TextRun: Equatable, Sendable {
        package var firstGlyph: Int32, glyphCount: Int32
        package var clipX0: Int32, clipY0: Int32, clipX1: Int32, clipY1: Int32
        package var colour: UInt32
    }

    package private(set) var rects: [FillRect] = []
    package private(set) var glyphs: [GlyphQuad] = []
    package private(set) var runs: [TextRun] = []
    /// Launch sizes: the most pixels of one rect, of one run's clip.
    package private(set) var largestRectArea = 0
    package private(set) var largestRunArea = 0

    /// The draw list of `meta`'s objects on a `imageWidth × imageHeight` tiled image (what
    /// `OSDRenderer.drawObjects` would paint there).
    package init(_ meta: BatchMeta, layout: TileLayout, muxerWidth: Int, muxerHeight: Int, imageWidth: Int, imageHeight: Int,
                 renderer: OSDRenderer, atlas: GlyphAtlas) {
        let items = OSDLayout.items(of: meta, layout: layout, muxerWidth: muxerWidth, muxerHeight: muxerHeight,
                                      imageWidth: imageWidth, imageHeight: imageHeight)
        let osdLayout = OSDLayout.Sizes(renderer: renderer, ascent: atlas.ascent, descent: atlas.descent)
        self.init(items.map { item in osdLayout.place(item) { atlas.textWidth($0) } }, atlas: atlas)
    }

    /// The draw list of items placed by the shared layout, in drawing order.
    init(_ placements: [OSDLayout.Placement], atlas: GlyphAtlas) {
        typealias PixelRect = OSDLayout.PixelRect
        // Each item's painted rects and their extent, for the cuts below.
        var painted: [[PixelRect]] = []
        var extents: [PixelRect?] = []
        painted.reserveCapacity(placements.count)
        extents.reserveCapacity(placements.count)
        for placement in placements {
            var own: [PixelRect] = []
            var extent: PixelRect?
            placement.forEachPaintedRect { r in
                own.append(r)
                extent = extent.map { PixelRect(x0: min($0.x0, r.x0), y0: min($0.y0, r.y0), x1: max($0.x1, r.x1), y1: max($0.y1, r.y1)) } ?? r
            }
            painted.append(own)
            extents.append(extent)
        }
        /// The parts of `rect` that no item after `index` paints.
        func visibleParts(of rect: PixelRect, item index: Int) -> [PixelRect] {
            var parts = [rect]
            for later in (index + 1)..<placements.count {
                guard let extent = extents[later], extent.intersects(rect) else { continue }
                for cutter in painted[later] where cutter.intersects(rect) {
                    parts = parts.flatMap { $0.subtracting(cutter) }
                    if parts.isEmpty { return [] }
                }
            }
            return parts
        }

        for (index, placement) in placements.enumerated() {
            let colour = placement.colour.packed
            for rect in painted[index] {
                for part in visibleParts(of: rect, item: index) {
                    rects.append(FillRect(x0: Int32(part.x0), y0: Int32(part.y0), x1: Int32(part.x1), y1: Int32(part.y1), colour: colour))
                    largestRectArea = max(largestRectArea, part.area)
                }
            }

            // The label's glyphs; their union bounds the pixels the run's threads visit.
            let first = glyphs.count
            var pen = placement.textX
            // Cairo puts the glyphs on whole pixels as well: the ascent is whole (up to noise).
            let baseline = Int(placement.textBaseline.rounded())
            var ink: PixelRect?
            for character in placement.text.unicodeScalars {
                let glyph = atlas.glyph(for: character)
                if glyph.hasInk {
                    let quad = PixelRect(x0: pen + glyph.bearingX, y0: baseline + glyph.bearingY,
                                         x1: pen + glyph.bearingX + glyph.width, y1: baseline + glyph.bearingY + glyph.height)
                    if quad.intersects(placement.textClip) {
                        glyphs.append(GlyphQuad(x: Int32(quad.x0), y: Int32(quad.y0), atlasX: Int32(glyph.atlasX), atlasY: Int32(glyph.atlasY),
                                                width: Int32(glyph.width), height: Int32(glyph.height)))
                        ink = ink.map { PixelRect(x0: min($0.x0, quad.x0), y0: min($0.y0, quad.y0), x1: max($0.x1, quad.x1), y1: max($0.y1, quad.y1)) } ?? quad
                    }
                }
                pen += glyph.advance
            }
            guard let ink else { continue }
            let textColour = placement.textColour.packed
            for part in visibleParts(of: placement.textClip.intersection(ink), item: index) {
                runs.append(TextRun(firstGlyph: Int32(first), glyphCount: Int32(glyphs.count - first),
                                    clipX0: Int32(part.x0), clipY0: Int32(part.y0), clipX1: Int32(part.x1), clipY1: Int32(part.y1),
                                    colour: textColour))
                largestRunArea = max(largestRunArea, part.area)
            }
        }
    }
}

extension OSDLayout.PixelRect {
    /// This rect less `other`: up to four disjoint rects (bands above and below, sides between).
    func subtracting(_ other: Self) -> [Self] {
        let cut = intersection(other)
        guard !cut.isEmpty else { return isEmpty ? [] : [self] }
        var parts: [Self] = []
        if cut.y0 > y0 { parts.append(Self(x0: x0, y0: y0, x1: x1, y1: cut.y0)) }
        if cut.y1 < y1 { parts.append(Self(x0: x0, y0: cut.y1, x1: x1, y1: y1)) }
        if cut.x0 > x0 { parts.append(Self(x0: x0, y0: cut.y0, x1: cut.x0, y1: cut.y1)) }
        if cut.x1 < x1 { parts.append(Self(x0: cut.x1, y0: cut.y0, x1: x1, y1: cut.y1)) }
        return parts
    }
}
