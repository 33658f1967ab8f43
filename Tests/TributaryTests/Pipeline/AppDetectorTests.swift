import Foundation
import Testing
@testable import Tributary

/// The app with its default detector, and its errors for bad detector configs.
@Suite(.serialized) struct AppDetectorTests {
    static var config: String { TestMedia.path("configs/yolov3_tiny_pgie_config.txt") }

    @Test(.runningTimeLimit(minutes: 3))
    func printsRealDetectionsPerFrame() throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let clip = folder.appendingPathComponent("clip.mp4").path
        try makeShortSampleClip(at: clip, frames: 12)
        let result = try runProcess(TestMedia.appBinary, ["-i", clip, clip, "--no-display", "--config", Self.config,
                                                          "--width", "768", "--height", "576"], timeout: 150)
        #expect(result.status == 0, "\(result.standardError)")
        let lines = result.standardOutput.split(separator: "\n").map(String.init)
        #expect(lines.contains("WARNING: Overriding infer-config batch-size 1  with number of sources  2"))
        let frameLines = lines.filter { $0.hasPrefix("Frame Number= ") }
        #expect(frameLines.count == 24)
        // vtest: several walking people and a parked car/van in every frame.
        for line in frameLines {
            let fields = line.split(separator: " ")
            let objects = Int(fields[6])!, vehicles = Int(fields[8])!, people = Int(fields[10])!
            #expect(line == "Frame Number= \(fields[2]) Number of Objects= \(objects) Vehicle_count= \(vehicles) Person_count= \(people)")
            #expect((2...9).contains(people), "\(line)")
            #expect(vehicles >= 1 && objects >= people + vehicles, "\(line)")
        }
    }

    func writeConfig(_ folder: URL, _ replacements: [String: String]) throws -> String {
        var text = try String(contentsOfFile: Self.config, encoding: .utf8)
        text = text.replacingOccurrences(of: "../models/", with: TestMedia.path("models") + "/")
        for (key, value) in replacements {
            text = text.split(separator: "\n", omittingEmptySubsequences: false)
                .map { $0.hasPrefix(key + "=") ? "\(key)=\(value)" : String($0) }.joined(separator: "\n")
        }
        let path = folder.appendingPathComponent("pgie.txt").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func aBadValueNamesTheFileLineAndKey() throws {
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = try writeConfig(folder, ["net-scale-factor": "lots"])
        let line = try String(contentsOfFile: config, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            .firstIndex { $0.hasPrefix("net-scale-factor=") }! + 1
        let result = try runProcess(TestMedia.appBinary, ["-i", TestMedia.h264, "--no-display", "-c", config], timeout: 20)
        #expect(result.status == 2)
        #expect(result.standardError.contains("\(config):\(line)"), "\(result.standardError)")
        #expect(result.standardError.contains("net-scale-factor"))
    }

    /// Runs the app with a one-node model (`images` of `shape` → `output` of the same shape), made
    /// by the set-up's ONNX package, as its detector: what it said and how it exited.
    func runWithOneNodeModel(shape: String, in folder: URL) throws -> (model: String, result: ProcessResult) {
        let model = folder.appendingPathComponent("one-node.onnx").path
        let script = """
            import onnx, sys
            from onnx import helper, TensorProto
            shape = \(shape)
            x = helper.make_tensor_value_info("images", TensorProto.FLOAT, shape)
            y = helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)
            graph = helper.make_graph([helper.make_node("Identity", ["images"], ["output"])], "identity", [x], [y])
            onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), sys.argv[1])
            """
        let made = try runProcess(TestMedia.path(".deps/venv/bin/python"), ["-c", script, model], timeout: 60)
        try #require(made.status == 0, "\(made.standardError)")
        let config = try writeConfig(folder, ["onnx-file": model])
        return (model, try runProcess(TestMedia.appBinary, ["-i", TestMedia.h264, "--no-display", "-c", config], timeout: 30))
    }

    /// A model whose output the parser cannot read is refused when its session is made, as a
    /// bad model (exit 2), before any source starts.
    @Test func aModelOfTheWrongShapeIsRefusedBeforeAnySourceStarts() throws {
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (model, result) = try runWithOneNodeModel(shape: "[1, 3, 64, 64]", in: folder)
        #expect(result.status == 2, "\(result.standardError)")
        #expect(result.standardError.contains(model), "\(result.standardError)")
        #expect(result.standardError.contains("expected shape [N, boxes, 5 + 80] = [N, boxes, 85], got [1, 3, 64, 64]"), "\(result.standardError)")
        #expect(!result.standardOutput.contains("Frame Number="))
    }

    /// A model whose input the pre-processing cannot fill (one channel for RGB, or no H×W) is
    /// refused by name and shape (exit 2) before any source starts.
    @Test(arguments: [
        ("[1, 1, 64, 64]", "input has 1 channels but model-color-format=0 gives 3"),
        ("[1, 3, 416]", "input 'images' has shape [1, 3, 416]; expected [N, C, H, W] with fixed H and W"),
    ])
    func aModelWithTheWrongInputShapeIsRefused(shape: String, message: String) throws {
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (model, result) = try runWithOneNodeModel(shape: shape, in: folder)
        #expect(result.status == 2, "\(result.standardError)")
        #expect(result.standardError.contains("unsupported model '\(model)': \(message)"), "\(result.standardError)")
        #expect(!result.standardOutput.contains("Frame Number="))
    }

    @Test func aMissingModelIsNamed() throws {
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = try writeConfig(folder, ["onnx-file": "no-such-model.onnx"])
        let result = try runProcess(TestMedia.appBinary, ["-i", TestMedia.h264, "--no-display", "-c", config], timeout: 20)
        #expect(result.status == 2)
        #expect(result.standardError.contains("no-such-model.onnx"), "\(result.standardError)")
    }
}
