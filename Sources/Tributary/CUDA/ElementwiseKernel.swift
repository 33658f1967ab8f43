/// CuPy's `ElementwiseKernel` for RGBA frames on the GPU: a CUDA C expression over the floats
/// `r`, `g`, `b`, `a` (0…255), compiled by NVRTC the first time it meets a GPU (machine code
/// cached on disk) and run over a frame in place, e.g. the sample's edit:
///
///     let halveRed = ElementwiseKernel(name: "halve_red", expression: "r = 0.5f * r + 0.5f")
///     try halveRed(&pixels)   // device frames only; runs on the null stream and synchronises
public final class ElementwiseKernel: Sendable {
    public let name: String
    public let expression: String
    public let source: String
    /// The loaded kernel per GPU, so a call per frame costs one dictionary look-up.
    private let functions = Locked<[Int: CUDAFunction]>([:])

    public init(name: String, expression: String) {
        self.name = name
        self.expression = expression
        source = CUDAKernels.elementwise(name: name, expression: expression)
    }

    /// Runs over every pixel of a device frame on `stream` (the null stream by default, as the
    /// sample) and, when `synchronize`, waits for it. Host frames throw `CUDAError.hostPixels`.
    public func callAsFunction(_ pixels: inout FramePixels, stream: CUDAStream? = nil, synchronize: Bool = true) throws {
        guard case .cuda(let deviceID) = pixels.location else { throw CUDAError.hostPixels("kernel \(name)") }
        let function = try functions.withValue { loaded in
            if let function = loaded[deviceID] { return function }
            let function = try CUDADevice.open(deviceID).function(named: name, source: source)
            loaded[deviceID] = function
            return function
        }
        let device = function.device
        let width = pixels.width, height = pixels.height
        try pixels.withUnsafeDevicePixels { pointer, bytesPerRow in
            var arguments = KernelArguments()
            arguments.append(pointer)
            arguments.append(bytesPerRow)
            arguments.append(width)
            arguments.append(height)
            try function.launch2D(width: width, height: height, stream: stream, arguments: arguments)
        }
        if synchronize { try (stream ?? CUDAStream.null(device)).synchronize() }
    }
}

/// CuPy's `RawKernel`: any CUDA C kernel by name, compiled for the frame's GPU on first use.
public final class RawKernel: Sendable {
    public let name: String
    public let source: String

    public init(name: String, source: String) {
        self.name = name
        self.source = source
    }

    /// The loaded kernel on `device`, to `launch` with its arguments.
    public func function(on device: CUDADevice) throws -> CUDAFunction {
        try device.function(named: name, source: source)
    }
}
