/// Where a frame's pixels live.
public enum PixelLocation: Sendable, Equatable {
    case host
    /// CUDA device memory on this GPU.
    case cuda(deviceID: Int)
}

/// A frame's pixels as user code gets them in a probe: typed (RGBA), pitch-aware and mutable in
/// place, with a host and a device case behind one type. It is non-copyable and its memory is
/// reachable only through scoped calls, so nothing a probe receives can outlive the closure:
/// rows come as `MutableSpan` (which cannot escape), raw pointers only inside
/// `withUnsafeMutableHostPixels` / `withUnsafeDevicePixels`. Width, height, format and pitch are
/// fixed: a probe changes values, never the layout.
public struct FramePixels: ~Copyable {
    public let width: Int
    public let height: Int
    /// Bytes from one row to the next (≥ width × 4).
    public let bytesPerRow: Int
    public let format: PixelFormat
    public let location: PixelLocation
    private let storage: ImageBuffer.Storage

    init(_ image: ImageBuffer) {
        width = image.width
        height = image.height
        bytesPerRow = image.bytesPerRow
        format = image.format
        storage = image.storage
        location = image.location
    }

    private var hostBase: UnsafeMutableRawPointer {
        guard case .host(let base) = storage else {
            preconditionFailure("these pixels are in CUDA device memory: use withUnsafeDevicePixels")
        }
        return base
    }

    /// One pixel (host frames). Bounds are checked.
    public subscript(x x: Int, y y: Int) -> RGBA {
        get {
            precondition(x >= 0 && x < width && y >= 0 && y < height, "pixel (\(x), \(y)) outside \(width)×\(height)")
            let p = (hostBase + y * bytesPerRow + x * 4).assumingMemoryBound(to: UInt8.self)
            return RGBA(r: p[0], g: p[1], b: p[2], a: p[3])
        }
        set {
            precondition(x >= 0 && x < width && y >= 0 && y < height, "pixel (\(x), \(y)) outside \(width)×\(height)")
            let p = (hostBase + y * bytesPerRow + x * 4).assumingMemoryBound(to: UInt8.self)
            p[0] = newValue.r; p[1] = newValue.g; p[2] = newValue.b; p[3] = newValue.a
        }
    }

    /// Row `y` as `width × 4` bytes R, G, B, A, … (host frames); the pitch padding is not included.
    public mutating func withRow<R>(_ y: Int, _ body: (inout MutableSpan<UInt8>) throws -> R) rethrows -> R {
        precondition(y >= 0 && y < height, "row \(y) outside 0..<\(height)")
        let row = UnsafeMutableBufferPointer(start: (hostBase + y * bytesPerRow).assumingMemoryBound(to: UInt8.self), count: width * 4)
        var span = row.mutableSpan
        return try body(&span)
    }

    /// The host pixels' base address and pitch, for hand-written loops. The pointer is valid only
    /// inside `body`.
    public mutating func withUnsafeMutableHostPixels<R>(_ body: (_ base: UnsafeMutableRawPointer, _ bytesPerRow: Int) throws -> R) rethrows -> R {
        try body(hostBase, bytesPerRow)
    }

    /// The stream for work on device pixels: the GPU's legacy default (null) stream, as the
    /// sample's CuPy edit uses; nil for host pixels.
    public var cudaStream: CUDAStream? {
        guard case .cuda(let deviceID) = location, let device = try? CUDADevice.open(deviceID) else { return nil }
        return CUDAStream.null(device)
    }

    /// The device pixels' address and pitch (device frames), for kernels: every earlier stage
    /// has finished with them, and the stages after the probe start once it returns, so work the
    /// probe launches must be complete (synchronised) by then, as the sample's
    /// `stream.synchronize()` does. The address is valid only inside `body`.
    public mutating func withUnsafeDevicePixels<R>(_ body: (_ pointer: DevicePointer, _ bytesPerRow: Int) throws -> R) rethrows -> R {
        guard case .cuda(let pointer, _) = storage else {
            preconditionFailure("these pixels are in host memory: use withRow or withUnsafeMutableHostPixels")
        }
        return try body(pointer, bytesPerRow)
    }
}

extension ImageBuffer {
    /// Scoped, in-place access to the pixels, host or device.
    public func withPixels<R>(_ body: (inout FramePixels) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) {
            var pixels = FramePixels(self)
            return try body(&pixels)
        }
    }
}
