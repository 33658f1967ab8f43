import Testing
@testable import Tributary

/// The fused pre-processing pass against a plain, per-pixel reference written independently.
@Suite struct PreprocessorTests {
    /// A deterministic test picture with detail in every channel.
    func picture(width: Int, height: Int) -> ImageBuffer {
        let image = ImageBuffer.allocateHost(width: width, height: height)
        image.withMutableHostView { v in
            for y in 0..<height {
                for x in 0..<width {
                    v.setPixel(x: x, y: y, RGBA(r: UInt8((x * 7 + y * 3) & 255), g: UInt8((x * x + y) & 255), b: UInt8((x ^ y) & 255), a: 255))
                }
            }
        }
        return image
    }

    /// Reference: for each network pixel, find the source position and interpolate.
    func reference(_ image: ImageView, _ p: PreprocessParameters) -> [Float] {
        let t = LetterboxTransform(sourceWidth: image.width, sourceHeight: image.height, networkWidth: p.networkWidth,
                                   networkHeight: p.networkHeight, maintainAspectRatio: p.maintainAspectRatio, symmetricPadding: p.symmetricPadding)
        var out = [Float](repeating: 0, count: p.channels * p.networkWidth * p.networkHeight)
        func value(_ x: Int, _ y: Int, _ c: Int) -> Float {
            let px = image.pixel(x: x, y: y)
            return Float([px.r, px.g, px.b][c])
        }
        for c in 0..<p.channels {
            for y in 0..<p.networkHeight {
                for x in 0..<p.networkWidth {
                    var v: Float = 0
                    let inside = x >= t.padX && x < t.padX + t.scaledWidth && y >= t.padY && y < t.padY + t.scaledHeight
                    if inside {
                        let sx = max(0, (Float(x - t.padX) + 0.5) * (Float(image.width) / Float(t.scaledWidth)) - 0.5)
                        let sy = max(0, (Float(y - t.padY) + 0.5) * (Float(image.height) / Float(t.scaledHeight)) - 0.5)
                        let xa = min(Int(sx), image.width - 1), ya = min(Int(sy), image.height - 1)
                        let xb = min(xa + 1, image.width - 1), yb = min(ya + 1, image.height - 1)
                        let fx = sx - Float(xa), fy = sy - Float(ya)
                        func bilinear(_ ch: Int) -> Float {
                            let top = (1 - fx) * value(xa, ya, ch) + fx * value(xb, ya, ch)
                            let bottom = (1 - fx) * value(xa, yb, ch) + fx * value(xb, yb, ch)
                            return (1 - fy) * top + fy * bottom
                        }
                        switch p.colorFormat {
                        case .rgb: v = bilinear(c)
                        case .bgr: v = bilinear(2 - c)
                        case .gray: v = 0.299 * bilinear(0) + 0.587 * bilinear(1) + 0.114 * bilinear(2)
                        }
                    }
                    out[(c * p.networkHeight + y) * p.networkWidth + x] = p.scaleFactor * (v - p.offsets[c])
                }
            }
        }
        return out
    }

    @Test(arguments: [
        (InferConfiguration.ColorFormat.rgb, true, true), (.bgr, true, false), (.rgb, false, false), (.gray, true, true),
    ])
    func fusedPassMatchesTheReference(format: InferConfiguration.ColorFormat, keepAspect: Bool, symmetric: Bool) {
        let parameters = PreprocessParameters(networkWidth: 64, networkHeight: 48, colorFormat: format, scaleFactor: 1 / 255,
                                              offsets: format == .gray ? [10] : [10, 20, 30],
                                              maintainAspectRatio: keepAspect, symmetricPadding: symmetric)
        let image = picture(width: 150, height: 61)
        let preprocessor = Preprocessor(parameters: parameters)
        var fused = [Float](repeating: .nan, count: 2 * preprocessor.frameElementCount)
        let frames = [Frame(sourceID: 0, frameNumber: 0, pts: nil, image: image), Frame(sourceID: 1, frameNumber: 0, pts: nil, image: image)]
        fused.withUnsafeMutableBufferPointer { preprocessor.process(frames, into: $0) }
        let expected = image.withHostView { reference($0, parameters) }
        var worst: Float = 0
        for i in 0..<fused.count { worst = max(worst, abs(fused[i] - expected[i % expected.count])) }
        #expect(worst <= 1e-6, "max difference \(worst)")
    }

    @Test func letterboxMapsBackToTheSource() {
        // 1920×1080 into 416×416: scale 416/1920, height 234, padding 91 top and bottom.
        let t = LetterboxTransform(sourceWidth: 1920, sourceHeight: 1080, networkWidth: 416, networkHeight: 416,
                                   maintainAspectRatio: true, symmetricPadding: true)
        #expect(t.scaledWidth == 416 && t.scaledHeight == 234)
        #expect(t.padX == 0 && t.padY == 91)
        let back = t.toSource(Rect(left: 208, top: 91, width: 104, height: 117), sourceWidth: 1920, sourceHeight: 1080)
        #expect(abs(back.left - 960) < 0.01 && abs(back.top - 0) < 0.01)
        #expect(abs(back.width - 480) < 0.01 && abs(back.height - 540) < 0.1)
        let clipped = t.toSource(Rect(left: -50, top: 0, width: 100, height: 500), sourceWidth: 1920, sourceHeight: 1080)
        #expect(clipped.left == 0 && clipped.top == 0 && clipped.height == 1080)
    }
}
