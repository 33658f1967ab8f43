/// Which pixels the OSD paints, in what colour: one layout that both the CPU renderer (Cairo,
/// `OSDRenderer`) and the GPU one (`DeviceOSD`) follow, so they draw the same boxes and labels.
public enum OSDLayout {
    /// The colour of a class: a fixed, distinct palette indexed by class id (person, car... differ).
    public static func colour(forClass classID: Int) -> RGBA {
        let count = palette.count
        return palette[((classID % count) + count) % count]
    }

    /// The OSD's label text: "<label> <confidence with 2 decimals>", e.g. "person 0.87", with the
    /// tracker's id after the label when there is one: "person 12 0.87".
    public static func labelText(for object: ObjectMeta) -> String {
        // Integer formatting: no Foundation, no locale.
        let hundredths = Int((Double(max(0, object.confidence)) * 100).rounded())
        let fraction = hundredths % 100
        let id = object.trackerID.map { " \($0)" } ?? ""
        return "\(object.label)\(id) \(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }

    /// Saturated, well separated colours; COCO ids 0 (person), 1 (bicycle), 2 (car), 3 (motorcycle)…
    private static let palette: [RGBA] = [
        RGBA(r: 255, g: 0, b: 0),      // 0 red
        RGBA(r: 0, g: 200, b: 0),      // 1 green
        RGBA(r: 0, g: 96, b: 255),     // 2 blue
        RGBA(r: 255, g: 200, b: 0),    // 3 yellow
        RGBA(r: 255, g: 0, b: 255),    // 4 magenta
        RGBA(r: 0, g: 220, b: 220),    // 5 cyan
        RGBA(r: 255, g: 128, b: 0),    // 6 orange
        RGBA(r: 128, g: 0, b: 255),    // 7 purple
        RGBA(r: 128, g: 255, b: 0),    // 8 lime
        RGBA(r: 255, g: 96, b: 160),   // 9 pink
        RGBA(r: 0, g: 128, b: 128),    // 10 teal
        RGBA(r: 160, g: 96, b: 0),     // 11 brown
        RGBA(r: 0, g: 0, b: 160),      // 12 navy
        RGBA(r: 160, g: 0, b: 0),      // 13 maroon
        RGBA(r: 128, g: 128, b: 0),    // 14 olive
        RGBA(r: 255, g: 255, b: 255),  // 15 white
    ]

    /// Integer pixel rectangle, half-open: [x0, x1) × [y0, y1).
    struct PixelRect: Equatable, Sendable {
        var x0: Int, y0: Int, x1: Int, y1: Int
        var isEmpty: Bool { x1 <= x0 || y1 <= y0 }
        var area: Int { isEmpty ? 0 : (x1 - x0) * (y1 - y0) }
        func intersection(_ o: PixelRect) -> PixelRect {
            PixelRect(x0: max(x0, o.x0), y0: max(y0, o.y0), x1: min(x1, o.x1), y1: min(y1, o.y1))
        }
        func intersects(_ o: PixelRect) -> Bool { !intersection(o).isEmpty }
        func contains(x: Int, y: Int) -> Bool { x >= x0 && x < x1 && y >= y0 && y < y1 }
    }

    /// One thing to draw, in output pixels: an object's labelled box, or a display line (its
    /// `spans`, no box, no label) or text (a label at `textOrigin`, no box).
    struct Item {
        var box: PixelRect
        /// Empty: no label.
        var label: String
        var colour: RGBA
        /// Nothing of this item is drawn outside (the image, or its tile).
        var bounds: PixelRect
        /// A display line's pixels, painted in `colour`.
        var spans: [PixelRect] = []
        /// A display text's label: its background's top-left corner, lowered by `stackIndex`
        /// label heights (the texts before it at the same origin).
        var textOrigin: (x: Int, y: Int)?
        var stackIndex = 0

        init(box: PixelRect, label: String, colour: RGBA, bounds: PixelRect) {
            self.box = box; self.label = label; self.colour = colour; self.bounds = bounds
        }

        static let noBox = PixelRect(x0: 0, y0: 0, x1: 0, y1: 0)
    }

    /// The items of `meta`, in drawing order: each object's rect (muxer pixels) scaled into its
    /// source's tile, bounded by that tile and the image; then the frame's display lines and texts.
    static func items(of meta: BatchMeta, layout: TileLayout, muxerWidth: Int, muxerHeight: Int,
                      imageWidth: Int, imageHeight: Int) -> [Item] {
        guard muxerWidth > 0, muxerHeight > 0 else { return [] }
        var items: [Item] = []
        let imageBounds = PixelRect(x0: 0, y0: 0, x1: imageWidth, y1: imageHeight)
        for frame in meta.frames where !frame.objects.isEmpty || !frame.display.isEmpty {
            let tile = layout.tile(of: frame.sourceID)
            let bounds = PixelRect(x0: tile.x, y0: tile.y, x1: tile.x + tile.width, y1: tile.y + tile.height).intersection(imageBounds)
            guard !bounds.isEmpty else { continue }
            let sx = Double(tile.width) / Double(muxerWidth), sy = Double(tile.height) / Double(muxerHeight)
            for object in frame.objects {
                let r = object.rect
                let box = PixelRect(
                    x0: pixel(Double(tile.x) + Double(r.left) * sx), y0: pixel(Double(tile.y) + Double(r.top) * sy),
                    x1: pixel(Double(tile.x) + Double(r.left + r.width) * sx),
                    y1: pixel(Double(tile.y) + Double(r.top + r.height) * sy))
                items.append(Item(box: box, label: labelText(for: object), colour: colour(forClass: object.classID), bounds: bounds))
            }
            appendDisplay(frame.display, tileX: tile.x, tileY: tile.y, sx: sx, sy: sy, bounds: bounds, to: &items)
        }
        return items
    }

    /// A frame's display lines and texts as items, scaled like its objects.
    private static func appendDisplay(_ display: DisplayMeta, tileX: Int, tileY: Int, sx: Double, sy: Double, bounds: PixelRect,
                                      to items: inout [Item]) {
        func x(_ value: Float) -> Double { Double(tileX) + Double(value) * sx }
        func y(_ value: Float) -> Double { Double(tileY) + Double(value) * sy }
        for line in display.lines {
            var item = Item(box: Item.noBox, label: "", colour: line.colour, bounds: bounds)
            item.spans = lineSpans(from: (x(line.from.x), y(line.from.y)), to: (x(line.to.x), y(line.to.y)),
                                   width: max(1, Double(line.width) * (sx + sy) / 2), bounds: bounds)
            if !item.spans.isEmpty { items.append(item) }
        }
        var previous: (origin: Point, stack: Int)?
        for text in display.texts where !text.text.isEmpty {
            var item = Item(box: Item.noBox, label: text.text, colour: text.colour, bounds: bounds)
            item.textOrigin = (pixel(x(text.origin.x)), pixel(y(text.origin.y)))
            item.stackIndex = previous.map { $0.origin == text.origin ? $0.stack + 1 : 0 } ?? 0
            previous = (text.origin, item.stackIndex)
            items.append(item)
        }
    }

    /// The pixels of a segment `width` pixels thick (a capsule: round ends), inside `bounds`:
    /// those whose centre lies within `width / 2` of the segment, one run per row, rows with the
    /// same run merged. Pure arithmetic, so the CPU and GPU OSDs paint the same pixels.
    static func lineSpans(from a: (x: Double, y: Double), to b: (x: Double, y: Double), width: Double, bounds: PixelRect) -> [PixelRect] {
        // A probe's display meta can hold anything: a point that is no number draws nothing.
        guard [a.x, a.y, b.x, b.y, width].allSatisfy(\.isFinite) else { return [] }
        let r = width / 2
        let (dx, dy) = (b.x - a.x, b.y - a.y)
        let length2 = dx * dx + dy * dy, length = length2.squareRoot()
        let (top, bottom) = (max(bounds.y0, pixel(min(a.y, b.y) - r - 1)), min(bounds.y1, pixel(max(a.y, b.y) + r + 1)))
        var spans: [PixelRect] = []
        for row in top..<max(top, bottom) {
            let yc = Double(row) + 0.5
            var lo = Double.infinity, hi = -Double.infinity
            for c in [a, b] where abs(yc - c.y) <= r {
                let h = (r * r - (yc - c.y) * (yc - c.y)).squareRoot()
                lo = min(lo, c.x - h)
                hi = max(hi, c.x + h)
            }
            if length2 > 0 {
                // Within r of the line through a and b, and between the perpendiculars at a and b.
                let across = interval(dx * (yc - a.y), slope: -dy, lower: -r * length, upper: r * length, origin: a.x)
                let along = interval(dy * (yc - a.y), slope: dx, lower: 0, upper: length2, origin: a.x)
                let l = max(across.lo, along.lo), h = min(across.hi, along.hi)
                if l <= h { lo = min(lo, l); hi = max(hi, h) }
            }
            // Clamped to the bounds before Int(_:), which traps on a segment far outside them.
            lo = max(lo, Double(bounds.x0) - 1)
            hi = min(hi, Double(bounds.x1) + 1)
            guard lo <= hi else { continue }
            let x0 = max(bounds.x0, Int((lo - 0.5).rounded(.up))), x1 = min(bounds.x1, Int((hi - 0.5).rounded(.down)) + 1)
            guard x0 < x1 else { continue }
            if let last = spans.last, last.y1 == row, last.x0 == x0, last.x1 == x1 {
                spans[spans.count - 1].y1 = row + 1
            } else {
                spans.append(PixelRect(x0: x0, y0: row, x1: x1, y1: row + 1))
            }
        }
        return spans
    }

    /// The x where lower ≤ c + slope · (x − origin) ≤ upper (all or none when slope is 0).
    private static func interval(_ c: Double, slope: Double, lower: Double, upper: Double, origin: Double) -> (lo: Double, hi: Double) {
        guard slope != 0 else { return c >= lower && c <= upper ? (-.infinity, .infinity) : (.infinity, -.infinity) }
        let p = origin + (lower - c) / slope, q = origin + (upper - c) / slope
        return (min(p, q), max(p, q))
    }

    @inline(__always)
    static func pixel(_ value: Double) -> Int {
        // Clamp before converting: rects from a detector can be anything, Int(_:) traps on huge
        // values and on NaN (which `min`/`max` pass through).
        value.isNaN ? 0 : Int(min(max(value, -1_000_000), 1_000_000).rounded())
    }

    /// The label text's colour on a background: black on light colours, white on dark ones.
    static func textColour(on background: RGBA) -> RGBA {
        let luma = 299 * Int(background.r) + 587 * Int(background.g) + 114 * Int(background.b)
        return luma > 140_000 ? .black : RGBA(r: 255, g: 255, b: 255)
    }

    /// The sizes every item shares, from the renderer's settings and its font's extents.
    struct Sizes {
        let border: Int
        /// Between the label's background edge and its text.
        let padding: Int
        let labelHeight: Int
        /// Font ascent (whole pixels with hinted metrics): the baseline's distance below the text's top.
        let ascent: Double

        init(renderer: OSDRenderer, ascent: Double, descent: Double) {
            border = max(1, Int(renderer.borderWidth.rounded()))
            padding = max(1, Int((renderer.fontSize * 0.15).rounded()))
            labelHeight = Int((ascent + descent).rounded(.up)) + 2 * padding
            self.ascent = ascent
        }

        /// Where `item` goes. `textWidth` measures the label text in whole pixels (Cairo's text
        /// extents on the CPU, the glyph atlas's advances on the GPU).
        func place(_ item: Item, textWidth: (String) -> Int) -> Placement {
            let b = item.bounds
            guard !item.label.isEmpty else {
                return Placement(box: item.box, border: border, label: Item.noBox, bounds: b, colour: item.colour, text: "",
                                 textColour: item.colour, textX: 0, textBaseline: 0, spans: item.spans)
            }
            let labelWidth = textWidth(item.label) + 2 * padding
            var lx = item.textOrigin?.x ?? item.box.x0
            if lx + labelWidth > b.x1 { lx = b.x1 - labelWidth }
            lx = max(lx, b.x0)
            var ly: Int
            if let origin = item.textOrigin {
                ly = origin.y + item.stackIndex * labelHeight
            } else {
                ly = item.box.y0 - labelHeight
                if ly < b.y0 { ly = max(item.box.y0, b.y0) }  // no room above: inside the box, at its top
            }
            if ly + labelHeight > b.y1 { ly = b.y1 - labelHeight }
            ly = max(ly, b.y0)
            return Placement(box: item.box, border: border, label: PixelRect(x0: lx, y0: ly, x1: lx + labelWidth, y1: ly + labelHeight),
                             bounds: b, colour: item.colour, text: item.label, textColour: textColour(on: item.colour),
                             textX: lx + padding, textBaseline: Double(ly + padding) + ascent, spans: item.spans)
        }
    }

    /// Where one item's pixels go.
    struct Placement {
        var box: PixelRect
        var border: Int
        /// The label's background; its text lies inside.
        var label: PixelRect
        /// Nothing is drawn outside.
        var bounds: PixelRect
        var colour: RGBA
        var text: String
        var textColour: RGBA
        /// The text's pen start on its baseline.
        var textX: Int
        var textBaseline: Double
        /// A display line's pixels.
        var spans: [PixelRect] = []

        /// A border around an untouched interior; otherwise the whole box is filled.
        var isHollow: Bool { box.x1 - box.x0 > 2 * border && box.y1 - box.y0 > 2 * border }

        /// Where text may appear: the label's background, inside the bounds.
        var textClip: PixelRect { label.intersection(bounds) }

        /// Calls `body` with each rectangle this item paints completely in `colour` (its border
        /// strips, or the whole box when it is too small for an interior, a line's spans and its
        /// label background), inside its bounds. The CPU renderer clips Cairo to exactly these pixels.
        func forEachPaintedRect(_ body: (PixelRect) -> Void) {
            let b = border
            func visit(_ r: PixelRect) {
                let clipped = r.intersection(bounds)
                if !clipped.isEmpty { body(clipped) }
            }
            if isHollow {
                visit(PixelRect(x0: box.x0, y0: box.y0, x1: box.x1, y1: box.y0 + b))
                visit(PixelRect(x0: box.x0, y0: box.y1 - b, x1: box.x1, y1: box.y1))
                visit(PixelRect(x0: box.x0, y0: box.y0 + b, x1: box.x0 + b, y1: box.y1 - b))
                visit(PixelRect(x0: box.x1 - b, y0: box.y0 + b, x1: box.x1, y1: box.y1 - b))
            } else {
                visit(box)
            }
            for span in spans { visit(span) }
            visit(label)
        }
    }
}
