#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CCairo

/// The OSD's printable ASCII glyphs (32…126), rendered once by Cairo with the CPU renderer's font
/// setup (family, size, grey antialiasing, hinted metrics) into one 8-bit coverage atlas, for the
/// GPU OSD to blit. Host-only: `DeviceOSD` uploads `alpha` once.
///
/// Glyphs are rendered at whole-pixel pen positions, which is where Cairo puts the CPU OSD's text
/// too (hinted metrics give whole-pixel advances and ascent), so each bitmap is the coverage mask
/// Cairo composites for that glyph.
package struct GlyphAtlas: Sendable {
    /// One glyph's bitmap in the atlas and its metrics, in whole pixels.
    package struct Glyph: Sendable, Equatable {
        /// The bitmap's top-left corner in the atlas.
        package var atlasX: Int, atlasY: Int
        /// The bitmap's size; 0 × 0 for glyphs without ink (space).
        package var width: Int, height: Int
        /// The bitmap's top-left corner relative to the pen position on the baseline (y grows
        /// down, so bearingY is negative for ink above the baseline).
        package var bearingX: Int, bearingY: Int
        /// How far the pen moves after this glyph.
        package var advance: Int
        /// Cairo's own metrics, for `textWidth(_:)`.
        package var metrics: Metrics

        package var hasInk: Bool { width > 0 && height > 0 }
    }

    /// A glyph's metrics exactly as Cairo keeps them (user-space doubles). Hinted metrics are whole
    /// pixels up to rounding noise (6.000000000000001), and Cairo's text extents round that up:
    /// the label layout needs the same doubles, summed in the same order, to get Cairo's widths.
    package struct Metrics: Sendable, Equatable {
        package var xBearing = 0.0, width = 0.0, xAdvance = 0.0
        /// Cairo leaves glyphs without ink area out of ink extents.
        package var isVisible = false
    }

    package static let printable: ClosedRange<UInt32> = 32...126
    /// What characters outside `printable` are drawn and measured as.
    package static let replacement: UInt32 = 63  // "?"

    /// Atlas size; rows are `width` bytes, no padding.
    package let width: Int
    package let height: Int
    /// Coverage, 0…255, row-major.
    package let alpha: [UInt8]
    /// Indexed by character code − 32.
    package let glyphs: [Glyph]
    /// The font's extents, for the label layout.
    package let ascent: Double
    package let descent: Double

    /// Renders the atlas with `renderer`'s font. An unusable Cairo gives an atlas of empty glyphs.
    package init(renderer: OSDRenderer) {
        let (bitmaps, ascent, descent) = Self.renderGlyphs(renderer: renderer)
        let (glyphs, alpha, atlasWidth, atlasHeight) = Self.pack(bitmaps)
        width = atlasWidth
        height = atlasHeight
        self.alpha = alpha
        self.glyphs = glyphs
        self.ascent = ascent
        self.descent = descent
    }

    /// Each printable character drawn alone with Cairo: its glyph (box, bearings, advance, the
    /// layout's metrics) and its coverage, and the font's ascent and descent.
    private static func renderGlyphs(renderer: OSDRenderer) -> (bitmaps: [(glyph: Glyph, pixels: [UInt8])], ascent: Double, descent: Double) {
        // Scratch canvas for one glyph, with room around the pen for any overhang.
        let margin = Int(renderer.fontSize.rounded(.up)) + 8
        let scratchSize = 4 * margin
        var ascent = 0.0, descent = 0.0
        var bitmaps: [(glyph: Glyph, pixels: [UInt8])] = []
        bitmaps.reserveCapacity(printable.count)

        if let surface = cairo_image_surface_create(CAIRO_FORMAT_A8, Int32(scratchSize), Int32(scratchSize)),
           cairo_surface_status(surface) == CAIRO_STATUS_SUCCESS, let data = cairo_image_surface_get_data(surface),
           let context = cairo_create(surface) {
            defer { cairo_destroy(context); cairo_surface_destroy(surface) }
            let fontExtents = renderer.selectFont(on: context)
            ascent = fontExtents.ascent
            descent = fontExtents.descent
            cairo_set_source_rgba(context, 0, 0, 0, 1)
            let stride = Int(cairo_image_surface_get_stride(surface))
            let penX = margin, penY = 2 * margin  // whole pixels, like the CPU OSD's pen
            var text: [CChar] = [0, 0]
            for code in printable {
                cairo_surface_flush(surface)
                memset(data, 0, stride * scratchSize)
                cairo_surface_mark_dirty(surface)
                text[0] = CChar(code)
                var extents = cairo_text_extents_t()
                cairo_new_path(context)  // measured from the origin, like the layout's widths
                cairo_text_extents(context, text, &extents)
                let metrics = metrics(of: text, extents: extents, context: context)
                cairo_move_to(context, Double(penX), Double(penY))
                cairo_show_text(context, text)
                cairo_surface_flush(surface)

                // The box: Cairo's ink extents rounded out (what the layout measures), grown to
                // any coverage outside them so no pixel of the bitmap is lost.
                var x0 = Int.max, y0 = Int.max, x1 = Int.min, y1 = Int.min
                if extents.width > 0 && extents.height > 0 {
                    x0 = penX + Int(extents.x_bearing.rounded(.down))
                    y0 = penY + Int(extents.y_bearing.rounded(.down))
                    x1 = penX + Int((extents.x_bearing + extents.width).rounded(.up))
                    y1 = penY + Int((extents.y_bearing + extents.height).rounded(.up))
                }
                for y in 0..<scratchSize {
                    let row = data + y * stride
                    for x in 0..<scratchSize where row[x] != 0 {
                        x0 = min(x0, x); y0 = min(y0, y); x1 = max(x1, x + 1); y1 = max(y1, y + 1)
                    }
                }
                x0 = max(x0, 0); y0 = max(y0, 0); x1 = min(x1, scratchSize); y1 = min(y1, scratchSize)
                var glyph = Glyph(atlasX: 0, atlasY: 0, width: 0, height: 0, bearingX: 0, bearingY: 0,
                                  advance: Int(extents.x_advance.rounded()), metrics: metrics)
                var pixels: [UInt8] = []
                if x1 > x0 && y1 > y0 {
                    glyph.width = x1 - x0
                    glyph.height = y1 - y0
                    glyph.bearingX = x0 - penX
                    glyph.bearingY = y0 - penY
                    pixels.reserveCapacity(glyph.width * glyph.height)
                    for y in y0..<y1 { pixels.append(contentsOf: UnsafeBufferPointer(start: data + y * stride + x0, count: glyph.width)) }
                }
                bitmaps.append((glyph, pixels))
            }
        } else {
            bitmaps = printable.map { _ in (Glyph(atlasX: 0, atlasY: 0, width: 0, height: 0, bearingX: 0, bearingY: 0, advance: 0, metrics: Metrics()), []) }
        }

        return (bitmaps, ascent, descent)
    }

    /// The glyphs' bitmaps packed into one alpha atlas, 256 pixels wide; each glyph gets its place.
    private static func pack(_ bitmaps: [(glyph: Glyph, pixels: [UInt8])]) -> (glyphs: [Glyph], alpha: [UInt8], width: Int, height: Int) {
        // Shelf packing, one pixel apart so no glyph's edge reads a neighbour.
        let atlasWidth = 256
        var x = 0, y = 0, shelfHeight = 0
        var glyphs: [Glyph] = []
        glyphs.reserveCapacity(bitmaps.count)
        for (var glyph, _) in bitmaps {
            if glyph.hasInk {
                if x + glyph.width > atlasWidth { x = 0; y += shelfHeight + 1; shelfHeight = 0 }
                glyph.atlasX = x
                glyph.atlasY = y
                x += glyph.width + 1
                shelfHeight = max(shelfHeight, glyph.height)
            }
            glyphs.append(glyph)
        }
        let atlasHeight = max(1, y + shelfHeight)
        var alpha = [UInt8](repeating: 0, count: atlasWidth * atlasHeight)
        for (glyph, (_, pixels)) in zip(glyphs, bitmaps) where glyph.hasInk {
            for row in 0..<glyph.height {
                let target = (glyph.atlasY + row) * atlasWidth + glyph.atlasX
                alpha.replaceSubrange(target..<(target + glyph.width), with: pixels[(row * glyph.width)..<((row + 1) * glyph.width)])
            }
        }
        return (glyphs, alpha, atlasWidth, atlasHeight)
    }

    /// The glyph a character is drawn with (`replacement`'s outside printable ASCII).
    package func glyph(for character: Unicode.Scalar) -> Glyph {
        let code = Self.printable.contains(character.value) ? character.value : Self.replacement
        return glyphs[Int(code - Self.printable.lowerBound)]
    }

    /// The label layout's width of `text`, as `OSDRenderer.textWidth(of:in:)` measures it with
    /// Cairo: the pen's advance or the ink's right edge, whichever reaches further, rounded up.
    /// This is cairo_text_extents' arithmetic (cairo_scaled_font_glyph_extents) on the atlas's
    /// glyphs, operation for operation.
    package func textWidth(_ text: String) -> Int {
        var pen = 0.0, minX = 0.0, maxX = 0.0, visible = false
        for character in text.unicodeScalars {
            let m = glyph(for: character).metrics
            if m.isVisible {
                let left = m.xBearing + pen, right = left + m.width
                if !visible { minX = left; maxX = right; visible = true } else { minX = min(minX, left); maxX = max(maxX, right) }
            }
            pen += m.xAdvance
        }
        let inkRight = visible ? (maxX - minX) + minX : 0
        return Int(max(pen, inkRight).rounded(.up))
    }

    /// Cairo's metrics of the one glyph of `text`. Its text extents give the bearing and advance
    /// exactly, but the width only as (bearing + width) − bearing; placing the glyph at −bearing
    /// makes Cairo compute (0 + width) − 0, the width itself.
    private static func metrics(of text: [CChar], extents: cairo_text_extents_t, context: OpaquePointer) -> Metrics {
        var metrics = Metrics(xBearing: extents.x_bearing, width: extents.width, xAdvance: extents.x_advance,
                              isVisible: extents.width != 0 && extents.height != 0)
        guard metrics.isVisible, let font = cairo_get_scaled_font(context) else { return metrics }
        var glyphs: UnsafeMutablePointer<cairo_glyph_t>?
        var count: Int32 = 0
        guard cairo_scaled_font_text_to_glyphs(font, 0, 0, text, -1, &glyphs, &count, nil, nil, nil) == CAIRO_STATUS_SUCCESS,
              let glyphs else { return metrics }
        defer { cairo_glyph_free(glyphs) }
        guard count == 1 else { return metrics }
        glyphs[0].x = -extents.x_bearing
        var placed = cairo_text_extents_t()
        cairo_glyph_extents(context, glyphs, 1, &placed)
        metrics.width = placed.width
        return metrics
    }

    /// Coverage at an atlas pixel.
    @inline(__always)
    package func alpha(x: Int, y: Int) -> UInt8 { alpha[y * width + x] }
}
