#if canImport(CONNXRuntime)
internal import CONNXRuntime
#endif
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// ONNX Runtime through its C API. The library is opened with dlopen at run time (the package
/// builds and its other parts run without it); one session per model; the execution provider
/// comes from the config (CPU here, CUDA where `onnxruntime-gpu` is installed).
public final class ONNXRuntimeEngine: InferenceEngine, @unchecked Sendable {
    public let modelPath: String
    public let inputName: String
    public let inputShape: [Int]
    public let outputNames: [String]
    public let executionProviderName: String

    /// Where the library is looked for, in order: `$TRIBUTARY_ONNXRUNTIME_LIBRARY`, the set-up
    /// script's `.deps/onnxruntime/lib` (from the working directory, then from the executable's
    /// folder upwards, as for `.build/release/…`), then the loader's own search path.
    public static func libraryCandidates() -> [String] {
        var candidates: [String] = []
        if let env = getenv("TRIBUTARY_ONNXRUNTIME_LIBRARY") { candidates.append(String(cString: env)) }
        let relative = ".deps/onnxruntime/lib/libonnxruntime.so"
        candidates.append(relative)
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        if length > 0 {
            var folder = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            for _ in 0..<4 {
                guard let slash = folder.lastIndex(of: "/") else { break }
                folder = String(folder[..<slash])
                candidates.append(folder + "/" + relative)
            }
        }
        candidates.append("libonnxruntime.so")
        candidates.append("libonnxruntime.so.1")
        return candidates
    }

    #if canImport(CONNXRuntime)
    private let api: UnsafePointer<OrtApi>
    private let runtime: Runtime
    private let session: OpaquePointer
    private let memoryInfo: OpaquePointer
    private let fixedBatch: Int?
    private let outputElementTypes: [ONNXTensorElementDataType]

    /// - Parameters:
    ///   - intraOpThreads: 0 lets ONNX Runtime choose.
    ///   - executionProvider: "CPU" or "CUDA"; CUDA falls back to CPU with one warning when its
    ///     provider library is missing.
    public init(modelPath: String, executionProvider: String = "CPU", intraOpThreads: Int = 0, gpuID: Int = 0,
                allowSpinning: Bool = false, logger: Logger) throws {
        self.modelPath = modelPath
        runtime = try Runtime.shared()
        api = runtime.api
        let api = self.api
        func check(_ status: OpaquePointer?, _ what: String) throws {
            if let message = Runtime.consume(status, api: api) { throw InferenceError.modelLoad(path: modelPath, message: "\(what): \(message)") }
        }
        var options: OpaquePointer?
        try check(api.pointee.CreateSessionOptions(&options), "session options")
        defer { api.pointee.ReleaseSessionOptions(options) }
        try check(api.pointee.SetIntraOpNumThreads(options, Int32(intraOpThreads)), "intra-op threads")
        try check(api.pointee.SetInterOpNumThreads(options, 1), "inter-op threads")
        try check(api.pointee.SetSessionGraphOptimizationLevel(options, ORT_ENABLE_ALL), "graph optimisation level")
        // ORT's workers spin between runs by default; beside GStreamer's decoder and converter
        // threads on a small box that spinning takes the cores the decoders need.
        try check(api.pointee.AddSessionConfigEntry(options, "session.intra_op.allow_spinning", allowSpinning ? "1" : "0"), "spinning")
        var provider = "CPU"
        if executionProvider.uppercased() == "CUDA" {
            var cudaOptions: OpaquePointer?
            var message = Runtime.consume(api.pointee.CreateCUDAProviderOptions(&cudaOptions), api: api)
            if message == nil, let cudaOptions {
                let keys = ["device_id"], values = [String(gpuID)]
                message = withCStrings(keys) { k in withCStrings(values) { v in
                    Runtime.consume(api.pointee.UpdateCUDAProviderOptions(cudaOptions, k, v, 1), api: api)
                } }
                if message == nil {
                    message = Runtime.consume(api.pointee.SessionOptionsAppendExecutionProvider_CUDA_V2(options, cudaOptions), api: api)
                }
                api.pointee.ReleaseCUDAProviderOptions(cudaOptions)
            }
            if let message {
                logger.warning("CUDA execution provider unavailable (\(message)); using the CPU provider")
                printError("WARNING: CUDA execution provider unavailable; falling back to the CPU provider: \(message)")
            } else {
                provider = "CUDA"
            }
        }
        executionProviderName = provider
        var session: OpaquePointer?
        if let message = Runtime.consume(api.pointee.CreateSession(runtime.environment, modelPath, options, &session), api: api) {
            throw InferenceError.modelLoad(path: modelPath, message: message)
        }
        guard let session else { throw InferenceError.modelLoad(path: modelPath, message: "no session") }
        self.session = session

        var allocator: UnsafeMutablePointer<OrtAllocator>?
        try check(api.pointee.GetAllocatorWithDefaultOptions(&allocator), "allocator")
        func name(_ index: Int, input: Bool) throws -> String {
            var raw: UnsafeMutablePointer<CChar>?
            let status = input ? api.pointee.SessionGetInputName(session, index, allocator, &raw)
                               : api.pointee.SessionGetOutputName(session, index, allocator, &raw)
            try check(status, "tensor name")
            defer { _ = api.pointee.AllocatorFree(allocator, raw) }
            return String(cString: raw!)
        }
        var inputCount = 0, outputCount = 0
        try check(api.pointee.SessionGetInputCount(session, &inputCount), "input count")
        try check(api.pointee.SessionGetOutputCount(session, &outputCount), "output count")
        guard inputCount == 1 else {
            api.pointee.ReleaseSession(session)
            throw InferenceError.unsupportedModel(path: modelPath, message: "expected one input tensor, found \(inputCount)")
        }
        inputName = try name(0, input: true)
        outputNames = try (0..<outputCount).map { try name($0, input: false) }

        func typeAndShape(_ index: Int, input: Bool) throws -> (ONNXTensorElementDataType, [Int]) {
            var typeInfo: OpaquePointer?
            try check(input ? api.pointee.SessionGetInputTypeInfo(session, index, &typeInfo)
                            : api.pointee.SessionGetOutputTypeInfo(session, index, &typeInfo), "type info")
            defer { api.pointee.ReleaseTypeInfo(typeInfo) }
            var tensorInfo: OpaquePointer?
            try check(api.pointee.CastTypeInfoToTensorInfo(typeInfo, &tensorInfo), "tensor info")
            return try Runtime.describe(tensorInfo, api: api)
        }
        let (inputType, shape) = try typeAndShape(0, input: true)
        guard inputType == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT else {
            api.pointee.ReleaseSession(session)
            throw InferenceError.unsupportedModel(path: modelPath, message: "input '\(inputName)' is not float32")
        }
        inputShape = shape
        fixedBatch = shape.first.flatMap { $0 > 0 ? $0 : nil }
        outputElementTypes = try (0..<outputCount).map { try typeAndShape($0, input: false).0 }

        var info: OpaquePointer?
        try check(api.pointee.CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &info), "memory info")
        memoryInfo = info!
        logger.info("ONNX Runtime session for \(modelPath): input \(inputName) \(shape), outputs \(outputNames), provider \(provider)")
    }

    deinit {
        api.pointee.ReleaseMemoryInfo(memoryInfo)
        api.pointee.ReleaseSession(session)
    }

    public func run(shape: [Int], data: UnsafeBufferPointer<Float>) throws -> [Tensor] {
        precondition(shape.reduce(1, *) == data.count, "input shape \(shape) does not match \(data.count) values")
        guard let batch = shape.first, batch > 0 else { return [] }
        guard let fixed = fixedBatch, fixed != batch else { return try runOnce(shape: shape, data: data) }
        // A fixed-batch model: run it on chunks of its batch, the last one padded with zeros,
        // and keep only the real frames' outputs.
        let perItem = data.count / batch
        var chunk = [Float](repeating: 0, count: fixed * perItem)
        var collected: [Tensor] = []
        var start = 0
        while start < batch {
            let count = min(fixed, batch - start)
            chunk.withUnsafeMutableBufferPointer { c in
                c.baseAddress!.update(from: data.baseAddress! + start * perItem, count: count * perItem)
                if count < fixed { (c.baseAddress! + count * perItem).update(repeating: 0, count: (fixed - count) * perItem) }
            }
            var chunkShape = shape
            chunkShape[0] = fixed
            let outputs = try chunk.withUnsafeBufferPointer { try runOnce(shape: chunkShape, data: $0) }
            if collected.isEmpty {
                collected = outputs.map { Tensor(name: $0.name, shape: [0] + $0.shape.dropFirst(), data: []) }
            }
            for (i, output) in outputs.enumerated() {
                let itemCount = output.data.count / max(output.shape.first ?? 1, 1)
                collected[i].data.append(contentsOf: output.data[0..<(count * itemCount)])
                collected[i].shape[0] += count
            }
            start += count
        }
        return collected
    }

    private func runOnce(shape: [Int], data: UnsafeBufferPointer<Float>) throws -> [Tensor] {
        let api = self.api
        var input: OpaquePointer?
        let dims = shape.map(Int64.init)
        let status = dims.withUnsafeBufferPointer { d in
            api.pointee.CreateTensorWithDataAsOrtValue(memoryInfo, UnsafeMutableRawPointer(mutating: data.baseAddress!),
                                                       data.count * MemoryLayout<Float>.stride, d.baseAddress, d.count,
                                                       ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &input)
        }
        if let message = Runtime.consume(status, api: api) { throw InferenceError.run(message: message) }
        defer { api.pointee.ReleaseValue(input) }
        var outputs = [OpaquePointer?](repeating: nil, count: outputNames.count)
        let runStatus = withCStrings([inputName]) { inputNames in
            withCStrings(outputNames) { outputNamesC in
                var inputs: [OpaquePointer?] = [input]
                return api.pointee.Run(session, nil, inputNames, &inputs, 1, outputNamesC, outputNames.count, &outputs)
            }
        }
        defer { for value in outputs { api.pointee.ReleaseValue(value) } }
        if let message = Runtime.consume(runStatus, api: api) { throw InferenceError.run(message: message) }
        return try outputs.enumerated().map { index, value in
            var info: OpaquePointer?
            if let m = Runtime.consume(api.pointee.GetTensorTypeAndShape(value, &info), api: api) { throw InferenceError.run(message: m) }
            defer { api.pointee.ReleaseTensorTypeAndShapeInfo(info) }
            let (type, outputShape) = try Runtime.describe(info, api: api)
            var raw: UnsafeMutableRawPointer?
            if let m = Runtime.consume(api.pointee.GetTensorMutableData(value, &raw), api: api) { throw InferenceError.run(message: m) }
            let count = outputShape.reduce(1, *)
            let values: [Float]
            switch type {
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT:
                values = Array(UnsafeBufferPointer(start: raw!.assumingMemoryBound(to: Float.self), count: count))
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64:
                values = UnsafeBufferPointer(start: raw!.assumingMemoryBound(to: Int64.self), count: count).map(Float.init)
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32:
                values = UnsafeBufferPointer(start: raw!.assumingMemoryBound(to: Int32.self), count: count).map(Float.init)
            default:
                throw InferenceError.run(message: "output '\(outputNames[index])' has element type \(type.rawValue), expected float or integer")
            }
            return Tensor(name: outputNames[index], shape: outputShape, data: values)
        }
    }

    /// The process-wide library handle, API table and environment (ONNX Runtime allows one
    /// environment per process).
    private final class Runtime: @unchecked Sendable {
        let api: UnsafePointer<OrtApi>
        let environment: OpaquePointer
        let libraryPath: String

        private static let instance = Locked<Result<Runtime, InferenceError>?>(nil)

        static func shared() throws -> Runtime {
            try instance.withValue { cached in
                if cached == nil { cached = Result { try Runtime() }.mapError { $0 as! InferenceError } }
                return try cached!.get()
            }
        }

        private init() throws {
            var tried: [String] = []
            var handle: UnsafeMutableRawPointer?
            var path = ""
            for candidate in ONNXRuntimeEngine.libraryCandidates() {
                handle = dlopen(candidate, RTLD_NOW | RTLD_LOCAL)
                if handle != nil { path = candidate; break }
                tried.append(candidate)
            }
            guard let handle else {
                throw InferenceError.runtimeUnavailable("libonnxruntime.so not found (tried \(tried.joined(separator: ", "))); run scripts/setup.sh or set TRIBUTARY_ONNXRUNTIME_LIBRARY")
            }
            guard let symbol = dlsym(handle, "OrtGetApiBase") else {
                throw InferenceError.runtimeUnavailable("\(path) does not export OrtGetApiBase")
            }
            typealias GetApiBase = @convention(c) () -> UnsafePointer<OrtApiBase>?
            let getApiBase = unsafeBitCast(symbol, to: GetApiBase.self)
            guard let base = getApiBase(), let api = base.pointee.GetApi(UInt32(ORT_API_VERSION)) else {
                throw InferenceError.runtimeUnavailable("\(path) does not offer ONNX Runtime C API version \(ORT_API_VERSION)")
            }
            self.api = api
            libraryPath = path
            var environment: OpaquePointer?
            if let message = Runtime.consume(api.pointee.CreateEnv(ORT_LOGGING_LEVEL_WARNING, "tributary", &environment), api: api) {
                throw InferenceError.runtimeUnavailable("CreateEnv: \(message)")
            }
            self.environment = environment!
        }

        /// The message of a failed status (and releases it); nil for success.
        static func consume(_ status: OpaquePointer?, api: UnsafePointer<OrtApi>) -> String? {
            guard let status else { return nil }
            let message = api.pointee.GetErrorMessage(status).map { String(cString: $0) } ?? "unknown error"
            api.pointee.ReleaseStatus(status)
            return message
        }

        static func describe(_ info: OpaquePointer?, api: UnsafePointer<OrtApi>) throws -> (ONNXTensorElementDataType, [Int]) {
            var type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED
            var rank = 0
            if let m = consume(api.pointee.GetTensorElementType(info, &type), api: api) { throw InferenceError.run(message: m) }
            if let m = consume(api.pointee.GetDimensionsCount(info, &rank), api: api) { throw InferenceError.run(message: m) }
            var dims = [Int64](repeating: 0, count: rank)
            if let m = consume(api.pointee.GetDimensions(info, &dims, rank), api: api) { throw InferenceError.run(message: m) }
            return (type, dims.map(Int.init))
        }
    }
    #else
    public init(modelPath: String, executionProvider: String = "CPU", intraOpThreads: Int = 0, gpuID: Int = 0,
                allowSpinning: Bool = false, logger: Logger) throws {
        throw InferenceError.runtimeUnavailable("Tributary was built without the ONNX Runtime header; run scripts/setup.sh and rebuild")
    }
    public func run(shape: [Int], data: UnsafeBufferPointer<Float>) throws -> [Tensor] {
        throw InferenceError.runtimeUnavailable("built without ONNX Runtime")
    }
    #endif
}

/// Calls `body` with a C array of C strings that lives as long as the call.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) throws -> R) rethrows -> R {
    let duplicates = strings.map { strdup($0) }
    defer { duplicates.forEach { free($0) } }
    let pointers = duplicates.map { UnsafePointer($0) }
    return try pointers.withUnsafeBufferPointer { try body($0.baseAddress!) }
}
