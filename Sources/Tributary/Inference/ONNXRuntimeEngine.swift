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
    public let outputShapes: [[Int]]
    public let executionProviderName: String
    /// `gpuID` once the CUDA provider is in the session; nil on the CPU provider (fallback included).
    public let inputDeviceID: Int?

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
    /// Where `run(shape:deviceInput:)`'s input lives: the CUDA device's own memory (nil on the CPU provider).
    private let deviceMemoryInfo: OpaquePointer?
    /// Where bound outputs land: page-locked host memory on the CUDA provider (the download runs
    /// at DMA speed), falling back to plain host memory if this ONNX Runtime refuses it.
    private let pinnedMemoryInfo: OpaquePointer?
    private let pinnedOutputsRefused = Locked(false)
    /// The last run's output arrays, reused when no tensor of that run is alive any more: no
    /// fresh (page-faulting) allocation of the outputs, tens of MB for a large batch, per run.
    private let outputCache: Locked<[[Float]]>
    private let fixedBatch: Int?
    private let outputElementTypes: [ONNXTensorElementDataType]
    private let logger: Logger

    /// - Parameters:
    ///   - intraOpThreads: 0 lets ONNX Runtime choose.
    ///   - executionProvider: "CPU" or "CUDA"; CUDA falls back to CPU with one warning when its
    ///     provider library is missing.
    public init(modelPath: String, executionProvider: String = "CPU", intraOpThreads: Int = 0, gpuID: Int = 0,
                allowSpinning: Bool = false, logger: Logger) throws {
        self.modelPath = modelPath
        self.logger = logger
        runtime = try Runtime.shared()
        api = runtime.api
        let api = self.api
        func check(_ status: OpaquePointer?, _ what: String) throws {
            if let message = Runtime.consume(status, api: api) { throw InferenceError.modelLoad(path: modelPath, message: "\(what): \(message)") }
        }
        let (options, provider) = try Self.sessionOptions(api: api, intraOpThreads: intraOpThreads, allowSpinning: allowSpinning,
                                                          executionProvider: executionProvider, gpuID: gpuID, logger: logger, check: check)
        defer { api.pointee.ReleaseSessionOptions(options) }
        executionProviderName = provider
        inputDeviceID = provider == "CUDA" ? gpuID : nil
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
        let outputs = try (0..<outputCount).map { try typeAndShape($0, input: false) }
        outputElementTypes = outputs.map(\.0)
        outputShapes = outputs.map(\.1)
        outputCache = Locked(Array(repeating: [], count: outputCount))

        do {
            (memoryInfo, deviceMemoryInfo, pinnedMemoryInfo) = try Self.memoryInfos(api: api, modelPath: modelPath, cuda: provider == "CUDA", gpuID: gpuID,
                                                                                    logger: logger, check: check)
        } catch {
            api.pointee.ReleaseSession(session)
            throw error
        }
        logger.info("ONNX Runtime session for \(modelPath): input \(inputName) \(shape), outputs \(outputNames), provider \(provider)")
    }

    /// Session options: threads, full graph optimisation, no spinning unless asked, and the CUDA
    /// provider when asked for and present. The caller releases them.
    /// - Returns: the options and the provider that will run the session ("CPU" or "CUDA").
    private static func sessionOptions(api: UnsafePointer<OrtApi>, intraOpThreads: Int, allowSpinning: Bool, executionProvider: String,
                                       gpuID: Int, logger: Logger, check: (OpaquePointer?, String) throws -> Void) throws -> (OpaquePointer, String) {
        var made: OpaquePointer?
        try check(api.pointee.CreateSessionOptions(&made), "session options")
        guard let options = made else { throw InferenceError.run(message: "ONNX Runtime made no session options") }
        do {
            try check(api.pointee.SetIntraOpNumThreads(options, Int32(intraOpThreads)), "intra-op threads")
            try check(api.pointee.SetInterOpNumThreads(options, 1), "inter-op threads")
            try check(api.pointee.SetSessionGraphOptimizationLevel(options, ORT_ENABLE_ALL), "graph optimisation level")
            // ORT's workers spin between runs by default; beside GStreamer's decoder and converter
            // threads on a small box that spinning takes the cores the decoders need.
            try check(api.pointee.AddSessionConfigEntry(options, "session.intra_op.allow_spinning", allowSpinning ? "1" : "0"), "spinning")
        } catch {
            api.pointee.ReleaseSessionOptions(options)
            throw error
        }
        guard executionProvider.uppercased() == "CUDA" else { return (options, "CPU") }
        var cudaOptions: OpaquePointer?
        var message = Runtime.consume(api.pointee.CreateCUDAProviderOptions(&cudaOptions), api: api)
        if message == nil, let cudaOptions {
            // HEURISTIC: the default EXHAUSTIVE search benchmarks every new input shape and stalls
            // the first batches. Copies in the default stream keep ORT's own input and output
            // copies ordered with its kernels.
            let keys = ["device_id", "cudnn_conv_algo_search", "do_copy_in_default_stream"]
            let values = [String(gpuID), "HEURISTIC", "1"]
            message = withCStrings(keys) { k in withCStrings(values) { v in
                Runtime.consume(api.pointee.UpdateCUDAProviderOptions(cudaOptions, k, v, keys.count), api: api)
            } }
            if message == nil {
                message = Runtime.consume(api.pointee.SessionOptionsAppendExecutionProvider_CUDA_V2(options, cudaOptions), api: api)
            }
            api.pointee.ReleaseCUDAProviderOptions(cudaOptions)
        }
        guard let message else { return (options, "CUDA") }
        logger.warning("CUDA execution provider unavailable (\(message)); using the CPU provider")
        return (options, "CPU")
    }

    /// Host memory for inputs and outputs; with the CUDA provider, the GPU's memory (device input
    /// binding) and pinned host memory for outputs when ORT offers it.
    private static func memoryInfos(api: UnsafePointer<OrtApi>, modelPath: String, cuda: Bool, gpuID: Int, logger: Logger,
                                    check: (OpaquePointer?, String) throws -> Void) throws -> (OpaquePointer, OpaquePointer?, OpaquePointer?) {
        var info: OpaquePointer?
        try check(api.pointee.CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &info), "memory info")
        guard cuda else { return (info!, nil, nil) }
        var device: OpaquePointer?
        if let message = Runtime.consume(api.pointee.CreateMemoryInfo("Cuda", OrtDeviceAllocator, Int32(gpuID), OrtMemTypeDefault, &device), api: api) {
            api.pointee.ReleaseMemoryInfo(info)
            throw InferenceError.modelLoad(path: modelPath, message: "CUDA memory info: \(message)")
        }
        var pinned: OpaquePointer?
        if let message = Runtime.consume(api.pointee.CreateMemoryInfo("CudaPinned", OrtDeviceAllocator, Int32(gpuID), OrtMemTypeCPUOutput, &pinned), api: api) {
            logger.info("ONNX Runtime: no CUDA pinned memory info (\(message)); outputs go to plain host memory")
        }
        return (info!, device, pinned)
    }

    deinit {
        if let deviceMemoryInfo { api.pointee.ReleaseMemoryInfo(deviceMemoryInfo) }
        if let pinnedMemoryInfo { api.pointee.ReleaseMemoryInfo(pinnedMemoryInfo) }
        api.pointee.ReleaseMemoryInfo(memoryInfo)
        api.pointee.ReleaseSession(session)
    }

    public func run(shape: [Int], data: UnsafeBufferPointer<Float>) throws -> [Tensor] {
        try inModelBatches(shape: shape, data: data, runOnce)
    }

    /// The device path's binding code run on host memory (CPU memory info), so a machine without a
    /// GPU tests it; the outputs are those of `run(shape:data:)`.
    package func runBoundHost(shape: [Int], data: UnsafeBufferPointer<Float>) throws -> [Tensor] {
        try inModelBatches(shape: shape, data: data) { chunkShape, chunk in
            try runBound(shape: chunkShape, address: UnsafeMutableRawPointer(mutating: chunk.baseAddress!), memoryInfo: memoryInfo)
        }
    }

    /// Throws on the CPU provider. A fixed-batch model here must get a multiple of its batch: we
    /// cannot zero-fill a padding chunk in device memory the way the host path does.
    public func run(shape: [Int], deviceInput: DevicePointer) throws -> [Tensor] {
        guard let deviceMemoryInfo, let gpuID = inputDeviceID else {
            throw InferenceError.run(message: "ONNX Runtime engine for \(modelPath) has no device input: it runs on the \(executionProviderName) execution provider")
        }
        guard let batch = shape.first, batch > 0 else { return [] }
        guard let base = UnsafeMutableRawPointer(bitPattern: UInt(deviceInput.address)) else {
            throw InferenceError.run(message: "device input on GPU \(gpuID) has a null address")
        }
        guard let fixed = fixedBatch, fixed != batch else {
            return try runBound(shape: shape, address: base, memoryInfo: deviceMemoryInfo)
        }
        guard batch % fixed == 0 else {
            throw InferenceError.run(message: "model \(modelPath) has a fixed batch of \(fixed); device input batch \(batch) must be a multiple of it (device memory cannot be zero-padded here)")
        }
        var chunkShape = shape
        chunkShape[0] = fixed
        let itemBytes = shape.dropFirst().reduce(1, *) * MemoryLayout<Float>.stride
        return try Self.concatenating(batch: batch, inChunksOf: fixed) { start, _ in
            try runBound(shape: chunkShape, address: base + start * itemBytes, memoryInfo: deviceMemoryInfo)
        }
    }

    /// Runs `once` on the whole host input, or for a fixed-batch model on chunks of its batch,
    /// the last one padded with zeros.
    private func inModelBatches(shape: [Int], data: UnsafeBufferPointer<Float>,
                                _ once: (_ shape: [Int], _ data: UnsafeBufferPointer<Float>) throws -> [Tensor]) throws -> [Tensor] {
        precondition(shape.reduce(1, *) == data.count, "input shape \(shape) does not match \(data.count) values")
        guard let batch = shape.first, batch > 0 else { return [] }
        guard let fixed = fixedBatch, fixed != batch else { return try once(shape, data) }
        let perItem = data.count / batch
        var chunk = [Float](repeating: 0, count: fixed * perItem)
        var chunkShape = shape
        chunkShape[0] = fixed
        return try Self.concatenating(batch: batch, inChunksOf: fixed) { start, count in
            chunk.withUnsafeMutableBufferPointer { c in
                c.baseAddress!.update(from: data.baseAddress! + start * perItem, count: count * perItem)
                if count < fixed { (c.baseAddress! + count * perItem).update(repeating: 0, count: (fixed - count) * perItem) }
            }
            return try chunk.withUnsafeBufferPointer { try once(chunkShape, $0) }
        }
    }

    /// Runs `chunk` for each slice of `fixed` items of a batch of `batch` and keeps only the real
    /// items' outputs (the padding's are dropped), concatenated along the batch.
    private static func concatenating(batch: Int, inChunksOf fixed: Int,
                                      _ chunk: (_ start: Int, _ count: Int) throws -> [Tensor]) rethrows -> [Tensor] {
        var collected: [Tensor] = []
        var start = 0
        while start < batch {
            let count = min(fixed, batch - start)
            let outputs = try chunk(start, count)
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
        return try tensors(outputs)
    }

    /// One run through an I/O binding: the input is read where `memoryInfo` says it lives (CUDA
    /// device memory, or host memory for `runBoundHost`), the outputs are bound to host memory.
    private func runBound(shape: [Int], address: UnsafeMutableRawPointer, memoryInfo inputMemoryInfo: OpaquePointer) throws -> [Tensor] {
        if let pinnedMemoryInfo, !pinnedOutputsRefused.withValue({ $0 }) {
            do {
                return try runBound(shape: shape, address: address, memoryInfo: inputMemoryInfo, outputMemoryInfo: pinnedMemoryInfo)
            } catch {
                pinnedOutputsRefused.withValue { $0 = true }
                logger.warning("ONNX Runtime refused outputs in CUDA pinned memory (\(error)); using plain host memory")
            }
        }
        return try runBound(shape: shape, address: address, memoryInfo: inputMemoryInfo, outputMemoryInfo: memoryInfo)
    }

    private func runBound(shape: [Int], address: UnsafeMutableRawPointer, memoryInfo inputMemoryInfo: OpaquePointer,
                          outputMemoryInfo: OpaquePointer) throws -> [Tensor] {
        try withBoundRun(shape: shape, address: address, memoryInfo: inputMemoryInfo, outputMemoryInfo: outputMemoryInfo) { try tensors($0) }
    }

    /// The CUDA provider only, and a shape the model runs in one go (no fixed batch to chunk by).
    public func withDeviceOutputs<R>(shape: [Int], deviceInput: DevicePointer, _ body: ([DeviceTensor]) throws -> R) throws -> R? {
        guard let deviceMemoryInfo, let gpuID = inputDeviceID, let batch = shape.first, batch > 0,
              fixedBatch == nil || fixedBatch == batch,
              outputElementTypes.allSatisfy({ $0 == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT }),
              let base = UnsafeMutableRawPointer(bitPattern: UInt(deviceInput.address)) else { return nil }
        let api = self.api
        return try withBoundRun(shape: shape, address: base, memoryInfo: deviceMemoryInfo, outputMemoryInfo: deviceMemoryInfo) { outputs in
            let tensors = try outputs.enumerated().map { index, value -> DeviceTensor in
                let (_, outputShape, raw) = try Runtime.contents(of: value, api: api)
                return DeviceTensor(name: outputNames[index], shape: outputShape,
                                    address: DevicePointer(address: UInt64(UInt(bitPattern: raw))), deviceID: gpuID)
            }
            return try body(tensors)
        }
    }

    /// One run through an I/O binding; `body` gets the bound output values, released after it.
    /// ONNX Runtime synchronises its provider's stream before the run returns (the default), so
    /// device outputs are complete when `body` reads them.
    private func withBoundRun<R>(shape: [Int], address: UnsafeMutableRawPointer, memoryInfo inputMemoryInfo: OpaquePointer,
                                 outputMemoryInfo: OpaquePointer, _ body: ([OpaquePointer?]) throws -> R) throws -> R {
        let api = self.api
        func check(_ status: OpaquePointer?, _ what: String) throws {
            if let message = Runtime.consume(status, api: api) { throw InferenceError.run(message: "\(what): \(message)") }
        }
        var input: OpaquePointer?
        let dims = shape.map(Int64.init)
        try check(dims.withUnsafeBufferPointer { d in
            api.pointee.CreateTensorWithDataAsOrtValue(inputMemoryInfo, address, shape.reduce(1, *) * MemoryLayout<Float>.stride,
                                                       d.baseAddress, d.count, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &input)
        }, "input tensor")
        defer { api.pointee.ReleaseValue(input) }
        var binding: OpaquePointer?
        try check(api.pointee.CreateIoBinding(session, &binding), "I/O binding")
        defer { api.pointee.ReleaseIoBinding(binding) }
        try check(api.pointee.BindInput(binding, inputName, input), "binding input '\(inputName)'")
        for name in outputNames {
            try check(api.pointee.BindOutputToDevice(binding, name, outputMemoryInfo), "binding output '\(name)'")
        }
        try check(api.pointee.RunWithBinding(session, nil, binding), "run")
        var allocator: UnsafeMutablePointer<OrtAllocator>?
        try check(api.pointee.GetAllocatorWithDefaultOptions(&allocator), "allocator")
        var values: UnsafeMutablePointer<OpaquePointer?>?
        var count = 0
        try check(api.pointee.GetBoundOutputValues(binding, allocator, &values, &count), "bound outputs")
        let outputs = Array(UnsafeBufferPointer(start: values, count: count))
        defer {
            for value in outputs { api.pointee.ReleaseValue(value) }
            if let values { _ = api.pointee.AllocatorFree(allocator, values) }
        }
        guard count == outputNames.count else {
            throw InferenceError.run(message: "I/O binding returned \(count) outputs, expected \(outputNames.count)")
        }
        return try body(outputs)
    }

    /// Host copies of output values, in `outputNames` order; integer outputs become Float.
    private func tensors(_ outputs: [OpaquePointer?]) throws -> [Tensor] {
        let api = self.api
        return try outputs.enumerated().map { index, value in
            let (type, outputShape, raw) = try Runtime.contents(of: value, api: api)
            let count = outputShape.reduce(1, *)
            var values: [Float]
            switch type {
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT:
                let source = UnsafeBufferPointer(start: raw!.assumingMemoryBound(to: Float.self), count: count)
                values = outputCache.withValue { cache in
                    defer { cache[index] = [] }  // ours alone now, unless the last run's tensor lives on
                    return cache[index]
                }
                if values.count == count {
                    values.withUnsafeMutableBufferPointer { _ = $0.update(fromContentsOf: source) }  // copies only if shared
                } else {
                    values = Array(source)
                }
                outputCache.withValue { $0[index] = values }
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

        private static let instance = LoadedOnce { try Runtime() }

        static func shared() throws -> Runtime { try instance.get() }

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

        /// An output value's element type, shape and data (host or device memory, as bound).
        static func contents(of value: OpaquePointer?, api: UnsafePointer<OrtApi>) throws
            -> (type: ONNXTensorElementDataType, shape: [Int], data: UnsafeMutableRawPointer?) {
            var info: OpaquePointer?
            if let m = consume(api.pointee.GetTensorTypeAndShape(value, &info), api: api) { throw InferenceError.run(message: m) }
            defer { api.pointee.ReleaseTensorTypeAndShapeInfo(info) }
            let (type, shape) = try describe(info, api: api)
            var raw: UnsafeMutableRawPointer?
            if let m = consume(api.pointee.GetTensorMutableData(value, &raw), api: api) { throw InferenceError.run(message: m) }
            return (type, shape, raw)
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
    package func runBoundHost(shape: [Int], data: UnsafeBufferPointer<Float>) throws -> [Tensor] {
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
