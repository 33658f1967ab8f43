#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CCairo

/// Draws detection boxes and labels, and the frames' display lines and texts, on host RGBA frames
/// with Cairo (nvdsosd's job).
///
/// Pixel format: Cairo's RGB24 is a native-endian 0xXXRRGGBB word, i.e. bytes B,G,R,X on
/// little-endian, while our frames are R,G,B,A. Cairo draws straight into the frame, so colours
/// are handed to it with red and blue swapped and the bytes land as R,G,B.
///
/// Alpha byte: Cairo treats the fourth byte as padding (pixman leaves it or rewrites it, depending
/// on the code path). Each object is clipped to exactly the pixels it paints (border strips and
/// label background, the text lies inside it), and those pixels are then set to A = 255. Every
/// other pixel, box interiors included, keeps its A byte untouched.
///
/// The renderer holds only its settings; every call makes its own surface and context, so one
/// renderer can serve several threads.
public final class OSDRenderer: Sendable {
    public let borderWidth: Double
    public let fontSize: Double
    public let fontFamily: String

    public init(borderWidth: Double = 3, fontSize: Double = 14, fontFamily: String = "DejaVu Sans") {
        self.borderWidth = borderWidth
        self.fontSize = fontSize
        self.fontFamily = fontFamily
    }

    /// Draws every frame's objects and display meta of `meta` on the tiled `output`: rects, lines
    /// and text origins are in muxer pixels (muxerWidth × muxerHeight), scaled into their source's
    /// tile (`layout.tile(of: sourceID)`). Nothing leaves its tile.
    package func drawObjects(of meta: BatchMeta, layout: TileLayout, muxerWidth: Int, muxerHeight: Int, on output: MutableImageView) {
        draw(OSDLayout.items(of: meta, layout: layout, muxerWidth: muxerWidth, muxerHeight: muxerHeight,
                        imageWidth: output.width, imageHeight: output.height), on: output)
    }

    /// One box with a label above it (inside the image if there is no room above), in `image` pixels.
    package func drawBox(_ rect: Rect, label: String, colour: RGBA, on image: MutableImageView) {
        let box = PixelRect(x0: OSDLayout.pixel(Double(rect.left)), y0: OSDLayout.pixel(Double(rect.top)),
                            x1: OSDLayout.pixel(Double(rect.left + rect.width)), y1: OSDLayout.pixel(Double(rect.top + rect.height)))
        draw([Item(box: box, label: label, colour: colour, bounds: PixelRect(x0: 0, y0: 0, x1: image.width, y1: image.height))], on: image)
    }

    // MARK: Drawing

    private func draw(_ items: [Item], on image: MutableImageView) {
        guard !items.isEmpty, image.width > 0, image.height > 0 else { return }
        let target = CairoTarget(image)
        guard let surface = target.surface else { return }
        defer { target.destroy() }
        guard let context = cairo_create(surface) else { return }
        defer { cairo_destroy(context) }
        guard cairo_status(context) == CAIRO_STATUS_SUCCESS else { return }

        let layout = OSDLayout.Sizes(renderer: self, fontExtents: selectFont(on: context))
        // Crisp, exact box edges, label backgrounds and clips (whole pixels only).
        cairo_set_antialias(context, CAIRO_ANTIALIAS_NONE)
        cairo_set_line_join(context, CAIRO_LINE_JOIN_MITER)

        var drawn: [Placement] = []
        drawn.reserveCapacity(items.count)
        for item in items {
            let g = layout.place(item) { Self.textWidth(of: $0, in: context) }
            cairo_save(context)
            // Clip to exactly the pixels this item paints: Cairo may rewrite the fourth byte of
            // any pixel it composites, so it must composite no other pixel.
            cairo_new_path(context)
            var anything = false
            g.forEachPaintedRect { r in
                cairo_rectangle(context, Double(r.x0), Double(r.y0), Double(r.x1 - r.x0), Double(r.y1 - r.y0))
                anything = true
            }
            guard anything else { cairo_restore(context); continue }
            cairo_clip(context)

            setSource(context, item.colour)
            let box = item.box, border = g.border
            let w = box.x1 - box.x0, h = box.y1 - box.y0
            if g.isHollow {
                // A stroke centred half a border inside the rect: the border covers the rect's
                // outermost `border` pixels exactly.
                let half = Double(border) / 2
                cairo_set_line_width(context, Double(border))
                cairo_rectangle(context, Double(box.x0) + half, Double(box.y0) + half, Double(w - border), Double(h - border))
                cairo_stroke(context)
            } else if w > 0 && h > 0 {
                cairo_rectangle(context, Double(box.x0), Double(box.y0), Double(w), Double(h))
                cairo_fill(context)
            }
            for span in g.spans {
                cairo_rectangle(context, Double(span.x0), Double(span.y0), Double(span.x1 - span.x0), Double(span.y1 - span.y0))
            }
            if !g.spans.isEmpty { cairo_fill(context) }
            if !g.label.isEmpty {
                let label = g.label
                cairo_rectangle(context, Double(label.x0), Double(label.y0), Double(label.x1 - label.x0), Double(label.y1 - label.y0))
                cairo_fill_preserve(context)
                cairo_clip(context)  // text never leaves its background
                setSource(context, g.textColour)
                cairo_move_to(context, Double(g.textX), g.textBaseline)
                g.text.withCString { cairo_show_text(context, $0) }
            }
            cairo_restore(context)
            drawn.append(g)
        }
        cairo_surface_flush(surface)
        target.copyBack(into: image)
        // Cairo leaves or rewrites the fourth byte as it likes; what it painted becomes opaque.
        for g in drawn { g.forEachPaintedRect { setOpaque(image, $0) } }
    }

    /// Sets the OSD's font on `context` and returns its extents. Every Cairo context that draws or
    /// measures OSD text (this renderer's, the GPU path's glyph atlas) goes through here, so the
    /// glyphs and metrics are the same everywhere.
    func selectFont(on context: OpaquePointer) -> cairo_font_extents_t {
        fontFamily.withCString { cairo_select_font_face(context, $0, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL) }
        cairo_set_font_size(context, fontSize)
        // Grey-level text antialiasing: subpixel (LCD) filtering would colour-fringe the wrong
        // channels, since Cairo sees R and B swapped. Hinted metrics: whole-pixel advances and
        // ascent, so glyphs sit on whole pixels (which the GPU path's atlas relies on).
        if let options = cairo_font_options_create() {
            cairo_font_options_set_antialias(options, CAIRO_ANTIALIAS_GRAY)
            cairo_font_options_set_hint_metrics(options, CAIRO_HINT_METRICS_ON)
            cairo_set_font_options(context, options)
            cairo_font_options_destroy(options)
        }
        var fontExtents = cairo_font_extents_t()
        cairo_font_extents(context, &fontExtents)
        return fontExtents
    }

    /// The width the label layout reserves for `text`: its advance or its ink, whichever reaches
    /// further, in whole pixels. Clears the context's path: Cairo measures from the current point,
    /// and its hinted metrics carry rounding noise (12.000000000000002) that the sum with a
    /// current point can cancel or keep, so without a fixed origin a label's width would depend
    /// on where the previous label's text ended.
    static func textWidth(of text: String, in context: OpaquePointer) -> Int {
        cairo_new_path(context)
        var extents = cairo_text_extents_t()
        text.withCString { cairo_text_extents(context, $0, &extents) }
        return Int(max(extents.x_advance, extents.width + extents.x_bearing).rounded(.up))
    }

    /// `textWidth(of:in:)` on a scratch context: what the CPU layout measures for `text`.
    func cairoTextWidth(of text: String) -> Int {
        guard let surface = cairo_image_surface_create(CAIRO_FORMAT_A8, 1, 1) else { return 0 }
        defer { cairo_surface_destroy(surface) }
        guard let context = cairo_create(surface) else { return 0 }
        defer { cairo_destroy(context) }
        _ = selectFont(on: context)
        return Self.textWidth(of: text, in: context)
    }

    @inline(__always)
    private func setSource(_ context: OpaquePointer, _ colour: RGBA) {
        // Red and blue swapped: Cairo writes B,G,R,X in memory, our frames are R,G,B,A.
        cairo_set_source_rgb(context, Double(colour.b) / 255, Double(colour.g) / 255, Double(colour.r) / 255)
    }

    private func setOpaque(_ image: MutableImageView, _ rect: PixelRect) {
        guard !rect.isEmpty else { return }
        for y in rect.y0..<rect.y1 {
            let row = image.row(y)
            for x in rect.x0..<rect.x1 { row[x * 4 + 3] = 255 }
        }
    }
}

/// The OSD's shared geometry, as this file names it.
private typealias PixelRect = OSDLayout.PixelRect
private typealias Item = OSDLayout.Item
private typealias Placement = OSDLayout.Placement

extension OSDLayout.Sizes {
    /// The sizes of `renderer`'s settings with the font Cairo selected.
    init(renderer: OSDRenderer, fontExtents: cairo_font_extents_t) {
        self.init(renderer: renderer, ascent: fontExtents.ascent, descent: fontExtents.descent)
    }
}

/// The Cairo surface to draw on: straight over the frame's pixels when Cairo accepts its pitch
/// and alignment, otherwise a temporary surface that is copied in and back.
private struct CairoTarget {
    let surface: OpaquePointer?
    let isTemporary: Bool

    init(_ image: MutableImageView) {
        let minimumStride = Int(cairo_format_stride_for_width(CAIRO_FORMAT_RGB24, Int32(clamping: image.width)))
        let direct = minimumStride > 0 && image.bytesPerRow >= minimumStride && image.bytesPerRow % 4 == 0
            && Int(bitPattern: image.base) % 4 == 0 && image.bytesPerRow <= Int(Int32.max)
        if direct, let s = cairo_image_surface_create_for_data(image.base.assumingMemoryBound(to: UInt8.self), CAIRO_FORMAT_RGB24,
                                                               Int32(image.width), Int32(image.height), Int32(image.bytesPerRow)) {
            if cairo_surface_status(s) == CAIRO_STATUS_SUCCESS {
                surface = s
                isTemporary = false
                return
            }
            cairo_surface_destroy(s)
        }
        isTemporary = true
        guard let s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, Int32(clamping: image.width), Int32(clamping: image.height)),
              cairo_surface_status(s) == CAIRO_STATUS_SUCCESS, let data = cairo_image_surface_get_data(s) else {
            surface = nil
            return
        }
        let stride = Int(cairo_image_surface_get_stride(s))
        for y in 0..<image.height {
            UnsafeMutableRawPointer(data + y * stride).copyMemory(from: image.base + y * image.bytesPerRow, byteCount: image.width * 4)
        }
        cairo_surface_mark_dirty(s)
        surface = s
    }

    /// After drawing: the temporary surface's pixels go back to the frame.
    func copyBack(into image: MutableImageView) {
        guard isTemporary, let surface, let data = cairo_image_surface_get_data(surface) else { return }
        let stride = Int(cairo_image_surface_get_stride(surface))
        for y in 0..<image.height {
            (image.base + y * image.bytesPerRow).copyMemory(from: data + y * stride, byteCount: image.width * 4)
        }
    }

    func destroy() {
        if let surface { cairo_surface_destroy(surface) }
    }
}
