import Foundation
import Logging
import Testing
@testable import Tributary

/// The real ONNX Runtime library and the real default model from `scripts/setup.sh`.
@Suite struct ONNXRuntimeEngineTests {
    static var modelPath: String { TestMedia.path("models/yolov3-tiny-416.onnx") }

    @Test func loadsTheDefaultModelWithADynamicBatch() throws {
        let engine = try ONNXRuntimeEngine(modelPath: Self.modelPath, intraOpThreads: 2, logger: Logger(label: "test"))
        #expect(engine.inputName == "images")
        #expect(engine.inputShape == [-1, 3, 416, 416])
        #expect(engine.executionProviderName == "CPU")
        let input = Tensor(name: "images", shape: [2, 3, 416, 416], data: [Float](repeating: 0.5, count: 2 * 3 * 416 * 416))
        let outputs = try engine.run(input: input)
        #expect(outputs.count == 1)
        #expect(outputs[0].shape == [2, 2535, 85])
        // Same input twice: both halves of the batch agree; objectness is a probability.
        let half = 2535 * 85
        #expect(Array(outputs[0].data[0..<half]) == Array(outputs[0].data[half..<(2 * half)]))
        #expect(outputs[0].data[4] >= 0 && outputs[0].data[4] <= 1)
    }

    @Test func aMissingModelIsAnErrorNamingIt() {
        #expect {
            _ = try ONNXRuntimeEngine(modelPath: "/no/such/model.onnx", logger: Logger(label: "test"))
        } throws: { error in
            "\(error)".contains("/no/such/model.onnx")
        }
    }

    @Test func aCUDARequestWithoutTheProviderFallsBackToCPU() throws {
        let engine = try ONNXRuntimeEngine(modelPath: Self.modelPath, executionProvider: "CUDA", logger: Logger(label: "test"))
        #expect(engine.executionProviderName == "CPU")
        #expect(engine.inputDeviceID == nil)
    }

    /// The device path's tests run only where the set-up script put the library and the model.
    static var runtimeAndModelPresent: Bool {
        let library = getenv("TRIBUTARY_ONNXRUNTIME_LIBRARY") != nil
            || FileManager.default.fileExists(atPath: TestMedia.path(".deps/onnxruntime/lib/libonnxruntime.so"))
        return library && FileManager.default.fileExists(atPath: modelPath)
    }

    /// Values in [0, 1) from a fixed seed, different for every element and both frames.
    static func randomInput(count: Int) -> [Float] {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(state >> 40) / Float(1 << 24)
        }
    }

    @Test(.enabled(if: runtimeAndModelPresent, "ONNX Runtime or models/yolov3-tiny-416.onnx is missing: run scripts/setup.sh"))
    func theIOBindingPathGivesTheOutputsOfThePlainRun() throws {
        let engine = try ONNXRuntimeEngine(modelPath: Self.modelPath, intraOpThreads: 2, logger: Logger(label: "test"))
        let shape = [2, 3, 416, 416]
        let input = Self.randomInput(count: shape.reduce(1, *))
        let plain = try input.withUnsafeBufferPointer { try engine.run(shape: shape, data: $0) }
        let bound = try input.withUnsafeBufferPointer { try engine.runBoundHost(shape: shape, data: $0) }
        try #require(plain.count == 1 && bound.count == 1)
        #expect(bound[0].name == plain[0].name)
        #expect(bound[0].shape == [2, 2535, 85])
        #expect(bound[0].shape == plain[0].shape)
        try #require(bound[0].data.count == plain[0].data.count)
        let maxDifference = zip(bound[0].data, plain[0].data).map { abs($0 - $1) }.max() ?? .infinity
        #expect(maxDifference <= 1e-6)
        // The two frames differ, so each got its own input (not one frame read twice).
        let half = 2535 * 85
        #expect(Array(bound[0].data[0..<half]) != Array(bound[0].data[half..<(2 * half)]))
    }

    @Test(.enabled(if: runtimeAndModelPresent, "ONNX Runtime or models/yolov3-tiny-416.onnx is missing: run scripts/setup.sh"))
    func theCPUProviderHasNoDeviceInput() throws {
        let engine = try ONNXRuntimeEngine(modelPath: Self.modelPath, intraOpThreads: 2, logger: Logger(label: "test"))
        #expect(engine.inputDeviceID == nil)
        var input = Self.randomInput(count: 3 * 416 * 416)
        let address = input.withUnsafeMutableBufferPointer { UInt64(UInt(bitPattern: $0.baseAddress)) }
        #expect {
            _ = try engine.run(shape: [1, 3, 416, 416], deviceInput: DevicePointer(address: address))
        } throws: { error in
            guard case InferenceError.run(let message) = error else { return false }
            return message.contains("has no device input") && message.contains("CPU")
        }
    }

    @Test func anEngineWithoutADeviceInputThrowsByDefault() {
        let engine: InferenceEngine = HostOnlyEngine()
        #expect(engine.inputDeviceID == nil)
        #expect {
            _ = try engine.run(shape: [1, 3, 2, 2], deviceInput: DevicePointer(address: 0x1000))
        } throws: { error in
            guard case InferenceError.run(let message) = error else { return false }
            return message.contains("has no device input")
        }
    }
}

/// An engine that implements only the host path, to see the protocol's defaults.
private final class HostOnlyEngine: InferenceEngine {
    let inputName = "images"
    let inputShape = [-1, 3, 2, 2]
    let outputNames = ["out"]
    let outputShapes = [[-1, 4]]
    let executionProviderName = "CPU"
    func run(shape: [Int], data: UnsafeBufferPointer<Float>) throws -> [Tensor] { [] }
}
