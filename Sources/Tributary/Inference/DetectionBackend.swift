/// The part of detection that depends on where the frames live: pre-processing and the engine
/// run. Chosen once, when the detector is bound to its frames (`Detector.bind(to:)`), never per
/// batch: host frames, or one GPU's frames (pre-processed there, and with the CUDA provider read
/// in place, filtered there too).
protocol DetectionBackend: AnyObject {
    /// The model's outputs for `frames`, the batch tensor being `shape`.
    func infer(_ frames: [Frame], shape: [Int], transform: LetterboxTransform) throws -> DetectionOutputs
}

/// What inference hands to the parsers.
enum DetectionOutputs {
    /// The outputs in host memory, parsed on the host (`OutputParsers`).
    case tensors([Tensor])
    /// Each frame's boxes that the GPU kept (best class, pre-cluster threshold), before clustering.
    case kept([[Detection]])
}

/// Host frames (and device frames of a grey model, whose pre-processing runs on the CPU only):
/// letterboxed into one reused host tensor, run by the engine wherever it runs.
final class HostDetectionBackend: DetectionBackend {
    private let preprocessor: Preprocessor
    private let engine: InferenceEngine
    private let times: StageTimes?
    private var input: [Float] = []

    init(preprocessor: Preprocessor, engine: InferenceEngine, times: StageTimes?) {
        self.preprocessor = preprocessor
        self.engine = engine
        self.times = times
    }

    func infer(_ frames: [Frame], shape: [Int], transform: LetterboxTransform) throws -> DetectionOutputs {
        let hostFrames = try frames.map { frame in
            var copy = frame
            copy.image = try frame.image.onHost()
            return copy
        }
        return .tensors(try runOnHost(engine, shape: shape, input: &input, times: times) { preprocessor.process(hostFrames, into: $0) })
    }
}

/// One GPU's frames: pre-processed into a device tensor; the CUDA provider reads it in place
/// (and, with a `yolo`/`yolov8` parser, the GPU keeps only the boxes above threshold), or it comes
/// down once for an engine on the CPU.
final class DeviceDetectionBackend: DetectionBackend {
    private let preprocessor: DevicePreprocessor
    private let engine: InferenceEngine
    private let configuration: InferConfiguration
    /// The engine reads this GPU's memory (the CUDA provider on the same GPU).
    private let engineOnDevice: Bool
    private let filter: DeviceDetectionFilter?
    private let times: StageTimes?
    private var input: [Float] = []

    init(device: CUDADevice, parameters: PreprocessParameters, engine: InferenceEngine, configuration: InferConfiguration,
         filtersOutputs: Bool, times: StageTimes?) throws {
        preprocessor = try DevicePreprocessor(device: device, parameters: parameters)
        self.engine = engine
        self.configuration = configuration
        engineOnDevice = engine.inputDeviceID == device.ordinal
        let filterable = filtersOutputs && configuration.outputParser != .ssd && engine.outputNames.count == 1
        filter = engineOnDevice && filterable ? try DeviceDetectionFilter(device: device, stream: device.makeStream()) : nil
        self.times = times
    }

    func infer(_ frames: [Frame], shape: [Int], transform: LetterboxTransform) throws -> DetectionOutputs {
        let tensor = try times.measure(.detectPreprocess) { try preprocessor.process(frames, transform: transform) }
        guard engineOnDevice else {
            let device = preprocessor.device
            return .tensors(try runOnHost(engine, shape: shape, input: &input, times: times) { host in
                let bytes = host.count * MemoryLayout<Float>.size
                try device.copy(byteCount: bytes, from: .device(tensor), to: .host(UnsafeMutableRawPointer(host.baseAddress!)))
            })
        }
        if let filter, let kept = try keptBoxes(filter, frameCount: frames.count, shape: shape, tensor: tensor) { return .kept(kept) }
        // No filter, or outputs the engine cannot leave on the device for this shape: download.
        return .tensors(try times.measure(.detectInference) { try engine.run(shape: shape, deviceInput: tensor) })
    }

    /// The boxes the GPU keeps per frame; nil when the engine cannot leave its outputs on the
    /// device (outputs not float32, a fixed model batch other than the batch's).
    private func keptBoxes(_ filter: DeviceDetectionFilter, frameCount: Int, shape: [Int], tensor: DevicePointer) throws -> [[Detection]]? {
        let configuration = self.configuration
        return try times.measure(.detectInference) {
            try engine.withDeviceOutputs(shape: shape, deviceInput: tensor) { deviceOutputs in
                let output = deviceOutputs[0]
                let layout = try OutputParsers.denseLayout(configuration.outputParser, name: output.name, shape: output.shape,
                                                           classCount: configuration.numDetectedClasses)!
                guard layout.batch == frameCount else {
                    throw OutputParserError(message: "output '\(output.name)' has batch \(layout.batch) for \(frameCount) frames")
                }
                let thresholds = (0..<layout.classes).map { configuration.attributes(forClass: $0).preClusterThreshold }
                return try filter.detections(in: output, layout: layout, thresholds: thresholds)
            }
        }
    }
}

/// Fills the reused host input buffer (exactly the tensor of `shape`) with `fill` and runs the
/// engine on it.
private func runOnHost(_ engine: InferenceEngine, shape: [Int], input: inout [Float], times: StageTimes?,
                       fill: (UnsafeMutableBufferPointer<Float>) throws -> Void) throws -> [Tensor] {
    let elements = shape.reduce(1, *)
    if input.count < elements { input = [Float](repeating: 0, count: elements) }
    try times.measure(.detectPreprocess) {
        try input.withUnsafeMutableBufferPointer { try fill(UnsafeMutableBufferPointer(rebasing: $0[0..<elements])) }
    }
    return try times.measure(.detectInference) {
        try input.withUnsafeBufferPointer { try engine.run(shape: shape, data: UnsafeBufferPointer(rebasing: $0[0..<elements])) }
    }
}
