/// Runs a model on a batch. The ONNX Runtime engine is the one that ships; the seam lets a GPU
/// engine (device I/O binding) or a test double with a real model behind it slot in.
public protocol InferenceEngine: AnyObject, Sendable {
    /// The model's input name and shape; -1 marks a dynamic dimension (the batch, usually).
    var inputName: String { get }
    var inputShape: [Int] { get }
    var outputNames: [String] { get }
    /// Each output's shape as the model declares it (-1 for a dynamic dimension), so a detector
    /// can check the model against its parser before any frame arrives.
    var outputShapes: [[Int]] { get }
    /// What actually runs it, for logs and the benchmark ("CPU", "CUDA").
    var executionProviderName: String { get }

    /// Runs the model on `data` laid out as `shape` (NCHW float). A model with a fixed batch gets
    /// the batch split or padded by the engine; the outputs always have `shape[0]` as batch.
    func run(shape: [Int], data: UnsafeBufferPointer<Float>) throws -> [Tensor]

    /// The CUDA device whose memory `run(shape:deviceInput:)` reads; nil when the engine runs on
    /// the CPU, where only `run(shape:data:)` applies.
    var inputDeviceID: Int? { get }

    /// Runs the model on NCHW float input already in `inputDeviceID`'s memory at
    /// `deviceInput.address` (the GPU pre-processor writes it there, so no host round trip). The
    /// writes must be complete (their stream synchronized) before the call. Outputs come back to
    /// host memory exactly as `run(shape:data:)` returns them, since the parsers run on the CPU.
    func run(shape: [Int], deviceInput: DevicePointer) throws -> [Tensor]

    /// `run(shape:deviceInput:)` with the outputs left in device memory for `body` (valid only
    /// inside it; the device work that wrote them is complete), so they can be filtered there
    /// rather than downloaded whole. nil when this engine or shape can't (outputs that are not
    /// float32, a fixed model batch other than `shape[0]`): use `run(shape:deviceInput:)` then.
    func withDeviceOutputs<R>(shape: [Int], deviceInput: DevicePointer, _ body: ([DeviceTensor]) throws -> R) throws -> R?
}

extension InferenceEngine {
    /// Host-only engines: no device input.
    public var inputDeviceID: Int? { nil }

    public func run(shape: [Int], deviceInput: DevicePointer) throws -> [Tensor] {
        throw InferenceError.run(message: "\(type(of: self)) has no device input")
    }

    public func withDeviceOutputs<R>(shape: [Int], deviceInput: DevicePointer, _ body: ([DeviceTensor]) throws -> R) throws -> R? {
        nil
    }

    public func run(input: Tensor) throws -> [Tensor] {
        try input.data.withUnsafeBufferPointer { try run(shape: input.shape, data: $0) }
    }
}

/// Errors of loading and running models, with ONNX Runtime's own message where it gave one.
public enum InferenceError: Error, CustomStringConvertible, Sendable {
    case runtimeUnavailable(String)
    case modelLoad(path: String, message: String)
    case unsupportedModel(path: String, message: String)
    case run(message: String)

    public var description: String {
        switch self {
        case .runtimeUnavailable(let m): return "ONNX Runtime is not available: \(m)"
        case .modelLoad(let p, let m): return "cannot load model '\(p)': \(m)"
        case .unsupportedModel(let p, let m): return "unsupported model '\(p)': \(m)"
        case .run(let m): return "inference failed: \(m)"
        }
    }
}
