import FuzzSupport
import Tributary

// nvinfer's config format (`InferConfiguration.parse`, over `KeyFile`): any text either parses or
// throws an `InferConfigurationError`; nothing else, no trap. What it accepts, the engine can
// take: the values ONNX Runtime and CUDA get as a C int fit one.

/// A config's folder beside a `models` folder holding what configs/yolov3_tiny_pgie_config.txt
/// names, so seeds get past the file checks into the class-count checks.
private let configPath: String = {
    let root = FuzzSupport.makeScratchFolder()
    FuzzSupport.makeFolder(root + "/configs")
    FuzzSupport.makeFolder(root + "/models")
    FuzzSupport.writeFile(root + "/models/yolov3-tiny-416.onnx", "not read by the parser")
    FuzzSupport.writeFile(root + "/models/yolov3-tiny-416-int8.onnx", "not read by the parser")
    FuzzSupport.writeFile(root + "/models/coco_labels.txt", (0..<80).map { "class\($0)\n" }.joined())
    return root + "/configs/fuzz_config.txt"
}()

func check(_ bytes: [UInt8]) {
    let text = String(decoding: bytes, as: UTF8.self)
    do {
        let configuration = try InferConfiguration.parse(text: text, path: configPath)
        precondition(configuration.numDetectedClasses > 0 && configuration.batchSize > 0)
        precondition(Int32(exactly: configuration.gpuID) != nil && Int32(exactly: configuration.intraOpThreads) != nil)
    } catch is InferConfigurationError {
    } catch {
        fatalError("untyped error: \(error)")
    }
}

@main struct Fuzz {
    static func main() { FuzzSupport.main(check) }
}
