import Testing
@testable import Tributary

@Suite struct OSDRendererTests {
    /// Grey with a non-opaque alpha, so the alpha rule (drawn pixels opaque, the rest untouched) shows.
    static let grey = RGBA(r: 128, g: 128, b: 128, a: 200)

    func greyImage(width: Int = 320, height: Int = 240) -> ImageBuffer {
        let image = ImageBuffer.allocateHost(width: width, height: height)
        image.withMutableHostView { $0.fill(Self.grey) }
        return image
    }

    /// Pixels of a region, counted by a predicate.
    func count(_ view: ImageView, x: Range<Int>, y: Range<Int>, where predicate: (RGBA) -> Bool) -> Int {
        var n = 0
        for yy in y { for xx in x where predicate(view.pixel(x: xx, y: yy)) { n += 1 } }
        return n
    }

    @Test func boxBorderHasTheExactColourInTheRightChannels() {
        let image = greyImage()
        let colour = RGBA(r: 10, g: 120, b: 230)  // three different channels: an R/B swap shows
        let renderer = OSDRenderer(borderWidth: 3)
        image.withMutableHostView { renderer.drawBox(Rect(left: 100, top: 100, width: 80, height: 60), label: "car 0.50", colour: colour, on: $0) }
        image.withHostView { view in
            // Border: the rect's outermost 3 pixels on each side, opaque.
            for (x, y) in [(100, 130), (101, 130), (102, 130), (179, 130), (177, 130), (140, 100), (140, 102), (140, 159), (140, 157),
                           (100, 100), (179, 159)] {
                #expect(view.pixel(x: x, y: y) == colour, "border at \(x),\(y)")
            }
            // Inside the box and just outside it: untouched, alpha included.
            for (x, y) in [(103, 130), (140, 130), (176, 156), (140, 103), (99, 130), (180, 130), (140, 160), (10, 10), (300, 230), (319, 239)] {
                #expect(view.pixel(x: x, y: y) == Self.grey, "untouched at \(x),\(y)")
            }
        }
    }

    @Test func labelSitsAboveTheBoxWithBackgroundAndText() {
        let image = greyImage()
        let colour = OSDLayout.colour(forClass: 0)
        let renderer = OSDRenderer()
        image.withMutableHostView { renderer.drawBox(Rect(left: 100, top: 100, width: 80, height: 60), label: "person 0.87", colour: colour, on: $0) }
        image.withHostView { view in
            // The band just above the box, where the label goes.
            let xs = 100..<140, ys = 88..<100
            let background = count(view, x: xs, y: ys) { $0 == colour }
            let text = count(view, x: xs, y: ys) { $0 != colour && $0 != Self.grey }
            let grey = count(view, x: xs, y: ys) { $0 == Self.grey }
            #expect(background > 100, "label background")
            #expect(text > 20, "text pixels")
            #expect(grey == 0, "the label covers the band")
            // Everything the label paints is opaque.
            #expect(count(view, x: xs, y: ys) { $0.a != 255 } == 0)
            // Left of the label and far above it: untouched.
            #expect(view.pixel(x: 98, y: 95) == Self.grey)
            #expect(view.pixel(x: 120, y: 60) == Self.grey)
            // The label's text is light on a dark-ish red background.
            #expect(count(view, x: xs, y: ys) { $0.r > 200 && $0.g > 200 && $0.b > 200 } > 5)
        }
    }

    @Test func labelGoesInsideTheBoxWithoutRoomAbove() {
        let image = greyImage()
        let colour = RGBA(r: 255, g: 0, b: 0)
        image.withMutableHostView { OSDRenderer().drawBox(Rect(left: 50, top: 0, width: 100, height: 80), label: "person 0.90", colour: colour, on: $0) }
        image.withHostView { view in
            // The interior near the top holds the label; lower down the interior is untouched.
            #expect(count(view, x: 53..<90, y: 3..<14) { $0 == colour } > 100)
            #expect(count(view, x: 53..<90, y: 3..<14) { $0 == Self.grey } == 0)
            #expect(view.pixel(x: 100, y: 60) == Self.grey)
            #expect(view.pixel(x: 50, y: 40) == colour)
        }
    }

    @Test func boxesPartlyOutsideTheImageAreClipped() {
        let image = greyImage()
        let colour = RGBA(r: 0, g: 200, b: 0)
        image.withMutableHostView { OSDRenderer().drawBox(Rect(left: 280, top: 200, width: 100, height: 100), label: "dog 0.40", colour: colour, on: $0) }
        image.withHostView { view in
            #expect(view.pixel(x: 280, y: 220) == colour)
            #expect(view.pixel(x: 300, y: 200) == colour)
            #expect(view.pixel(x: 300, y: 230) == Self.grey)
        }
    }

    @Test func anUnalignedPitchDrawsTheSameThroughATemporarySurface() {
        let width = 101, height = 90, pitch = width * 4 + 2  // not a multiple of 4: Cairo can't draw in place
        let memory = UnsafeMutableRawPointer.allocate(byteCount: pitch * height, alignment: 64)
        defer { memory.deallocate() }
        let odd = MutableImageView(base: memory, width: width, height: height, bytesPerRow: pitch)
        odd.fill(Self.grey)
        let reference = greyImage(width: width, height: height)
        let rect = Rect(left: 20, top: 40, width: 50, height: 30)
        let colour = RGBA(r: 200, g: 30, b: 90)
        OSDRenderer().drawBox(rect, label: "cat 0.75", colour: colour, on: odd)
        reference.withMutableHostView { OSDRenderer().drawBox(rect, label: "cat 0.75", colour: colour, on: $0) }
        reference.withHostView { view in
            var differences = 0
            for y in 0..<height { for x in 0..<width where odd.pixel(x: x, y: y) != view.pixel(x: x, y: y) { differences += 1 } }
            #expect(differences == 0)
            #expect(view.pixel(x: 20, y: 50) == colour)
            #expect(odd.pixel(x: 20, y: 50) == colour)
            #expect(odd.pixel(x: 40, y: 55) == Self.grey)
        }
    }

    @Test func objectsAreScaledIntoTheirSourcesTile() {
        let layout = TileLayout(sourceCount: 2, width: 640, height: 240)  // 1 row × 2 columns of 320×240
        let output = greyImage(width: 640, height: 240)
        let person = ObjectMeta(classID: 0, label: "person", confidence: 0.9, rect: Rect(left: 320, top: 240, width: 100, height: 100), detectorID: 1)
        // Source 0's car reaches past its tile: the part beyond x = 320 must not be drawn.
        let car = ObjectMeta(classID: 2, label: "car", confidence: 0.6, rect: Rect(left: 600, top: 100, width: 100, height: 100), detectorID: 1)
        let meta = BatchMeta(batchID: 0, frames: [
            FrameMeta(sourceID: 0, batchID: 0, frameNumber: 0, pts: nil, objects: [car]),
            FrameMeta(sourceID: 1, batchID: 0, frameNumber: 0, pts: nil, objects: [person]),
        ])
        output.withMutableHostView { OSDRenderer().drawObjects(of: meta, layout: layout, muxerWidth: 640, muxerHeight: 480, on: $0) }
        let red = OSDLayout.colour(forClass: 0), blue = OSDLayout.colour(forClass: 2)
        output.withHostView { view in
            // Muxer (320, 240, 100, 100) → tile 1 at x 320: (480, 120, 50, 50).
            #expect(view.pixel(x: 480, y: 145) == red, "left border")
            #expect(view.pixel(x: 529, y: 145) == red, "right border")
            #expect(view.pixel(x: 505, y: 169) == red, "bottom border")
            #expect(view.pixel(x: 505, y: 120) == red, "top border")
            #expect(view.pixel(x: 478, y: 145) == Self.grey)
            #expect(view.pixel(x: 531, y: 145) == Self.grey)
            #expect(view.pixel(x: 505, y: 145) == Self.grey, "interior")
            #expect(view.pixel(x: 505, y: 172) == Self.grey)
            // Muxer (600, 100, 100, 100) → (300, 50, 50, 50) in tile 0, cut at x = 320.
            #expect(view.pixel(x: 300, y: 75) == blue)
            #expect(view.pixel(x: 319, y: 99) == blue)
            #expect(view.pixel(x: 320, y: 99) == Self.grey, "nothing past the tile")
            #expect(view.pixel(x: 340, y: 75) == Self.grey)
        }
    }

    @Test func labelTextHasTwoDecimals() {
        func object(_ label: String, _ confidence: Float) -> ObjectMeta {
            ObjectMeta(classID: 0, label: label, confidence: confidence, rect: Rect(left: 0, top: 0, width: 1, height: 1), detectorID: 1)
        }
        #expect(OSDLayout.labelText(for: object("person", 0.8712)) == "person 0.87")
        #expect(OSDLayout.labelText(for: object("car", 0.05)) == "car 0.05")
        #expect(OSDLayout.labelText(for: object("car", 0.999)) == "car 1.00")
        #expect(OSDLayout.labelText(for: object("bus", 0.5)) == "bus 0.50")
        var tracked = object("person", 0.8712)
        tracked.trackerID = 12
        #expect(OSDLayout.labelText(for: tracked) == "person 12 0.87", "the tracker's id after the label")
    }

    @Test func paletteColoursDifferForTheFirstTenClasses() {
        let colours = (0..<10).map { OSDLayout.colour(forClass: $0) }
        #expect(Set(colours.map(\.packed)).count == 10)
        #expect(colours.allSatisfy { $0.a == 255 })
        #expect(OSDLayout.colour(forClass: 0) != OSDLayout.colour(forClass: 2), "person and car")
        #expect(OSDLayout.colour(forClass: -1) == OSDLayout.colour(forClass: -1), "negative ids do not trap")
    }
}

/// Display meta (NvDsDisplayMeta): lines as the pixels within half their width of the segment,
/// texts as labels at their origin, stacked when they share one.
@Suite struct DisplayMetaDrawingTests {
    typealias PixelRect = OSDLayout.PixelRect

    /// The pixels of `spans`, as a set of (x, y).
    func pixels(_ spans: [PixelRect]) -> Set<[Int]> {
        var set = Set<[Int]>()
        for s in spans { for y in s.y0..<s.y1 { for x in s.x0..<s.x1 { set.insert([x, y]) } } }
        return set
    }

    /// Every pixel whose centre is within `width / 2` of the segment (brute force).
    func expected(_ a: (x: Double, y: Double), _ b: (x: Double, y: Double), width: Double, bounds: PixelRect) -> Set<[Int]> {
        var set = Set<[Int]>()
        let (dx, dy) = (b.x - a.x, b.y - a.y)
        let length2 = dx * dx + dy * dy
        for y in bounds.y0..<bounds.y1 {
            for x in bounds.x0..<bounds.x1 {
                let (px, py) = (Double(x) + 0.5, Double(y) + 0.5)
                let t = length2 > 0 ? min(1, max(0, ((px - a.x) * dx + (py - a.y) * dy) / length2)) : 0
                let (cx, cy) = (a.x + t * dx - px, a.y + t * dy - py)
                // A hair inside the edge: ties on the boundary may fall either way.
                if (cx * cx + cy * cy).squareRoot() <= width / 2 - 1e-9 { set.insert([x, y]) }
            }
        }
        return set
    }

    @Test func aLineIsThePixelsWithinHalfItsWidthOfTheSegment() {
        var random = SeededGenerator(seed: 7)
        let bounds = PixelRect(x0: 0, y0: 0, x1: 120, y1: 90)
        for _ in 0..<200 {
            let a = (x: Double(random.next(1600)) / 10 - 20, y: Double(random.next(1300)) / 10 - 20)
            let b = random.next(10) == 0 ? a : (x: Double(random.next(1600)) / 10 - 20, y: Double(random.next(1300)) / 10 - 20)
            let width = Double(1 + random.next(120)) / 10
            let drawn = pixels(OSDLayout.lineSpans(from: a, to: b, width: width, bounds: bounds))
            let inside = expected(a, b, width: width, bounds: bounds)
            // Exactly the brute force's pixels, up to those on the boundary itself.
            #expect(inside.isSubset(of: drawn), "\(a) → \(b), width \(width): \(inside.subtracting(drawn).count) missing")
            let outer = expected(a, b, width: width + 2e-9 * 2, bounds: bounds)
            #expect(drawn.isSubset(of: outer), "\(a) → \(b), width \(width): \(drawn.subtracting(outer).count) extra")
            #expect(drawn.allSatisfy { bounds.contains(x: $0[0], y: $0[1]) })
        }
        // A vertical line through pixel centres, 1 wide: one column, merged into one rect.
        #expect(OSDLayout.lineSpans(from: (5.5, 2.2), to: (5.5, 9.8), width: 1, bounds: bounds) == [PixelRect(x0: 5, y0: 2, x1: 6, y1: 10)])
        #expect(OSDLayout.lineSpans(from: (500, 500), to: (600, 600), width: 3, bounds: bounds).isEmpty, "outside the bounds")
        // A probe's display meta can hold anything: far away or not a number, nothing traps.
        let far = OSDLayout.lineSpans(from: (0, 5.5), to: (1e30, 5.5), width: 1, bounds: bounds)
        #expect(far == [PixelRect(x0: bounds.x0, y0: 5, x1: bounds.x1, y1: 6)], "a line running far out is drawn up to the bounds: \(far)")
        #expect(OSDLayout.lineSpans(from: (.nan, 5), to: (10, 5), width: 1, bounds: bounds).isEmpty)
        #expect(OSDLayout.lineSpans(from: (0, 0), to: (10, 10), width: .infinity, bounds: bounds).isEmpty)
        #expect(OSDLayout.pixel(.nan) == 0 && OSDLayout.pixel(1e300) == 1_000_000)
    }

    @Test func linesAndStackedTextsLandInTheirTile() {
        let image = ImageBuffer.allocateHost(width: 640, height: 240)
        let layout = TileLayout(sourceCount: 2, width: 640, height: 240)  // 1 × 2 tiles of 320 × 240
        var frame = FrameMeta(sourceID: 1, batchID: 0, frameNumber: 0, pts: nil, objects: [])
        let yellow = RGBA(r: 255, g: 200, b: 0), grey = RGBA(r: 32, g: 32, b: 32)
        frame.display = DisplayMeta(lines: [.init(from: Point(x: 0, y: 360), to: Point(x: 1280, y: 360), width: 4, colour: yellow)],
                                    texts: [.init("ROI a: 1", at: Point(x: 16, y: 16), colour: grey), .init("Line b: 2", at: Point(x: 16, y: 16), colour: grey)])
        image.withMutableHostView {
            OSDRenderer().drawObjects(of: BatchMeta(batchID: 0, frames: [frame]), layout: layout, muxerWidth: 1280, muxerHeight: 720, on: $0)
        }
        image.withHostView { view in
            // The line across the second tile only: 4 muxer pixels at the tile's scale (¼ wide, ⅓
            // high, 1.17 on average) are rows 119 and 120.
            #expect(view.pixel(x: 480, y: 120) == yellow)
            #expect(view.pixel(x: 330, y: 120) == yellow)
            #expect(view.pixel(x: 200, y: 120).a == 0, "nothing in the first tile")
            #expect(view.pixel(x: 480, y: 125).a == 0)
            // Two text labels, one under the other, at (4, 5) in the tile.
            #expect(view.pixel(x: 320 + 5, y: 6).a == 255)
            var labelRows = 0
            for y in 0..<60 where view.pixel(x: 320 + 5, y: y).a == 255 { labelRows += 1 }
            let height = OSDLayout.Sizes(renderer: OSDRenderer(), ascent: GlyphAtlas(renderer: OSDRenderer()).ascent,
                                         descent: GlyphAtlas(renderer: OSDRenderer()).descent).labelHeight
            #expect(labelRows == 2 * height, "two stacked labels of \(height) rows")
        }
    }
}
