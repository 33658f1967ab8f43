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

    /// One labelled box to draw, in output pixels.
    struct Item {
        var box: PixelRect
        var label: String
        var colour: RGBA
        /// Nothing of this item is drawn outside (the image, or its tile).
        var bounds: PixelRect
    }

    /// The items of `meta`, in drawing order: each object's rect (muxer pixels) scaled into its
    /// source's tile, bounded by that tile and the image.
    static func items(of meta: BatchMeta, layout: TileLayout, muxerWidth: Int, muxerHeight: Int,
                      imageWidth: Int, imageHeight: Int) -> [Item] {
        guard muxerWidth > 0, muxerHeight > 0 else { return [] }
        var items: [Item] = []
        let imageBounds = PixelRect(x0: 0, y0: 0, x1: imageWidth, y1: imageHeight)
        for frame in meta.frames where !frame.objects.isEmpty {
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
        }
        return items
    }

    @inline(__always)
    static func pixel(_ value: Double) -> Int {
        // Clamp before converting: rects from a detector can be anything, Int(_:) traps on huge values.
        Int(min(max(value, -1_000_000), 1_000_000).rounded())
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
            let labelWidth = textWidth(item.label) + 2 * padding
            let b = item.bounds
            var lx = item.box.x0
            if lx + labelWidth > b.x1 { lx = b.x1 - labelWidth }
            lx = max(lx, b.x0)
            var ly = item.box.y0 - labelHeight
            if ly < b.y0 { ly = max(item.box.y0, b.y0) }  // no room above: inside the box, at its top
            if ly + labelHeight > b.y1 { ly = b.y1 - labelHeight }
            ly = max(ly, b.y0)
            return Placement(box: item.box, border: border, label: PixelRect(x0: lx, y0: ly, x1: lx + labelWidth, y1: ly + labelHeight),
                             bounds: b, colour: item.colour, text: item.label, textColour: textColour(on: item.colour),
                             textX: lx + padding, textBaseline: Double(ly + padding) + ascent)
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

        /// A border around an untouched interior; otherwise the whole box is filled.
        var isHollow: Bool { box.x1 - box.x0 > 2 * border && box.y1 - box.y0 > 2 * border }

        /// Where text may appear: the label's background, inside the bounds.
        var textClip: PixelRect { label.intersection(bounds) }

        /// Calls `body` with each rectangle this item paints completely in `colour` (its border
        /// strips, or the whole box when it is too small for an interior, and its label
        /// background), inside its bounds. The CPU renderer clips Cairo to exactly these pixels.
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
            visit(label)
        }
    }
}
