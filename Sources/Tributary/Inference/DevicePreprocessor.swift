/// The GPU path's pre-processing: each RGBA device frame → the network's NCHW float input in
/// device memory, in one kernel per frame (bilinear with half-pixel centres, letterbox padding,
/// `net-scale-factor × (x − offset)`, channel order: the CPU `Preprocessor`'s arithmetic), so
/// ONNX Runtime's CUDA provider reads it where it is.
package final class DevicePreprocessor: @unchecked Sendable {
    let device: CUDADevice
    let parameters: PreprocessParameters
    private let kernel: CUDAFunction
    private let stream: CUDAStream
    private var input: DeviceMemory?

    package init(device: CUDADevice, parameters: PreprocessParameters) throws {
        precondition(parameters.channels == 3, "the GPU pre-processor writes RGB or BGR")
        self.device = device
        self.parameters = parameters
        kernel = try device.function(named: "letterbox_preprocess", source: CUDAKernels.preprocess)
        stream = try device.makeStream()
    }

    /// Writes every frame's slice of the input tensor and waits for it; returns the tensor's
    /// address (valid until the next call).
    package func process(_ frames: [Frame], transform t: LetterboxTransform) throws -> DevicePointer {
        let p = parameters
        let perFrame = p.channels * p.networkWidth * p.networkHeight
        let byteCount = frames.count * perFrame * MemoryLayout<Float>.size
        if (input?.byteCount ?? 0) < byteCount { input = try device.allocate(byteCount: byteCount) }
        let base = input!.address
        for (index, frame) in frames.enumerated() {
            var arguments = KernelArguments()
            try arguments.append(image: frame.image, for: "GPU pre-processing")
            arguments.append(DevicePointer(address: base.address + UInt64(index * perFrame * MemoryLayout<Float>.size)))
            arguments.append(p.networkWidth)
            arguments.append(p.networkHeight)
            arguments.append(t.scaledWidth)
            arguments.append(t.scaledHeight)
            arguments.append(t.padX)
            arguments.append(t.padY)
            arguments.append(p.scaleFactor)
            arguments.append(p.offsets[0])
            arguments.append(p.offsets[1])
            arguments.append(p.offsets[2])
            arguments.append(Int32(p.colorFormat == .bgr ? 1 : 0))
            try withExtendedLifetime(frame.image) {
                try kernel.launch2D(width: p.networkWidth, height: p.networkHeight, stream: stream, arguments: arguments)
            }
        }
        try stream.synchronize()
        return base
    }
}
