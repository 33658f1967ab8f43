internal import CCUDA
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The CUDA driver API of this process: libcuda.so.1 opened with dlopen (through Debian's
/// ffnvcodec loader), once.
final class CUDADriver: @unchecked Sendable {
    let api: UnsafeMutablePointer<CudaFunctions>
    let extra: TBCudaExtra

    private init() throws {
        guard let api = tb_cuda_load() else {
            throw CUDAError.unavailable("libcuda.so.1 (the NVIDIA driver) could not be loaded")
        }
        var extra = TBCudaExtra()
        guard tb_cuda_load_extra(&extra) == 0 else { throw CUDAError.unavailable("libcuda.so.1 lacks entry points this build needs") }
        self.api = api
        self.extra = extra
        try check(api.pointee.cuInit(0), "cuInit")
    }

    private static let loaded = LoadedOnce { try CUDADriver() }

    static func shared() throws -> CUDADriver { try loaded.get() }

    /// Throws for anything but CUDA_SUCCESS, naming the call and the driver's error.
    func check(_ result: CUresult, _ call: @autoclosure () -> String) throws {
        guard result != CUDA_SUCCESS else { return }
        var name: UnsafePointer<CChar>?
        var text: UnsafePointer<CChar>?
        _ = api.pointee.cuGetErrorName(result, &name)
        _ = api.pointee.cuGetErrorString(result, &text)
        throw CUDAError.driver(call: call(), name: name.map { String(cString: $0) } ?? "CUresult \(result.rawValue)",
                               message: text.map { String(cString: $0) } ?? "")
    }
}

/// One NVIDIA GPU and its primary context — the context the CUDA runtime (and so ONNX Runtime's
/// CUDA provider) uses, which we also hand to GStreamer's decoders: decoded frames, our kernels
/// and inference all share one address space, with no copies between contexts.
public final class CUDADevice: @unchecked Sendable {
    public let ordinal: Int
    public let name: String
    public let computeCapability: (major: Int, minor: Int)
    let driver: CUDADriver
    let context: CUcontext
    private let handle: CUdevice

    private let kernelCache = Locked<[String: CUDAFunction]>([:])

    /// GPUs the driver sees (0 without a driver).
    public static func count() -> Int {
        guard let driver = try? CUDADriver.shared() else { return 0 }
        var count: Int32 = 0
        guard (try? driver.check(driver.api.pointee.cuDeviceGetCount(&count), "cuDeviceGetCount")) != nil else { return 0 }
        return Int(count)
    }

    private static let opened = Locked<[Int: CUDADevice]>([:])

    /// The device `ordinal`, opened once per process.
    public static func open(_ ordinal: Int) throws -> CUDADevice {
        try opened.withValue { opened in
            if let device = opened[ordinal] { return device }
            let device = try CUDADevice(ordinal: ordinal)
            opened[ordinal] = device
            return device
        }
    }

    private init(ordinal: Int) throws {
        let driver = try CUDADriver.shared()
        let count = Self.count()
        guard ordinal >= 0 && ordinal < count else {
            throw CUDAError.unavailable("GPU \(ordinal) does not exist (\(count) found)")
        }
        let api = driver.api.pointee
        var device: CUdevice = 0
        try driver.check(api.cuDeviceGet(&device, Int32(ordinal)), "cuDeviceGet(\(ordinal))")
        var nameBuffer = [CChar](repeating: 0, count: 256)
        try driver.check(api.cuDeviceGetName(&nameBuffer, Int32(nameBuffer.count), device), "cuDeviceGetName")
        var major: Int32 = 0, minor: Int32 = 0
        try driver.check(api.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device), "cuDeviceGetAttribute")
        try driver.check(api.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device), "cuDeviceGetAttribute")
        var context: CUcontext?
        try driver.check(api.cuDevicePrimaryCtxRetain(&context, device), "cuDevicePrimaryCtxRetain")
        guard let context else { throw CUDAError.unavailable("no primary context for GPU \(ordinal)") }
        self.ordinal = ordinal
        self.driver = driver
        self.handle = device
        self.context = context
        self.name = String(decoding: nameBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        computeCapability = (Int(major), Int(minor))
    }

    /// Makes this device's context current on the calling thread (cheap; every entry point does it).
    public func makeCurrent() throws {
        try driver.check(driver.extra.ctxSetCurrent(context), "cuCtxSetCurrent")
    }

    /// Free and total device memory in bytes.
    public func memoryInfo() throws -> (free: Int, total: Int) {
        try makeCurrent()
        var free = 0, total = 0
        try driver.check(driver.extra.memGetInfo(&free, &total), "cuMemGetInfo")
        return (free, total)
    }

    /// Waits for all work on this device's context (the sample's `stream.synchronize()`).
    public func synchronize() throws {
        try makeCurrent()
        try driver.check(driver.extra.ctxSynchronize(), "cuCtxSynchronize")
    }

    // MARK: Memory

    /// `byteCount` bytes of device memory, freed when the returned object goes.
    public func allocate(byteCount: Int) throws -> DeviceMemory {
        try makeCurrent()
        var address: CUdeviceptr = 0
        try driver.check(driver.api.pointee.cuMemAlloc(&address, max(byteCount, 1)), "cuMemAlloc(\(byteCount))")
        return DeviceMemory(device: self, address: DevicePointer(address: address), byteCount: byteCount, pitch: byteCount)
    }

    /// A pitched 2-D allocation: `height` rows of `widthBytes`, each row aligned for coalesced access.
    public func allocatePitched(widthBytes: Int, height: Int) throws -> DeviceMemory {
        try makeCurrent()
        var address: CUdeviceptr = 0
        var pitch = 0
        try driver.check(driver.api.pointee.cuMemAllocPitch(&address, &pitch, widthBytes, height, 16), "cuMemAllocPitch(\(widthBytes)×\(height))")
        return DeviceMemory(device: self, address: DevicePointer(address: address), byteCount: pitch * height, pitch: pitch)
    }

    /// Copies `height` rows of `widthBytes` between host and device (or device and device) on
    /// `stream`; synchronises the stream when `wait`.
    package func copy2D(from source: MemoryLocation, sourcePitch: Int, to target: MemoryLocation, targetPitch: Int,
                        widthBytes: Int, height: Int, stream: CUDAStream? = nil, wait: Bool = true) throws {
        try makeCurrent()
        var deviceSource: CUdeviceptr = 0, deviceTarget: CUdeviceptr = 0
        var hostSource: UnsafeRawPointer?, hostTarget: UnsafeMutableRawPointer?
        switch source {
        case .device(let p): deviceSource = p.address
        case .host(let p): hostSource = UnsafeRawPointer(p)
        }
        switch target {
        case .device(let p): deviceTarget = p.address
        case .host(let p): hostTarget = p
        }
        let cuStream = stream?.handle
        try driver.check(tb_cuda_copy_2d(driver.api, hostTarget != nil ? 1 : 0, hostSource != nil ? 1 : 0, deviceSource, hostSource,
                                         sourcePitch, deviceTarget, hostTarget, targetPitch, widthBytes, height, cuStream),
                         "cuMemcpy2DAsync")
        if wait { try (stream ?? CUDAStream.null(self)).synchronize() }
    }

    /// Copies `byteCount` contiguous bytes: `copy2D` with one row.
    package func copy(byteCount: Int, from source: MemoryLocation, to target: MemoryLocation, stream: CUDAStream? = nil,
                      wait: Bool = true) throws {
        try copy2D(from: source, sourcePitch: byteCount, to: target, targetPitch: byteCount, widthBytes: byteCount, height: 1,
                   stream: stream, wait: wait)
    }

    /// Fills a pitched RGBA image with one colour (32-bit words).
    package func fill(_ address: DevicePointer, pitch: Int, width: Int, height: Int, colour: RGBA, stream: CUDAStream?) throws {
        try makeCurrent()
        try driver.check(driver.extra.memsetD2D32Async(address.address, pitch, colour.packed, width, height, stream?.handle), "cuMemsetD2D32Async")
    }

    /// Sets `count` 32-bit words from `address` to `value` on `stream`.
    package func set32(_ address: DevicePointer, to value: UInt32, count: Int, stream: CUDAStream?) throws {
        try makeCurrent()
        try driver.check(driver.extra.memsetD32Async(address.address, value, count, stream?.handle), "cuMemsetD32Async")
    }

    public func makeStream() throws -> CUDAStream {
        try makeCurrent()
        var stream: CUstream?
        try driver.check(driver.api.pointee.cuStreamCreate(&stream, UInt32(CU_STREAM_NON_BLOCKING)), "cuStreamCreate")
        return CUDAStream(device: self, handle: stream)
    }

    // MARK: Kernels

    /// The kernel `name` from CUDA C `source`, compiled by NVRTC for this GPU's architecture on
    /// first use (machine code cached on disk, see `KernelCache`) and loaded once per process.
    public func function(named name: String, source: String) throws -> CUDAFunction {
        let key = name + "\u{0}" + source
        if let cached = kernelCache.withValue({ $0[key] }) { return cached }
        let architecture = "sm_\(computeCapability.major)\(computeCapability.minor)"
        let cubin = try KernelCache.cubin(source: source, name: name, architecture: architecture)
        try makeCurrent()
        var module: CUmodule?
        try cubin.withUnsafeBytes { bytes in
            try driver.check(driver.api.pointee.cuModuleLoadData(&module, bytes.baseAddress), "cuModuleLoadData(\(name))")
        }
        var function: CUfunction?
        try driver.check(driver.api.pointee.cuModuleGetFunction(&function, module, name), "cuModuleGetFunction(\(name))")
        guard let function else { throw CUDAError.unavailable("kernel \(name) not found in its module") }
        let result = CUDAFunction(device: self, name: name, handle: function)
        kernelCache.withValue { $0[key] = result }
        return result
    }
}

/// Either side of a copy.
package enum MemoryLocation {
    case host(UnsafeMutableRawPointer)
    case device(DevicePointer)
}

/// Device memory that is freed when the last reference goes.
public final class DeviceMemory: ImageMemoryOwner, @unchecked Sendable {
    public let device: CUDADevice
    public let address: DevicePointer
    public let byteCount: Int
    /// Bytes per row for pitched allocations (the byte count otherwise).
    public let pitch: Int

    init(device: CUDADevice, address: DevicePointer, byteCount: Int, pitch: Int) {
        self.device = device
        self.address = address
        self.byteCount = byteCount
        self.pitch = pitch
    }

    deinit {
        try? device.makeCurrent()
        _ = device.driver.api.pointee.cuMemFree(address.address)
    }
}

/// A CUDA stream of one device; destroyed when it goes.
public final class CUDAStream: @unchecked Sendable {
    public let device: CUDADevice
    let handle: CUstream?

    init(device: CUDADevice, handle: CUstream?) {
        self.device = device
        self.handle = handle
    }

    /// The device's legacy default (null) stream, which the sample's CuPy edit runs on.
    public static func null(_ device: CUDADevice) -> CUDAStream { CUDAStream(device: device, handle: nil) }

    public func synchronize() throws {
        try device.makeCurrent()
        try device.driver.check(device.driver.api.pointee.cuStreamSynchronize(handle), "cuStreamSynchronize")
    }

    deinit {
        if let handle {
            try? device.makeCurrent()
            _ = device.driver.api.pointee.cuStreamDestroy(handle)
        }
    }
}

/// A kernel's parameters in order: each one a device pointer, a 32-bit int or a float.
public struct KernelArguments: Sendable {
    // One 8-byte slot per parameter; the driver reads each parameter's own size from its slot
    // (little-endian, so 4-byte values sit in the low half).
    fileprivate var slots: [UInt64] = []

    public init() {}
    public mutating func append(_ pointer: DevicePointer) { slots.append(pointer.address) }
    public mutating func append(_ value: Int32) { slots.append(UInt64(UInt32(bitPattern: value))) }
    public mutating func append(_ value: Int) { append(Int32(truncatingIfNeeded: value)) }
    public mutating func append(_ value: Float) { slots.append(UInt64(value.bitPattern)) }

    /// A device image as our kernels take one: address, bytes per row, width, height. Host
    /// images throw, naming `stage`.
    package mutating func append(image: ImageBuffer, for stage: String) throws {
        guard let address = image.deviceAddress else { throw CUDAError.hostPixels(stage) }
        append(address)
        append(image.bytesPerRow)
        append(image.width)
        append(image.height)
    }
}

/// A compiled, loaded kernel (CuPy's `RawKernel`).
public final class CUDAFunction: @unchecked Sendable {
    public let device: CUDADevice
    public let name: String
    let handle: CUfunction

    init(device: CUDADevice, name: String, handle: CUfunction) {
        self.device = device
        self.name = name
        self.handle = handle
    }

    /// Launches on `stream` (the null stream when nil). Launch errors are checked; execution
    /// errors surface at the next synchronisation.
    public func launch(grid: (x: Int, y: Int, z: Int), block: (x: Int, y: Int, z: Int), sharedBytes: Int = 0,
                       stream: CUDAStream? = nil, arguments: KernelArguments) throws {
        try device.makeCurrent()
        var slots = arguments.slots
        let result = slots.withUnsafeMutableBufferPointer { slots -> CUresult in
            var parameters: [UnsafeMutableRawPointer?] = (0..<slots.count).map { UnsafeMutableRawPointer(slots.baseAddress! + $0) }
            return parameters.withUnsafeMutableBufferPointer { parameters in
                tb_cuda_launch(device.driver.api, handle, UInt32(grid.x), UInt32(grid.y), UInt32(grid.z),
                               UInt32(block.x), UInt32(block.y), UInt32(block.z), UInt32(sharedBytes), stream?.handle,
                               parameters.baseAddress)
            }
        }
        try device.driver.check(result, "cuLaunchKernel(\(name))")
    }

    /// One thread per pixel of a `width × height` image, in 32 × 8 blocks.
    public func launch2D(width: Int, height: Int, stream: CUDAStream? = nil, arguments: KernelArguments) throws {
        guard width > 0, height > 0 else { return }
        try launch(grid: ((width + 31) / 32, (height + 7) / 8, 1), block: (32, 8, 1), stream: stream, arguments: arguments)
    }
}
