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
    }
}
