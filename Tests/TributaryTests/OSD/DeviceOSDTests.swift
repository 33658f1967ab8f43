import Testing
@testable import Tributary

/// The GPU OSD's host side: the glyph atlas and the draw list it uploads, checked against the CPU
/// OSD (Cairo). The kernels themselves compile in KernelCompileTests; `blit` below is their
/// arithmetic on the host.
@Suite struct DeviceOSDTests {
    static let renderer = OSDRenderer()
    static let atlas = GlyphAtlas(renderer: renderer)

    // MARK: Atlas

    @Test func atlasHasAGlyphForEveryPrintableCharacter() {
        let atlas = Self.atlas
        #expect(atlas.glyphs.count == 95)
        #expect(atlas.alpha.count == atlas.width * atlas.height)
        for code in UInt32(32)...126 {
            let character = Unicode.Scalar(code)!
            let glyph = atlas.glyph(for: character)
            #expect(glyph.advance > 0, "advance of \(character)")
            #expect(glyph.atlasX >= 0 && glyph.atlasY >= 0 && glyph.atlasX + glyph.width <= atlas.width && glyph.atlasY + glyph.height <= atlas.height)
            if code != 32 { #expect(glyph.hasInk && coverage(of: glyph) > 0, "ink of \(character)") }
        }
        let a = atlas.glyph(for: "A")
        #expect(coverage(of: a) > 0)
        #expect(a.bearingY < 0 && a.bearingY + a.height <= 1, "A stands on the baseline")
        let space = atlas.glyph(for: " ")
        #expect(!space.hasInk && coverage(of: space) == 0)
        #expect(atlas.glyph(for: "é") == atlas.glyph(for: "?"), "outside ASCII: the replacement glyph")
        // Whole-pixel ascent: the CPU OSD's baseline is on a whole pixel, where the atlas's glyphs go.
        #expect(atlas.ascent > 0 && abs(atlas.ascent - atlas.ascent.rounded()) < 1e-6, "ascent \(atlas.ascent)")
    }

    @Test func atlasTextWidthsAreCairos() {
        let printable = String(String.UnicodeScalarView((UInt32(32)...126).map { Unicode.Scalar($0)! }))
        for text in ["person 0.87", "car 1.00", "traffic light 0.55", "fire hydrant 0.05", "jj", "W", "", " ", printable] {
            #expect(Self.atlas.textWidth(text) == Self.renderer.cairoTextWidth(of: text), "\(text)")
        }
    }

    @Test func drawListElementsAreLaidOutLikeTheKernelsStructs() {
        #expect(MemoryLayout<OSDDrawList.FillRect>.stride == 5 * 4)
        #expect(MemoryLayout<OSDDrawList.FillRect>.offset(of: \.colour) == 4 * 4)
        #expect(MemoryLayout<OSDDrawList.GlyphQuad>.stride == 6 * 4)
        #expect(MemoryLayout<OSDDrawList.GlyphQuad>.offset(of: \.height) == 5 * 4)
        #expect(MemoryLayout<OSDDrawList.TextRun>.stride == 7 * 4)
        #expect(MemoryLayout<OSDDrawList.TextRun>.offset(of: \.clipX0) == 2 * 4)
        #expect(MemoryLayout<OSDDrawList.TextRun>.offset(of: \.colour) == 6 * 4)
    }

    // MARK: Draw list against the CPU OSD

    static let width = 640, height = 480, muxerWidth = 1280, muxerHeight = 720
    static let layout = TileLayout(sourceCount: 4, width: width, height: height)  // 2 × 2 tiles of 320 × 240

    /// Overlapping objects (a later label over an earlier box and label), a box cut by its tile,
    /// one with no room above for its label, one too small for an interior, a label pushed left
    /// by its tile's edge, light (black text) and dark (white text) colours; display lines
    /// (diagonal, across a box, out of the tile, a dot) and display texts (two stacked).
    static let meta: BatchMeta = {
        func object(_ classID: Int, _ label: String, _ confidence: Float, _ left: Float, _ top: Float, _ width: Float, _ height: Float) -> ObjectMeta {
            ObjectMeta(classID: classID, label: label, confidence: confidence, rect: Rect(left: left, top: top, width: width, height: height), detectorID: 1)
        }
        return BatchMeta(batchID: 0, frames: [
            FrameMeta(sourceID: 0, batchID: 0, frameNumber: 0, pts: nil, objects: [
                object(0, "person", 0.91, 200, 200, 300, 400),
                object(2, "car", 0.66, 260, 260, 400, 200),
                object(3, "motorcycle", 0.43, 230, 310, 180, 150),
                object(1, "bicycle", 0.5, 1100, 300, 400, 200),
            ]),
            FrameMeta(sourceID: 1, batchID: 0, frameNumber: 0, pts: nil, objects: [
                object(5, "traffic light", 0.87, 100, 0, 200, 300),
                object(15, "dog", 0.25, 600, 500, 4, 6),
                object(9, "fire hydrant", 0.12, 1150, 400, 120, 100),
            ]),
            FrameMeta(sourceID: 3, batchID: 0, frameNumber: 0, pts: nil, objects: [
                object(7, "bus", 0.99, 0, 0, 1280, 720),
                object(0, "person", 0.30, 640, 360, 100, 200),
            ]),
        ])
    }()

    /// The CPU OSD over a transparent black image (so its painted pixels show as A = 255).
    func cpuImage() -> ImageBuffer {
        let image = ImageBuffer.allocateHost(width: Self.width, height: Self.height)
        image.withMutableHostView {
            Self.renderer.drawObjects(of: Self.meta, layout: Self.layout, muxerWidth: Self.muxerWidth, muxerHeight: Self.muxerHeight, on: $0)
        }
        return image
    }

    func drawList() -> OSDDrawList {
        OSDDrawList(Self.meta, layout: Self.layout, muxerWidth: Self.muxerWidth, muxerHeight: Self.muxerHeight,
                    imageWidth: Self.width, imageHeight: Self.height, renderer: Self.renderer, atlas: Self.atlas)
    }

    /// The label backgrounds as the shared layout places them, inside their tiles.
    func labelRects() -> [OSDLayout.PixelRect] {
        let layout = OSDLayout.Sizes(renderer: Self.renderer, ascent: Self.atlas.ascent, descent: Self.atlas.descent)
        return OSDLayout.items(of: Self.meta, layout: Self.layout, muxerWidth: Self.muxerWidth, muxerHeight: Self.muxerHeight,
                                 imageWidth: Self.width, imageHeight: Self.height)
            .map { layout.place($0) { Self.atlas.textWidth($0) }.textClip }
    }

    @Test func theDrawListPaintsWhatTheCPUOSDPaints() {
        let list = drawList()
        #expect(list.rects.count >= 9)
        #expect(list.runs.count >= 9)
        let text = textCoverage(list)
        var painted = [Bool](repeating: false, count: Self.width * Self.height)
        var mismatches = 0, checked = 0
        cpuImage().withHostView { cpu in
            for rect in list.rects {
                let colour = unpack(rect.colour)
                for y in Int(rect.y0)..<Int(rect.y1) {
                    for x in Int(rect.x0)..<Int(rect.x1) {
                        painted[y * Self.width + x] = true
                        // Borders exactly; label backgrounds exactly where no glyph covers them.
                        guard text[y * Self.width + x] == 0 else { continue }
                        checked += 1
                        if cpu.pixel(x: x, y: y) != colour { mismatches += 1 }
                    }
                }
            }
            // The rects cover exactly the pixels the CPU OSD made opaque: no more, no fewer.
            var extra = 0, missing = 0
            for y in 0..<Self.height {
                for x in 0..<Self.width {
                    let opaque = cpu.pixel(x: x, y: y).a == 255
                    if opaque && !painted[y * Self.width + x] { missing += 1 }
                    if !opaque && painted[y * Self.width + x] { extra += 1 }
                }
            }
            #expect(missing == 0)
            #expect(extra == 0)
        }
        #expect(checked > 10_000)
        #expect(mismatches == 0)
    }

    @Test func theKernelsArithmeticOverTheDrawListGivesTheCPUOSDsImage() {
        let list = drawList()
        let text = textCoverage(list)
        let labels = labelRects()
        let gpu = ImageBuffer.allocateHost(width: Self.width, height: Self.height)
        gpu.withMutableHostView { blit(list, atlas: Self.atlas, on: $0) }
        var textPixels = 0, differentText = 0, differentElsewhere = 0, differentOutsideLabels = 0
        cpuImage().withHostView { cpu in
            gpu.withHostView { gpu in
                for y in 0..<Self.height {
                    for x in 0..<Self.width {
                        let isText = text[y * Self.width + x] > 0
                        if isText { textPixels += 1 }
                        guard cpu.pixel(x: x, y: y) != gpu.pixel(x: x, y: y) else { continue }
                        if isText { differentText += 1 } else { differentElsewhere += 1 }
                        if !labels.contains(where: { $0.contains(x: x, y: y) }) { differentOutsideLabels += 1 }
                    }
                }
            }
        }
        #expect(textPixels > 500)
        #expect(differentElsewhere == 0)
        #expect(differentOutsideLabels == 0)
        // Same glyph masks at the same whole-pixel positions, blended with pixman's arithmetic:
        // the text comes out as Cairo's too.
        #expect(differentText == 0)
    }

    /// Random batches (overlaps, tile edges, tiny and huge boxes) at several font sizes and border
    /// widths: the kernels' arithmetic over the draw list gives the CPU OSD's image exactly.
    /// Sizes with rounding noise in Cairo's hinted metrics (10, 20) are among them.
    @Test(arguments: [9.0, 10.0, 14.0, 17.0, 20.0, 24.0])
    func randomBatchesComeOutAsOnTheCPU(fontSize: Double) {
        var random = SeededGenerator(seed: UInt64(fontSize * 1000))
        let renderer = OSDRenderer(borderWidth: Double(1 + random.next(4)), fontSize: fontSize)
        let atlas = GlyphAtlas(renderer: renderer)
        let words = ["person", "car", "traffic light", "jj", "W", "fire hydrant", "a", "{}|~`"]
        for _ in 0..<4 {
            let width = 200 + random.next(400), height = 150 + random.next(300), sources = 1 + random.next(6)
            let layout = TileLayout(sourceCount: sources, width: width, height: height)
            let frames = (0..<sources).map { source in
                FrameMeta(sourceID: source, batchID: 0, frameNumber: 0, pts: nil, objects: (0..<random.next(8)).map { _ in
                    ObjectMeta(classID: random.next(20) - 2, label: words[random.next(words.count)], confidence: Float(random.next(1000)) / 1000,
                               rect: Rect(left: Float(random.next(1500) - 100), top: Float(random.next(900) - 100),
                                          width: Float(random.next(600)), height: Float(random.next(400))), detectorID: 1)
                })
            }
            let meta = BatchMeta(batchID: 0, frames: frames)
            let cpu = ImageBuffer.allocateHost(width: width, height: height)
            cpu.withMutableHostView { view in
                for y in 0..<height { for x in 0..<width { view.setPixel(x: x, y: y, RGBA(r: UInt8(x & 255), g: UInt8(y & 255), b: 77, a: 0)) } }
            }
            let gpu = cpu.hostCopy()
            cpu.withMutableHostView { renderer.drawObjects(of: meta, layout: layout, muxerWidth: 1280, muxerHeight: 720, on: $0) }
            let list = OSDDrawList(meta, layout: layout, muxerWidth: 1280, muxerHeight: 720, imageWidth: width, imageHeight: height,
                                   renderer: renderer, atlas: atlas)
            gpu.withMutableHostView { blit(list, atlas: atlas, on: $0) }
            var differences = 0
            cpu.withHostView { cpu in
                gpu.withHostView { gpu in
                    for y in 0..<height { for x in 0..<width where cpu.pixel(x: x, y: y) != gpu.pixel(x: x, y: y) { differences += 1 } }
                }
            }
            #expect(differences == 0, "\(frames.map(\.objects.count).reduce(0, +)) objects on \(width) × \(height)")
        }
    }

    @Test func nothingToDrawGivesAnEmptyList() {
        let empty = BatchMeta(batchID: 0, frames: [FrameMeta(sourceID: 0, batchID: 0, frameNumber: 0, pts: nil, objects: [])])
        let list = OSDDrawList(empty, layout: Self.layout, muxerWidth: Self.muxerWidth, muxerHeight: Self.muxerHeight,
                               imageWidth: Self.width, imageHeight: Self.height, renderer: Self.renderer, atlas: Self.atlas)
        #expect(list.rects.isEmpty && list.glyphs.isEmpty && list.runs.isEmpty)
    }

    @Test func subtractingLeavesDisjointPartsOutsideTheCut() {
        typealias PixelRect = OSDLayout.PixelRect
        let rect = PixelRect(x0: 0, y0: 0, x1: 10, y1: 10)
        let parts = rect.subtracting(PixelRect(x0: 3, y0: 4, x1: 6, y1: 20))
        #expect(parts.map(\.area).reduce(0, +) == 100 - 3 * 6)
        for (i, a) in parts.enumerated() {
            #expect(!a.intersects(PixelRect(x0: 3, y0: 4, x1: 6, y1: 20)))
            for b in parts[(i + 1)...] { #expect(!a.intersects(b)) }
        }
        #expect(rect.subtracting(PixelRect(x0: -5, y0: -5, x1: 50, y1: 50)).isEmpty)
        #expect(rect.subtracting(PixelRect(x0: 20, y0: 0, x1: 30, y1: 10)) == [rect])
    }

    // MARK: Helpers

    func coverage(of glyph: GlyphAtlas.Glyph) -> Int {
        var sum = 0
        for y in 0..<glyph.height { for x in 0..<glyph.width { sum += Int(Self.atlas.alpha(x: glyph.atlasX + x, y: glyph.atlasY + y)) } }
        return sum
    }

    func unpack(_ packed: UInt32) -> RGBA {
        RGBA(r: UInt8(packed & 255), g: UInt8((packed >> 8) & 255), b: UInt8((packed >> 16) & 255), a: UInt8(packed >> 24))
    }

    /// Each pixel's text coverage as `osd_draw_glyphs` sums it (0 where no run draws), row-major.
    func textCoverage(_ list: OSDDrawList, atlas: GlyphAtlas = atlas, width: Int = width, height: Int = height) -> [Int] {
        var coverage = [Int](repeating: 0, count: width * height)
        for run in list.runs {
            for y in Int(run.clipY0)..<Int(run.clipY1) {
                for x in Int(run.clipX0)..<Int(run.clipX1) {
                    coverage[y * width + x] = min(255, glyphCoverage(run, list, atlas: atlas, x: x, y: y))
                }
            }
        }
        return coverage
    }

    func glyphCoverage(_ run: OSDDrawList.TextRun, _ list: OSDDrawList, atlas: GlyphAtlas, x: Int, y: Int) -> Int {
        var sum = 0
        for glyph in list.glyphs[Int(run.firstGlyph)..<Int(run.firstGlyph + run.glyphCount)] {
            let gx = x - Int(glyph.x), gy = y - Int(glyph.y)
            if gx >= 0 && gy >= 0 && gx < Int(glyph.width) && gy < Int(glyph.height) {
                sum += Int(atlas.alpha(x: Int(glyph.atlasX) + gx, y: Int(glyph.atlasY) + gy))
            }
        }
        return sum
    }

    /// `osd_fill_rects` then `osd_draw_glyphs` on the host: the kernels' arithmetic, pixel by pixel.
    func blit(_ list: OSDDrawList, atlas: GlyphAtlas, on image: MutableImageView) {
        for rect in list.rects {
            var colour = unpack(rect.colour)
            colour.a = 255
            for y in max(Int(rect.y0), 0)..<min(Int(rect.y1), image.height) {
                for x in max(Int(rect.x0), 0)..<min(Int(rect.x1), image.width) { image.setPixel(x: x, y: y, colour) }
            }
        }
        func mul(_ a: Int, _ b: Int) -> Int {
            let t = a * b + 0x80
            return ((t >> 8) + t) >> 8
        }
        for run in list.runs {
            let colour = unpack(run.colour)
            for y in max(Int(run.clipY0), 0)..<min(Int(run.clipY1), image.height) {
                for x in max(Int(run.clipX0), 0)..<min(Int(run.clipX1), image.width) {
                    let m = min(255, glyphCoverage(run, list, atlas: atlas, x: x, y: y))
                    guard m > 0 else { continue }
                    let d = image.pixel(x: x, y: y)
                    func blend(_ text: UInt8, _ below: UInt8) -> UInt8 { UInt8(min(255, mul(Int(text), m) + mul(Int(below), 255 - m))) }
                    image.setPixel(x: x, y: y, RGBA(r: blend(colour.r, d.r), g: blend(colour.g, d.g), b: blend(colour.b, d.b), a: d.a))
                }
            }
        }
    }
}
