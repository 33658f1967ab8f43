import Logging

/// The primary detector (nvinfer, process-mode 1): pre-processes the whole batch, runs the model
/// once, parses and clusters each frame's detections, maps them back to muxer pixels and attaches
/// them as `ObjectMeta`. With `interval = k` it runs on every (k+1)-th batch; the others carry no
/// new objects.
public final class Detector: @unchecked Sendable {
    public let configuration: InferConfiguration
    public let engine: InferenceEngine
    public let preprocessor: Preprocessor
    private var input: [Float] = []
    private var batchesSeen = 0
    private let logger: Logger

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
        self.configuration = configuration
        self.engine = engine
        self.logger = logger
        preprocessor = Preprocessor(parameters: PreprocessParameters(
            networkWidth: shape[3], networkHeight: shape[2], colorFormat: configuration.modelColorFormat,
            scaleFactor: configuration.netScaleFactor, offsets: configuration.offsets,
            maintainAspectRatio: configuration.maintainAspectRatio, symmetricPadding: configuration.symmetricPadding))
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

    /// Runs on the batch if the interval says so and attaches the objects to its metadata.
    public func process(_ batch: inout FrameBatch) throws {
        defer { batchesSeen += 1 }
        guard batchesSeen % (configuration.interval + 1) == 0, !batch.frames.isEmpty else { return }
        let detections = try detect(batch.frames)
        for (index, objects) in detections.enumerated() {
            batch.meta.frames[index].objects = objects.map { detection in
                ObjectMeta(classID: detection.classID, label: label(of: detection.classID), confidence: detection.confidence,
                           rect: detection.rect, detectorID: configuration.gieUniqueID)
            }
        }
    }

    public func label(of classID: Int) -> String {
        classID >= 0 && classID < configuration.labels.count ? configuration.labels[classID] : "class\(classID)"
    }

    /// Detections per frame, in muxer pixels, clustered and filtered as configured.
    public func detect(_ frames: [Frame]) throws -> [[Detection]] {
        let count = frames.count
        let perFrame = preprocessor.frameElementCount
        if input.count < count * perFrame { input = [Float](repeating: 0, count: count * perFrame) }
        input.withUnsafeMutableBufferPointer { preprocessor.process(frames, into: $0) }
        let p = preprocessor.parameters
        let shape = [count, p.channels, p.networkHeight, p.networkWidth]
        let outputs = try input.withUnsafeBufferPointer { try engine.run(shape: shape, data: UnsafeBufferPointer(rebasing: $0[0..<(count * perFrame)])) }
        let width = frames[0].image.width, height = frames[0].image.height
        let transform = preprocessor.prepare(sourceWidth: width, sourceHeight: height)
        let configuration = self.configuration
        let attributes: (Int) -> ClassAttributes = { configuration.attributes(forClass: $0) }
        return try (0..<count).map { index in
            let raw = try OutputParsers.parse(configuration.outputParser, outputs: outputs, batchIndex: index,
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
    }
}
