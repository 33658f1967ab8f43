import Dispatch
import Logging

/// The primary detector (nvinfer, process-mode 1): pre-processes the whole batch, runs the model
/// once, parses and clusters each frame's detections, maps them back to muxer pixels and attaches
/// them as `ObjectMeta`. With `interval = k` it runs on every (k+1)-th batch; the others carry no
/// new objects.
public final class Detector: @unchecked Sendable {
    public let configuration: InferConfiguration
    public let engine: InferenceEngine
    public let preprocessor: Preprocessor
    private var batchesSeen = 0
    private let logger: Logger
    /// Where `detect` spends its time (pre-processing, inference, parsing), when measured. Set
    /// before `bind(to:)`.
    var stageTimes: StageTimes?
    /// On the GPU path with a `yolo` or `yolov8` parser: pick each box's class and apply the
    /// pre-cluster thresholds on the GPU, so only the kept boxes come down (the default); false
    /// downloads the whole output and parses it on the host, as DeepStream's nvinfer does. Set
    /// before `bind(to:)`.
    public var filtersOutputsOnDevice = true
    /// Pre-processing and inference for where the frames live: host until `bind(to:)` says a GPU.
    private var backend: DetectionBackend
    /// The GPU whose frames `bind(to:)` chose, if any.
    private var framesDevice: CUDADevice?

    public init(configuration: InferConfiguration, engine: InferenceEngine, logger: Logger) throws {
        let shape = engine.inputShape
        let model = configuration.onnxFile ?? "model"
        guard shape.count == 4, shape[2] > 0, shape[3] > 0 else {
            throw InferenceError.unsupportedModel(path: model, message: "input '\(engine.inputName)' has shape \(shape); expected [N, C, H, W] with fixed H and W")
        }
        let expectedChannels = configuration.modelColorFormat == .gray ? 1 : 3
        guard shape[1] == expectedChannels || shape[1] < 0 else {
            throw InferenceError.unsupportedModel(path: model, message: "input has \(shape[1]) channels but model-color-format=\(configuration.modelColorFormat.rawValue) gives \(expectedChannels)")
        }
        try Self.checkOutputs(of: engine, configuration: configuration, model: model)
        self.configuration = configuration
        self.engine = engine
        self.logger = logger
        let preprocessor = Preprocessor(parameters: PreprocessParameters(
            networkWidth: shape[3], networkHeight: shape[2], colorFormat: configuration.modelColorFormat,
            scaleFactor: configuration.netScaleFactor, offsets: configuration.offsets,
            maintainAspectRatio: configuration.maintainAspectRatio, symmetricPadding: configuration.symmetricPadding))
        self.preprocessor = preprocessor
        backend = HostDetectionBackend(preprocessor: preprocessor, engine: engine, times: nil)
    }

    /// Chooses, once, how the frames are pre-processed and run: host frames (`nil`), or frames in
    /// `device`'s memory (pre-processed there; read in place by the CUDA provider on that GPU).
    /// A grey model's pre-processing runs on the CPU only, so its device frames come down.
    public func bind(to device: CUDADevice?) throws {
        framesDevice = device
        guard let device, preprocessor.parameters.channels == 3 else {
            backend = HostDetectionBackend(preprocessor: preprocessor, engine: engine, times: stageTimes)
            return
        }
        backend = try DeviceDetectionBackend(device: device, parameters: preprocessor.parameters, engine: engine,
                                             configuration: configuration, filtersOutputs: filtersOutputsOnDevice, times: stageTimes)
    }

    /// The model's declared outputs against the configured parser, when the session is made: a
    /// model of the wrong layout is refused before any source starts, not at the first batch.
    /// Dynamic dimensions other than the batch leave the check to the first inference.
    static func checkOutputs(of engine: InferenceEngine, configuration: InferConfiguration, model: String) throws {
        let kind = configuration.outputParser
        // ssd's four outputs are told apart by name and checked at the first batch.
        guard kind != .ssd else { return }
        guard engine.outputShapes.count == 1 else {
            throw InferenceError.unsupportedModel(path: model, message: "\(kind.rawValue) parser: expected 1 output, the model has \(engine.outputShapes.count): \(engine.outputNames)")
        }
        var shape = engine.outputShapes[0]
        if !shape.isEmpty, shape[0] < 0 { shape[0] = 1 }
        guard shape.allSatisfy({ $0 >= 0 }) else { return }
        do {
            _ = try OutputParsers.denseLayout(kind, name: engine.outputNames[0], shape: shape, classCount: configuration.numDetectedClasses)
        } catch let error as OutputParserError {
            throw InferenceError.unsupportedModel(path: model, message: error.message)
        }
    }

    /// Loads the model the configuration names (the INT8 one for `network-mode=1` when given) in
    /// ONNX Runtime with the configured provider and threads.
    public static func load(configuration: InferConfiguration, logger: Logger) throws -> Detector {
        var model = configuration.onnxFile
        if configuration.networkMode == 1, let int8 = configuration.int8OnnxFile { model = int8 }
        guard let model else {
            throw InferConfigurationError(path: configuration.path, message: "no onnx-file given")
        }
        if configuration.networkMode == 2 {
            logger.notice("network-mode=2 (FP16) runs in FP32 on the CPU provider")
        }
        let engine = try ONNXRuntimeEngine(modelPath: model, executionProvider: configuration.executionProvider.rawValue,
                                           intraOpThreads: configuration.intraOpThreads, gpuID: configuration.gpuID, logger: logger)
        return try Detector(configuration: configuration, engine: engine, logger: logger)
    }

    /// Runs the model once on a batch of `batchSize` blank images: ONNX Runtime sets up its kernels
    /// for a batch shape (and cuDNN its choices on a GPU) on the first run of that shape.
    public func warmUp(batchSize: Int) throws {
        let p = preprocessor.parameters
        let shape = [batchSize, p.channels, p.networkHeight, p.networkWidth]
        let zeros = [Float](repeating: 0, count: shape.reduce(1, *))
        _ = try zeros.withUnsafeBufferPointer { try engine.run(shape: shape, data: $0) }
    }

    /// Another detector of the same configuration with its own ONNX Runtime session and buffers,
    /// so two batches can be in detection at once (the GPU path's detection workers).
    func sibling() throws -> Detector {
        let sibling = try Detector.load(configuration: configuration, logger: logger)
        sibling.stageTimes = stageTimes
        sibling.filtersOutputsOnDevice = filtersOutputsOnDevice
        try sibling.bind(to: framesDevice)
        return sibling
    }

    /// Runs on the batch if the interval says so and attaches the objects to its metadata.
    public func process(_ batch: inout FrameBatch) throws {
        defer { batchesSeen += 1 }
        try process(&batch, sequence: batchesSeen)
    }

    /// `process` for the batch at position `sequence` of the stream of batches (0, 1, …), which
    /// the interval counts: with several detectors taking turns, each sees only some batches.
    public func process(_ batch: inout FrameBatch, sequence: Int) throws {
        guard sequence % (configuration.interval + 1) == 0, !batch.frames.isEmpty else { return }
        let detections = try detect(batch.frames)
        for (index, objects) in detections.enumerated() {
            batch.meta.frames[index].objects = objects.map { detection in
                ObjectMeta(classID: detection.classID, label: label(of: detection.classID), confidence: detection.confidence,
                           rect: detection.rect, detectorID: configuration.gieUniqueID)
            }
            batch.meta.frames[index].inferenceDone = true
        }
    }

    public func label(of classID: Int) -> String {
        classID >= 0 && classID < configuration.labels.count ? configuration.labels[classID] : "class\(classID)"
    }

    /// Detections per frame, in muxer pixels, clustered and filtered as configured.
    public func detect(_ frames: [Frame]) throws -> [[Detection]] {
        let count = frames.count
        let p = preprocessor.parameters
        let shape = [count, p.channels, p.networkHeight, p.networkWidth]
        let width = frames[0].image.width, height = frames[0].image.height
        let transform = preprocessor.prepare(sourceWidth: width, sourceHeight: height)
        let configuration = self.configuration
        let attributes: @Sendable (Int) -> ClassAttributes = { configuration.attributes(forClass: $0) }
        let (kept, hostOutputs): ([[Detection]]?, [Tensor])
        switch try backend.infer(frames, shape: shape, transform: transform) {
        case .tensors(let tensors): (kept, hostOutputs) = (nil, tensors)
        case .kept(let detections): (kept, hostOutputs) = (detections, [])
        }
        // Frames parse independently: in parallel (64 streams on a GPU make this the batch
        // thread's largest CPU cost).
        @Sendable func parse(_ index: Int) throws -> [Detection] {
            let raw = try kept?[index] ?? OutputParsers.parse(configuration.outputParser, outputs: hostOutputs, batchIndex: index,
                                                              inputWidth: p.networkWidth, inputHeight: p.networkHeight,
                                                              classCount: configuration.numDetectedClasses,
                                                              threshold: { attributes($0).preClusterThreshold })
            let clustered = Clustering.cluster(raw, mode: configuration.clusterMode, attributes: attributes)
            let mapped = clustered.map { d in
                Detection(classID: d.classID, confidence: d.confidence,
                          rect: transform.toSource(d.rect, sourceWidth: width, sourceHeight: height))
            }
            return Clustering.filterSize(mapped, attributes: attributes).filter { $0.rect.width > 0 && $0.rect.height > 0 }
        }
        return try stageTimes.measure(.detectParse) {
            guard count > 1 else { return [try parse(0)] }
            let results = Locked([Result<[Detection], Error>](repeating: .success([]), count: count))
            DispatchQueue.concurrentPerform(iterations: count) { index in
                let result = Result { try parse(index) }
                results.withValue { $0[index] = result }
            }
            return try results.withValue { $0 }.map { try $0.get() }
        }
    }
}
