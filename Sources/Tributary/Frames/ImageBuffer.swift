#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Pixel formats that move between stages. The muxer and everything after it work in RGBA.
public enum PixelFormat: Sendable, Equatable {
    case rgba
    public var bytesPerPixel: Int { 4 }
}

/// A CUDA device address; the GPU path fills it in, the CPU path never sees one.
public struct DevicePointer: Sendable, Hashable {
    public var address: UInt64
    public init(address: UInt64) { self.address = address }
}

/// Keeps the memory behind an image alive (a mapped GStreamer buffer, a pooled allocation, …) and
/// releases it when the last image referring to it goes.
public protocol ImageMemoryOwner: AnyObject, Sendable {}

/// One image, wherever its pixels live. Access goes through scoped calls only, so no pointer
/// outlives the closure that received it.
public final class ImageBuffer: @unchecked Sendable {
    package enum Storage: @unchecked Sendable {
        case host(UnsafeMutableRawPointer)
        /// CUDA device memory of GPU `deviceID` (the memory object is the image's owner).
        case cuda(DevicePointer, deviceID: Int)
    }

    public let width: Int
    public let height: Int
    public let bytesPerRow: Int
    public let format: PixelFormat
    let storage: Storage
    private let owner: ImageMemoryOwner

    package init(width: Int, height: Int, bytesPerRow: Int, format: PixelFormat = .rgba, storage: Storage, owner: ImageMemoryOwner) {
        precondition(bytesPerRow >= width * format.bytesPerPixel, "row pitch smaller than a row")
        self.width = width
        self.height = height
        self.bytesPerRow = bytesPerRow
        self.format = format
        self.storage = storage
        self.owner = owner
    }

    /// A new host image in freshly allocated, 64-byte aligned memory, filled with zeros.
    public static func allocateHost(width: Int, height: Int, format: PixelFormat = .rgba) -> ImageBuffer {
        let bytesPerRow = (width * format.bytesPerPixel + 63) & ~63
        let memory = HostMemory(byteCount: bytesPerRow * height)
        return ImageBuffer(width: width, height: height, bytesPerRow: bytesPerRow, format: format,
                           storage: .host(memory.pointer), owner: memory)
    }

    public var isHost: Bool { if case .host = storage { return true } else { return false } }

    public var location: PixelLocation {
        switch storage {
        case .host: return .host
        case .cuda(_, let deviceID): return .cuda(deviceID: deviceID)
        }
    }

    /// A new device image from `pool` (pitched, recycled when the image goes).
    package static func fromPool(_ pool: DeviceImagePool) throws -> ImageBuffer {
        let memory = try pool.take()
        return ImageBuffer(width: pool.width, height: pool.height, bytesPerRow: memory.pitch,
                           storage: .cuda(memory.address, deviceID: pool.device.ordinal), owner: memory)
    }

    /// The device address of a CUDA image (nil for host images).
    package var deviceAddress: DevicePointer? {
        if case .cuda(let address, _) = storage { return address } else { return nil }
    }

    /// A copy of these host pixels in `device`'s memory (tests and checks feed both paths the
    /// same pixels this way).
    package func uploaded(to device: CUDADevice) throws -> ImageBuffer {
        let memory = try device.allocatePitched(widthBytes: width * format.bytesPerPixel, height: height)
        try withHostView { source in
            try device.copy2D(from: .host(UnsafeMutableRawPointer(mutating: source.base)), sourcePitch: source.bytesPerRow,
                              to: .device(memory.address), targetPitch: memory.pitch, widthBytes: width * format.bytesPerPixel, height: height)
        }
        return ImageBuffer(width: width, height: height, bytesPerRow: memory.pitch, format: format,
                           storage: .cuda(memory.address, deviceID: device.ordinal), owner: memory)
    }

    /// These pixels in host memory: the image itself when it is there, else one download.
    package func onHost() throws -> ImageBuffer {
        guard case .cuda(let address, let deviceID) = storage else { return self }
        let copy = ImageBuffer.allocateHost(width: width, height: height, format: format)
        let device = try CUDADevice.open(deviceID)
        try copy.withMutableHostView { target in
            try withExtendedLifetime(owner) {
                try device.copy2D(from: .device(address), sourcePitch: bytesPerRow, to: .host(target.base), targetPitch: target.bytesPerRow,
                                  widthBytes: width * format.bytesPerPixel, height: height)
            }
        }
        return copy
    }

    /// A private host copy of these pixels (row by row: the pitches may differ).
    package func hostCopy() -> ImageBuffer {
        withHostView { $0.hostCopy(format: format) }
    }

    /// Read access to host pixels, for the stages. Traps for device images.
    package func withHostView<R>(_ body: (ImageView) throws -> R) rethrows -> R {
        guard case .host(let pointer) = storage else { preconditionFailure("image is in device memory") }
        return try withExtendedLifetime(owner) {
            try body(ImageView(base: UnsafeRawPointer(pointer), width: width, height: height, bytesPerRow: bytesPerRow))
        }
    }

    /// Write access to host pixels, in place, for the stages: the change is what every later
    /// stage sees. Traps for device images.
    package func withMutableHostView<R>(_ body: (inout MutableImageView) throws -> R) rethrows -> R {
        guard case .host(let pointer) = storage else { preconditionFailure("image is in device memory") }
        return try withExtendedLifetime(owner) {
            var view = MutableImageView(base: pointer, width: width, height: height, bytesPerRow: bytesPerRow)
            return try body(&view)
        }
    }
}

/// Plain aligned host memory.
final class HostMemory: ImageMemoryOwner, @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    init(byteCount: Int) {
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: byteCount)
    }
    deinit { pointer.deallocate() }
}

/// A read-only, pitch-aware RGBA view for the stages, valid only inside the closure that
/// received it. (Users get `FramePixels`, which cannot leave its closure.)
package struct ImageView {
    package let base: UnsafeRawPointer
    package let width: Int
    package let height: Int
    package let bytesPerRow: Int

    /// The bytes of row `y` (width × 4 of them; the pitch padding is not included).
    @inline(__always)
    package func row(_ y: Int) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: (base + y * bytesPerRow).assumingMemoryBound(to: UInt8.self), count: width * 4)
    }

    @inline(__always)
    package func pixel(x: Int, y: Int) -> RGBA {
        let p = (base + y * bytesPerRow + x * 4).assumingMemoryBound(to: UInt8.self)
        return RGBA(r: p[0], g: p[1], b: p[2], a: p[3])
    }

    /// A private host copy of these pixels, `format` being theirs (row by row: the pitches may differ).
    package func hostCopy(format: PixelFormat = .rgba) -> ImageBuffer {
        let copy = ImageBuffer.allocateHost(width: width, height: height, format: format)
        copy.withMutableHostView { target in
            for y in 0..<height {
                (target.base + y * target.bytesPerRow).copyMemory(from: base + y * bytesPerRow, byteCount: width * format.bytesPerPixel)
            }
        }
        return copy
    }

    /// The rectangle at (x, y) of this view (same rows, same pitch), clamped to the view.
    package func cropped(x: Int, y: Int, width: Int, height: Int) -> ImageView {
        let x0 = min(max(0, x), self.width), y0 = min(max(0, y), self.height)
        return ImageView(base: base + y0 * bytesPerRow + x0 * 4, width: min(width, self.width - x0), height: min(height, self.height - y0),
                         bytesPerRow: bytesPerRow)
    }
}

/// A mutable, pitch-aware RGBA view for the stages. Size, format and layout are fixed; only pixel
/// values change.
package struct MutableImageView {
    package let base: UnsafeMutableRawPointer
    package let width: Int
    package let height: Int
    package let bytesPerRow: Int

    package var readOnly: ImageView { ImageView(base: UnsafeRawPointer(base), width: width, height: height, bytesPerRow: bytesPerRow) }

    @inline(__always)
    package func row(_ y: Int) -> UnsafeMutableBufferPointer<UInt8> {
        UnsafeMutableBufferPointer(start: (base + y * bytesPerRow).assumingMemoryBound(to: UInt8.self), count: width * 4)
    }

    @inline(__always)
    package func pixel(x: Int, y: Int) -> RGBA { readOnly.pixel(x: x, y: y) }

    @inline(__always)
    package func setPixel(x: Int, y: Int, _ value: RGBA) {
        let p = (base + y * bytesPerRow + x * 4).assumingMemoryBound(to: UInt8.self)
        p[0] = value.r; p[1] = value.g; p[2] = value.b; p[3] = value.a
    }

    /// Fills the whole image with one colour, row by row (honours the pitch).
    package func fill(_ colour: RGBA) {
        let word = colour.packed
        for y in 0..<height {
            (base + y * bytesPerRow).bindMemory(to: UInt32.self, capacity: width).update(repeating: word, count: width)
        }
    }
}

/// One RGBA pixel.
public struct RGBA: Equatable, Sendable, CustomStringConvertible {
    public var r: UInt8, g: UInt8, b: UInt8, a: UInt8
    public init(r: UInt8, g: UInt8, b: UInt8, a: UInt8 = 255) { self.r = r; self.g = g; self.b = b; self.a = a }
    public static let black = RGBA(r: 0, g: 0, b: 0)
    /// The four bytes as one little-endian word, in memory order R, G, B, A.
    public var packed: UInt32 { UInt32(r) | UInt32(g) << 8 | UInt32(b) << 16 | UInt32(a) << 24 }
    public var description: String { "RGBA(\(r), \(g), \(b), \(a))" }
}
