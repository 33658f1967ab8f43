import Dispatch

/// How muxer pixels map into the network input and back: a uniform scale with padding when
/// `maintain-aspect-ratio=1` (letterbox), a stretch otherwise.
public struct LetterboxTransform: Sendable, Equatable {
    public var scaleX: Float
    public var scaleY: Float
    /// Left and top padding in network pixels.
    public var padX: Int
    public var padY: Int
    /// The scaled image's size inside the network input.
    public var scaledWidth: Int
    public var scaledHeight: Int

    public init(sourceWidth: Int, sourceHeight: Int, networkWidth: Int, networkHeight: Int, maintainAspectRatio: Bool, symmetricPadding: Bool) {
        if maintainAspectRatio {
            let ratio = min(Double(networkWidth) / Double(sourceWidth), Double(networkHeight) / Double(sourceHeight))
            scaledWidth = max(1, min(networkWidth, Int((Double(sourceWidth) * ratio).rounded())))
            scaledHeight = max(1, min(networkHeight, Int((Double(sourceHeight) * ratio).rounded())))
        } else {
            scaledWidth = networkWidth
            scaledHeight = networkHeight
        }
        padX = symmetricPadding ? (networkWidth - scaledWidth) / 2 : 0
        padY = symmetricPadding ? (networkHeight - scaledHeight) / 2 : 0
        scaleX = Float(scaledWidth) / Float(sourceWidth)
        scaleY = Float(scaledHeight) / Float(sourceHeight)
    }

    /// A box in network pixels back in source (muxer) pixels, clipped to the source.
    public func toSource(_ rect: Rect, sourceWidth: Int, sourceHeight: Int) -> Rect {
        let left = max(0, min(Float(sourceWidth), (rect.left - Float(padX)) / scaleX))
        let top = max(0, min(Float(sourceHeight), (rect.top - Float(padY)) / scaleY))
        let right = max(0, min(Float(sourceWidth), (rect.left + rect.width - Float(padX)) / scaleX))
        let bottom = max(0, min(Float(sourceHeight), (rect.top + rect.height - Float(padY)) / scaleY))
        return Rect(left: left, top: top, width: right - left, height: bottom - top)
    }
}

/// What the network wants: nvinfer's pre-processing settings.
public struct PreprocessParameters: Sendable, Equatable {
    public var networkWidth: Int
    public var networkHeight: Int
    public var colorFormat: InferConfiguration.ColorFormat
    /// `net-scale-factor`
    public var scaleFactor: Float
    /// `offsets`, one per network channel (in the network's channel order).
    public var offsets: [Float]
    public var maintainAspectRatio: Bool
    public var symmetricPadding: Bool

    public var channels: Int { colorFormat == .gray ? 1 : 3 }

    public init(networkWidth: Int, networkHeight: Int, colorFormat: InferConfiguration.ColorFormat, scaleFactor: Float,
                offsets: [Float], maintainAspectRatio: Bool, symmetricPadding: Bool) {
        self.networkWidth = networkWidth
        self.networkHeight = networkHeight
        self.colorFormat = colorFormat
        self.scaleFactor = scaleFactor
        let channelCount = colorFormat == .gray ? 1 : 3
        self.offsets = offsets.isEmpty ? Array(repeating: 0, count: channelCount)
            : offsets.count == 1 ? Array(repeating: offsets[0], count: channelCount) : Array(offsets.prefix(channelCount))
        self.maintainAspectRatio = maintainAspectRatio
        self.symmetricPadding = symmetricPadding
    }
}

/// RGBA muxer frames → the network's NCHW float input in one fused pass per frame: bilinear
/// resize (half-pixel centres, as OpenCV's INTER_LINEAR), letterbox padding, channel order and
/// `y = net-scale-factor × (x − offset)`. Sampling tables are built once per source size; frames
/// of a batch run in parallel.
public final class Preprocessor: @unchecked Sendable {
    public let parameters: PreprocessParameters
    public private(set) var transform: LetterboxTransform?
    private var sourceSize: (width: Int, height: Int)?
    // Per network column inside the scaled area: byte offsets of the two source pixels and the
    // weight of the right one. Per network row: the two source rows and the weight of the lower one.
    private var x0: [Int] = [], x1: [Int] = [], wx: [Float] = []
    private var y0: [Int] = [], y1: [Int] = [], wy: [Float] = []

    public init(parameters: PreprocessParameters) { self.parameters = parameters }

    /// Floats per frame in the network input.
    public var frameElementCount: Int { parameters.channels * parameters.networkWidth * parameters.networkHeight }

    /// Prepares the tables for a source size (cheap when it is the same as last time).
    public func prepare(sourceWidth: Int, sourceHeight: Int) -> LetterboxTransform {
        if let size = sourceSize, size == (sourceWidth, sourceHeight), let transform { return transform }
        let p = parameters
        let t = LetterboxTransform(sourceWidth: sourceWidth, sourceHeight: sourceHeight, networkWidth: p.networkWidth,
                                   networkHeight: p.networkHeight, maintainAspectRatio: p.maintainAspectRatio,
                                   symmetricPadding: p.symmetricPadding)
        func taps(count: Int, sourceCount: Int) -> ([Int], [Int], [Float]) {
            let ratio = Float(sourceCount) / Float(count)
            var a = [Int](repeating: 0, count: count), b = a, w = [Float](repeating: 0, count: count)
            for i in 0..<count {
                let s = max(0, (Float(i) + 0.5) * ratio - 0.5)
                let i0 = min(Int(s), sourceCount - 1)
                a[i] = i0
                b[i] = min(i0 + 1, sourceCount - 1)
                w[i] = s - Float(i0)
            }
            return (a, b, w)
        }
        let (cx0, cx1, cwx) = taps(count: t.scaledWidth, sourceCount: sourceWidth)
        x0 = cx0.map { $0 * 4 }; x1 = cx1.map { $0 * 4 }; wx = cwx
        (y0, y1, wy) = taps(count: t.scaledHeight, sourceCount: sourceHeight)
        sourceSize = (sourceWidth, sourceHeight)
        transform = t
        return t
    }

    /// Fills `output` (`frames.count × frameElementCount` floats) from the frames, in parallel.
    /// All frames must have the same size (they come from one muxer).
    public func process(_ frames: [Frame], into output: UnsafeMutableBufferPointer<Float>) {
        guard let first = frames.first else { return }
        precondition(output.count >= frames.count * frameElementCount, "output too small")
        _ = prepare(sourceWidth: first.image.width, sourceHeight: first.image.height)
        // Each iteration writes its own slice; the address crosses as an integer because raw
        // pointers are not Sendable.
        let baseAddress = UInt(bitPattern: output.baseAddress!)
        let perFrame = frameElementCount
        DispatchQueue.concurrentPerform(iterations: frames.count) { i in
            let slice = UnsafeMutablePointer<Float>(bitPattern: baseAddress)! + i * perFrame
            frames[i].image.withHostView { view in processFrame(view, into: slice) }
        }
    }

    /// One frame: `[C, H, W]` floats at `output`.
    package func processFrame(_ image: ImageView, into output: UnsafeMutablePointer<Float>) {
        let t = prepare(sourceWidth: image.width, sourceHeight: image.height)
        let p = parameters
        let width = p.networkWidth, height = p.networkHeight, plane = width * height
        let scale = p.scaleFactor
        let channels = p.channels
        // The padding is black (0) before normalisation, as nvinfer pads.
        for c in 0..<channels {
            let padValue = scale * (0 - p.offsets[c])
            let planeBase = output + c * plane
            if t.padY > 0 || t.padX > 0 || t.scaledWidth < width || t.scaledHeight < height {
                planeBase.update(repeating: padValue, count: plane)
            }
        }
        // Source channel feeding each network channel: RGB, BGR, or gray (luma of RGB).
        let (c0, c1, c2) = p.colorFormat == .bgr ? (2, 1, 0) : (0, 1, 2)
        let o0 = p.offsets[0], o1 = channels > 1 ? p.offsets[1] : 0, o2 = channels > 2 ? p.offsets[2] : 0
        let isGray = p.colorFormat == .gray
        x0.withUnsafeBufferPointer { x0 in x1.withUnsafeBufferPointer { x1 in wx.withUnsafeBufferPointer { wx in
            let source = image.base.assumingMemoryBound(to: UInt8.self)
            for row in 0..<t.scaledHeight {
                let r0 = source + y0[row] * image.bytesPerRow, r1 = source + y1[row] * image.bytesPerRow
                let fy = wy[row], gy = 1 - fy
                let outRow = (row + t.padY) * width + t.padX
                let out0 = output + outRow, out1 = output + plane + outRow, out2 = output + 2 * plane + outRow
                for col in 0..<t.scaledWidth {
                    let a = x0[col], b = x1[col]
                    let fx = wx[col], gx = 1 - fx
                    @inline(__always) func sample(_ ch: Int) -> Float {
                        let top = gx * Float(r0[a + ch]) + fx * Float(r0[b + ch])
                        let bottom = gx * Float(r1[a + ch]) + fx * Float(r1[b + ch])
                        return gy * top + fy * bottom
                    }
                    if isGray {
                        let luma = 0.299 * sample(0) + 0.587 * sample(1) + 0.114 * sample(2)
                        out0[col] = scale * (luma - o0)
                    } else {
                        out0[col] = scale * (sample(c0) - o0)
                        out1[col] = scale * (sample(c1) - o1)
                        out2[col] = scale * (sample(c2) - o2)
                    }
                }
            }
        } } }
    }
}
