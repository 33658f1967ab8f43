import Foundation
import Testing
@testable import Tributary

/// A temporary folder holding a dummy model and labels; removed when the test ends.
private final class ConfigFolder {
    let url: URL
    var path: String { url.path }

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-infer-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        try write("model.onnx", "not really onnx")
        try write("labels.txt", "person\nbicycle\ncar\n")
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let file = url.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    func load(_ text: String, name: String = "config.txt") throws -> InferConfiguration {
        try InferConfiguration.load(path: write(name, text))
    }
}

/// The smallest config that loads: three lines, so the next line written is line 4.
private let minimal = "[property]\nonnx-file=model.onnx\nlabelfile-path=labels.txt\n"

private enum Repository {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let model = root.appendingPathComponent("models/yolov3-tiny-416.onnx").path
    static let shippedConfig = root.appendingPathComponent("configs/yolov3_tiny_pgie_config.txt").path
}

/// A bad line, the group it goes in and the key the error must name.
struct InferConfigBadValue: Sendable, CustomTestStringConvertible {
    var line: String
    var inClassGroup = false
    var key: String { String(line.split(separator: "=")[0]) }
    var testDescription: String { line }
}

@Suite struct InferConfigurationTests {
    @Test func everyKeyIsParsedIntoItsField() throws {
        let folder = try ConfigFolder()
        try folder.write("model-int8.onnx", "int8")
        let config = try folder.load("""
            # a full config
            [property]
            gpu-id=1
            net-scale-factor = 0.5
            offsets=77.5;21.2;11.8;
            model-color-format=1
            onnx-file=model.onnx
            int8-onnx-file=model-int8.onnx
            labelfile-path=labels.txt
            batch-size=4
            process-mode=1
            network-mode=1
            num-detected-classes=3
            interval=2
            gie-unique-id=7
            maintain-aspect-ratio=1
            symmetric-padding=1
            cluster-mode=4
            output-parser=yolov8
            execution-provider=cuda
            intra-op-threads=3
            model-file=x
            proto-file=x
            model-engine-file=x.engine
            int8-calib-file=x
            uff-file=x
            tlt-encoded-model=x
            tlt-model-key=x
            force-implicit-batch-dim=1
            output-blob-names=a;b
            input-blob-name=x
            uff-input-blob-name=x
            uff-input-dims=3;416;416;0
            infer-dims=3;416;416
            output-tensor-meta=0
            parse-bbox-func-name=NvDsInferParseYolo
            custom-lib-path=libx.so
            engine-create-func-name=x
            workspace-size=1024
            scaling-filter=1
            scaling-compute-hw=0
            operate-on-gie-id=1
            operate-on-class-ids=0;1
            classifier-threshold=0.5
            network-type=0
            filter-out-class-ids=2
            crop-objects-to-roi-boundary=1

            [class-attrs-all]
            pre-cluster-threshold=0.4
            post-cluster-threshold=0.1
            nms-iou-threshold=0.6
            topk=20
            detected-min-w=8
            detected-min-h=9
            detected-max-w=600
            detected-max-h=500
            eps=0.2
            group-threshold=1
            minBoxes=3
            dbscan-min-score=0.7
            roi-top-offset=0
            roi-bottom-offset=0
            """)
        #expect(config.path == folder.path + "/config.txt")
        #expect(config.gpuID == 1)
        #expect(config.netScaleFactor == 0.5)
        #expect(config.offsets == [77.5, 21.2, 11.8])
        #expect(config.modelColorFormat == .bgr)
        #expect(config.onnxFile == folder.path + "/model.onnx")
        #expect(config.int8OnnxFile == folder.path + "/model-int8.onnx")
        #expect(config.labelfilePath == folder.path + "/labels.txt")
        #expect(config.labels == ["person", "bicycle", "car"])
        #expect(config.batchSize == 4)
        #expect(config.processMode == 1)
        #expect(config.networkMode == 1)
        #expect(config.numDetectedClasses == 3)
        #expect(config.interval == 2)
        #expect(config.gieUniqueID == 7)
        #expect(config.maintainAspectRatio)
        #expect(config.symmetricPadding)
        #expect(config.clusterMode == .none)
        #expect(config.outputParser == .yolov8)
        #expect(config.executionProvider == .cuda)
        #expect(config.intraOpThreads == 3)
        let a = config.defaultClassAttributes
        #expect(a.preClusterThreshold == 0.4)
        #expect(a.postClusterThreshold == 0.1)
        #expect(a.nmsIoUThreshold == 0.6)
        #expect(a.topK == 20)
        #expect(a.detectedMinWidth == 8)
        #expect(a.detectedMinHeight == 9)
        #expect(a.detectedMaxWidth == 600)
        #expect(a.detectedMaxHeight == 500)
        #expect(config.classAttributes.isEmpty)
        #expect(config.attributes(forClass: 2) == a)
        #expect(config.warnings == [])
    }

    @Test func defaultsWhenKeysAreLeftOut() throws {
        let folder = try ConfigFolder()
        let config = try folder.load(minimal)
        #expect(config.gpuID == 0)
        #expect(config.netScaleFactor == 1)
        #expect(config.offsets == [])
        #expect(config.modelColorFormat == .rgb)
        #expect(config.int8OnnxFile == nil)
        #expect(config.batchSize == 1)
        #expect(config.networkMode == 0)
        #expect(config.gieUniqueID == 1)
        #expect(!config.maintainAspectRatio)
        #expect(config.clusterMode == .nms)
        #expect(config.outputParser == .yolo)
        #expect(config.executionProvider == .cpu)
        #expect(config.intraOpThreads == 0)
        #expect(config.defaultClassAttributes == ClassAttributes())
        #expect(config.warnings == [])
    }

    @Test(arguments: [true, false])
    func classGroupsStartFromClassAttrsAll(allComesFirst: Bool) throws {
        let all = "[class-attrs-all]\npre-cluster-threshold=0.3\ntopk=50\nnms-iou-threshold=0.5\n"
        let two = "[class-attrs-2]\npre-cluster-threshold=0.7\ndetected-min-w=32\n"
        let folder = try ConfigFolder()
        let config = try folder.load(minimal + (allComesFirst ? all + two : two + all))
        let classTwo = try #require(config.classAttributes[2])
        #expect(classTwo.preClusterThreshold == 0.7)
        #expect(classTwo.detectedMinWidth == 32)
        #expect(classTwo.topK == 50)
        #expect(classTwo.nmsIoUThreshold == 0.5)
        #expect(config.attributes(forClass: 2) == classTwo)
        #expect(config.attributes(forClass: 0).preClusterThreshold == 0.3)
        #expect(config.attributes(forClass: 0).detectedMinWidth == 0)
        #expect(config.classAttributes.keys.sorted() == [2])
        #expect(config.warnings == [])
    }

    @Test func unknownKeysAndGroupsWarnWithFileAndLine() throws {
        let folder = try ConfigFolder()
        let config = try folder.load(minimal + "foo=1\n[class-attrs-all]\nbar=2\n[extras]\nbaz=3\n")
        let file = folder.path + "/config.txt"
        #expect(config.warnings == [
            "\(file):4: unknown key 'foo' in [property]",
            "\(file):6: unknown key 'bar' in [class-attrs-all]",
            "\(file):7: unknown group [extras] (ignored)",
        ])
    }

    @Test func aDuplicateKeyTakesTheLaterValueAndWarns() throws {
        let folder = try ConfigFolder()
        let config = try folder.load(minimal + "batch-size=2\nbatch-size=3\n")
        #expect(config.batchSize == 3)
        #expect(config.warnings.count == 1)
        #expect(config.warnings.first?.hasPrefix(folder.path + "/config.txt:5: duplicate key 'batch-size'") == true)
    }

    @Test func crlfCommentsAndBlankLinesAreHandled() throws {
        let folder = try ConfigFolder()
        let text = "# header\r\n\r\n[property]\r\n  # indented comment\r\nonnx-file=model.onnx\r\nlabelfile-path=labels.txt\r\nbatch-size=2\r\noffsets=1.5\r\n"
        let config = try folder.load(text)
        #expect(config.onnxFile == folder.path + "/model.onnx")
        #expect(config.batchSize == 2)
        #expect(config.offsets == [1.5])
        #expect(config.warnings == [])
    }

    static let badValues: [InferConfigBadValue] = [
        InferConfigBadValue(line: "gpu-id=abc"),
        InferConfigBadValue(line: "gpu-id=-1"),
        InferConfigBadValue(line: "net-scale-factor=0"),
        InferConfigBadValue(line: "net-scale-factor=-0.5"),
        InferConfigBadValue(line: "net-scale-factor=nan"),
        InferConfigBadValue(line: "offsets=1;2"),
        InferConfigBadValue(line: "offsets=1;;2"),
        InferConfigBadValue(line: "offsets=1;x;2"),
        InferConfigBadValue(line: "model-color-format=3"),
        InferConfigBadValue(line: "batch-size=0"),
        InferConfigBadValue(line: "process-mode=2"),
        InferConfigBadValue(line: "network-mode=3"),
        InferConfigBadValue(line: "num-detected-classes=-1"),
        InferConfigBadValue(line: "interval=-1"),
        InferConfigBadValue(line: "gie-unique-id=0"),
        InferConfigBadValue(line: "maintain-aspect-ratio=2"),
        InferConfigBadValue(line: "symmetric-padding=yes"),
        InferConfigBadValue(line: "cluster-mode=0"),
        InferConfigBadValue(line: "cluster-mode=3"),
        InferConfigBadValue(line: "output-parser=yolov5"),
        InferConfigBadValue(line: "execution-provider=TPU"),
        InferConfigBadValue(line: "intra-op-threads=-2"),
        InferConfigBadValue(line: "interval=1 # trailing comment"),
        InferConfigBadValue(line: "onnx-file="),
        InferConfigBadValue(line: "pre-cluster-threshold=1.5", inClassGroup: true),
        InferConfigBadValue(line: "post-cluster-threshold=-0.1", inClassGroup: true),
        InferConfigBadValue(line: "nms-iou-threshold=abc", inClassGroup: true),
        InferConfigBadValue(line: "topk=0", inClassGroup: true),
        InferConfigBadValue(line: "topk=-2", inClassGroup: true),
        InferConfigBadValue(line: "detected-min-w=-1", inClassGroup: true),
        InferConfigBadValue(line: "detected-max-h=1.5", inClassGroup: true),
    ]

    @Test(arguments: badValues)
    func aBadValueThrowsNamingLineAndKey(_ bad: InferConfigBadValue) throws {
        let folder = try ConfigFolder()
        let text = minimal + (bad.inClassGroup ? "[class-attrs-all]\n" : "") + bad.line + "\n"
        let expectedLine = bad.inClassGroup ? 5 : 4
        let error = try #require(throws: InferConfigurationError.self) { try folder.load(text) }
        #expect(error.path == folder.path + "/config.txt")
        #expect(error.line == expectedLine)
        #expect(error.key == bad.key)
        #expect(error.description.hasPrefix("\(folder.path)/config.txt:\(expectedLine): bad value for '\(bad.key)': "))
    }

    /// nvinfer reads a C int; a value beyond one was accepted here and then trapped in
    /// `Int32(_:)` when handed to ONNX Runtime or CUDA (fuzz-infer-config now checks it).
    @Test(arguments: ["intra-op-threads=99999999999", "gpu-id=2147483648", "batch-size=4294967297"])
    func anIntegerBeyondACIntIsRefusedNamingLineAndKey(_ line: String) throws {
        let folder = try ConfigFolder()
        let error = try #require(throws: InferConfigurationError.self) { try folder.load(minimal + line + "\n") }
        #expect(error.line == 4)
        #expect(error.key == String(line.split(separator: "=")[0]))
        #expect(error.message.contains("32-bit"))
        #expect(try folder.load(minimal + "intra-op-threads=2147483647\n").intraOpThreads == 2_147_483_647)
    }

    @Test func clusterModeOneIsRefusedNamingTheSupportedModes() throws {
        let folder = try ConfigFolder()
        let error = try #require(throws: InferConfigurationError.self) { try folder.load(minimal + "cluster-mode=1\n") }
        #expect(error.line == 4)
        #expect(error.key == "cluster-mode")
        #expect(error.message.contains("1 (DBSCAN)"))
        #expect(error.message.contains("2 (NMS)"))
        #expect(error.message.contains("4 (no clustering)"))
    }

    @Test func aTrailingCommentGetsAHint() throws {
        let folder = try ConfigFolder()
        let error = try #require(throws: InferConfigurationError.self) { try folder.load(minimal + "batch-size=2 # per source\n") }
        #expect(error.message.contains("own line"))
    }

    @Test func aMissingModelFileIsNamedWithItsLine() throws {
        let folder = try ConfigFolder()
        let error = try #require(throws: InferConfigurationError.self) {
            try folder.load("[property]\nlabelfile-path=labels.txt\nonnx-file=nothere.onnx\n")
        }
        #expect(error.line == 3)
        #expect(error.key == "onnx-file")
        #expect(error.description.contains(folder.path + "/nothere.onnx"))
        #expect(error.description.hasPrefix(folder.path + "/config.txt:3: "))
    }

    @Test func aMissingOnnxFileKeyIsAnError() throws {
        let folder = try ConfigFolder()
        let error = try #require(throws: InferConfigurationError.self) {
            try folder.load("[property]\nlabelfile-path=labels.txt\nmodel-engine-file=x.engine\n")
        }
        #expect(error.line == nil)
        #expect(error.description == "\(folder.path)/config.txt: [property] has no 'onnx-file' (Tributary runs ONNX models only)")
    }

    @Test func aMissingPropertyGroupIsAnError() throws {
        let folder = try ConfigFolder()
        let error = try #require(throws: InferConfigurationError.self) { try folder.load("[class-attrs-all]\ntopk=3\n") }
        #expect(error.description == "\(folder.path)/config.txt: no [property] group")
    }

    @Test func aMissingLabelFileIsNamed() throws {
        let folder = try ConfigFolder()
        let error = try #require(throws: InferConfigurationError.self) {
            try folder.load("[property]\nonnx-file=model.onnx\nlabelfile-path=nolabels.txt\n")
        }
        #expect(error.line == 3)
        #expect(error.key == "labelfile-path")
        #expect(error.message.contains(folder.path + "/nolabels.txt"))
    }

    @Test func aMissingConfigFileIsNamed() throws {
        let error = try #require(throws: InferConfigurationError.self) {
            try InferConfiguration.load(path: "/no/such/config.txt")
        }
        #expect(error.description.hasPrefix("/no/such/config.txt: cannot read config file"))
    }

    @Test func anInt8ModelIsRequiredOnlyInInt8Mode() throws {
        let folder = try ConfigFolder()
        let fp32 = try folder.load(minimal + "int8-onnx-file=missing-int8.onnx\n")
        #expect(fp32.int8OnnxFile == folder.path + "/missing-int8.onnx")
        let error = try #require(throws: InferConfigurationError.self) {
            try folder.load(minimal + "int8-onnx-file=missing-int8.onnx\nnetwork-mode=1\n")
        }
        #expect(error.key == "int8-onnx-file")
        #expect(error.line == 4)
        let noInt8 = try folder.load(minimal + "network-mode=1\n")
        #expect(noInt8.warnings == ["\(folder.path)/config.txt:4: network-mode=1 (INT8) but no int8-onnx-file; running onnx-file"])
    }

    @Test func relativePathsResolveAgainstTheConfigFolder() throws {
        let folder = try ConfigFolder()
        try folder.write("models/net.onnx", "x")
        try folder.write("models/names.txt", "a\nb\n")
        try folder.write("configs/detector.txt", "[property]\nonnx-file=../models/net.onnx\nlabelfile-path=./../models//names.txt\n")
        // The same folder reached from the working directory by a relative path.
        let ups = FileManager.default.currentDirectoryPath.split(separator: "/").map { _ in ".." }.joined(separator: "/")
        let relativeConfig = ups + folder.path + "/configs/detector.txt"
        let config = try InferConfiguration.load(path: relativeConfig)
        #expect(config.path == relativeConfig)
        #expect(config.onnxFile == folder.path + "/models/net.onnx")
        #expect(config.labelfilePath == folder.path + "/models/names.txt")
        #expect(config.labels == ["a", "b"])
    }

    @Test func absolutePathsAreKept() throws {
        let folder = try ConfigFolder()
        let model = try folder.write("elsewhere/abs.onnx", "x")
        let config = try folder.load("[property]\nonnx-file=\(model)\nnum-detected-classes=5\n", name: "configs/c.txt")
        #expect(config.onnxFile == model)
        #expect(config.labels == [])
        #expect(config.numDetectedClasses == 5)
    }

    @Test func labelsLoadOnePerLine() throws {
        let folder = try ConfigFolder()
        try folder.write("labels.txt", "person\r\n\r\n  traffic light \r\ntruck")
        let config = try folder.load(minimal)
        #expect(config.labels == ["person", "traffic light", "truck"])
        #expect(config.numDetectedClasses == 3)
    }

    @Test func labelsLoadFromOneSemicolonSeparatedLine() throws {
        let folder = try ConfigFolder()
        try folder.write("labels.txt", "cat;dog; bird;\n")
        let config = try folder.load(minimal)
        #expect(config.labels == ["cat", "dog", "bird"])
        #expect(config.numDetectedClasses == 3)
    }

    @Test func aClassCountThatDisagreesWithTheLabelsWarns() throws {
        let folder = try ConfigFolder()
        let config = try folder.load(minimal + "num-detected-classes=4\n")
        #expect(config.numDetectedClasses == 4)
        #expect(config.warnings.count == 1)
        #expect(config.warnings.first?.hasPrefix(folder.path + "/config.txt:4: num-detected-classes=4") == true)
    }

    @Test func noClassCountAndNoLabelsIsAnError() throws {
        let folder = try ConfigFolder()
        #expect(throws: InferConfigurationError.self) { try folder.load("[property]\nonnx-file=model.onnx\n") }
    }

    @Test func batchSizeOverrideUsesTheSampleMessage() throws {
        let folder = try ConfigFolder()
        var config = try folder.load(minimal)
        #expect(config.overrideBatchSize(sourceCount: 3) == "WARNING: Overriding infer-config batch-size 1  with number of sources  3")
        #expect(config.batchSize == 3)
        #expect(config.overrideBatchSize(sourceCount: 3) == nil)
        #expect(config.batchSize == 3)
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: Repository.model),
                   "models/yolov3-tiny-416.onnx is missing: run the set-up script"))
    func theShippedConfigLoads() throws {
        let config = try InferConfiguration.load(path: Repository.shippedConfig)
        #expect(config.onnxFile == Repository.model)
        #expect(config.int8OnnxFile == Repository.model.replacingOccurrences(of: "-416.onnx", with: "-416-int8.onnx"))
        #expect(config.labels.count == 80)
        #expect(config.labels.first == "person")
        #expect(config.numDetectedClasses == 80)
        #expect(config.netScaleFactor == 0.0039215697906911373)
        #expect(config.offsets == [0, 0, 0])
        #expect(config.modelColorFormat == .rgb)
        #expect(config.maintainAspectRatio && config.symmetricPadding)
        #expect(config.clusterMode == .nms)
        #expect(config.outputParser == .yolo)
        #expect(config.executionProvider == .cpu)
        #expect(config.intraOpThreads == 2)
        #expect(config.defaultClassAttributes.preClusterThreshold == 0.25)
        #expect(config.defaultClassAttributes.nmsIoUThreshold == 0.45)
        #expect(config.defaultClassAttributes.topK == 100)
        #expect(config.warnings == [])
    }
}

/// The `[tracker]` group: nvtracker's settings by name, errors with file:line:key.
@Suite struct TrackerConfigurationParsingTests {
    @Test func theTrackerGroupIsRead() throws {
        let folder = try ConfigFolder()
        #expect(try folder.load(minimal).tracker == nil, "no group: no tracker")
        let config = try folder.load(minimal + "[tracker]\ntracker-type=iou\nmax-age=12\nmin-hits=2\niou-threshold=0.4\nclass-agnostic=1\n")
        #expect(config.tracker == TrackerConfiguration(kind: .iou, maxAge: 12, minHits: 2, iouThreshold: 0.4, classAgnostic: true))
        #expect(try folder.load(minimal + "[tracker]\n").tracker == TrackerConfiguration(), "defaults: sort, 30, 3, 0.3")
    }

    @Test func aBadTrackerValueNamesTheLineAndKey() throws {
        let folder = try ConfigFolder()
        #expect {
            _ = try folder.load(minimal + "[tracker]\ntracker-type=kalman\n")
        } throws: { error in
            let text = "\(error)"
            return text.contains("config.txt:5") && text.contains("tracker-type") && text.contains("iou, sort")
        }
        #expect {
            _ = try folder.load(minimal + "[tracker]\nmin-hits=0\n")
        } throws: { "\($0)".contains("min-hits") }
        let warned = try folder.load(minimal + "[tracker]\nmax-ages=3\n")
        #expect(warned.warnings.contains { $0.contains(":5: unknown key 'max-ages' in [tracker]") }, "\(warned.warnings)")
    }
}

