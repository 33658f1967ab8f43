import Testing
@testable import Tributary

/// The host side of the GPU's candidate filter: the layout it hands the kernel and the way the
/// kernel's records become detections. (The kernel itself runs in `--gpu-check` on the GPU
/// machine, against the host parser on the same outputs; CI compiles it.)
@Suite struct DeviceDetectionFilterTests {
    /// What the kernel does for one box, written over the layout's strides: best class (first
    /// maximum), confidence, threshold. The record it would write, or nil.
    static func kernelRecord(_ data: [Float], _ l: OutputParsers.DenseLayout, frame: Int, box: Int, thresholds: [Float]) -> [Float]? {
        func value(_ field: Int) -> Float { data[frame * l.frameStride + box * l.boxStride + field * l.fieldStride] }
        var best = value(l.firstScoreField), bestClass = 0
        for k in 1..<l.classes where value(l.firstScoreField + k) > best {
            best = value(l.firstScoreField + k)
            bestClass = k
        }
        let confidence = l.objectnessField.map { value($0) * best } ?? best
        guard confidence >= thresholds[bestClass] else { return nil }
        return [Float(bitPattern: UInt32(frame)), Float(bitPattern: UInt32(box)), Float(bitPattern: UInt32(bestClass)), confidence,
                value(0), value(1), value(2), value(3)]
    }

    @Test(arguments: [OutputParserKind.yolo, .yolov8])
    func theLayoutAddressesWhatTheHostParserReads(kind: OutputParserKind) throws {
        let tensor = kind == .yolo ? OutputParserTests.yolo : OutputParserTests.yolov8
        let layout = try #require(try OutputParsers.denseLayout(kind, name: tensor.name, shape: tensor.shape, classCount: 0))
        #expect(layout.batch == 2)
        let thresholds = [Float](repeating: 0.2, count: layout.classes)
        // Records in the reverse of box order, as racing GPU threads may take their slots.
        var records: [Float] = []
        for frame in (0..<layout.batch).reversed() {
            for box in (0..<layout.boxes).reversed() {
                records += Self.kernelRecord(tensor.data, layout, frame: frame, box: box, thresholds: thresholds) ?? []
            }
        }
        let filtered = records.withUnsafeBufferPointer { DeviceDetectionFilter.detections(fromCandidates: $0, frames: layout.batch) }
        for frame in 0..<layout.batch {
            let parsed = try OutputParsers.parse(kind, outputs: [tensor], batchIndex: frame, inputWidth: 416, inputHeight: 416,
                                                 classCount: 0, threshold: { thresholds[$0] })
            #expect(!parsed.isEmpty)
            #expect(filtered[frame] == parsed, "frame \(frame)")
        }
    }

    @Test func recordsOfAFrameComeBackInBoxOrderAndOthersStayEmpty() {
        func record(frame: Int, box: Int, classID: Int, confidence: Float) -> [Float] {
            [Float(bitPattern: UInt32(frame)), Float(bitPattern: UInt32(box)), Float(bitPattern: UInt32(classID)), confidence, 10, 20, 4, 8]
        }
        let records = record(frame: 2, box: 900, classID: 3, confidence: 0.5) + record(frame: 0, box: 7, classID: 1, confidence: 0.25)
            + record(frame: 2, box: 12, classID: 0, confidence: 0.75)
        let result = records.withUnsafeBufferPointer { DeviceDetectionFilter.detections(fromCandidates: $0, frames: 3) }
        let rect = Rect(left: 8, top: 16, width: 4, height: 8)
        #expect(result == [
            [Detection(classID: 1, confidence: 0.25, rect: rect)],
            [],
            [Detection(classID: 0, confidence: 0.75, rect: rect), Detection(classID: 3, confidence: 0.5, rect: rect)],
        ])
    }

    @Test func ssdHasNoDenseLayoutAndBadShapesThrowAsTheParserDoes() throws {
        #expect(try OutputParsers.denseLayout(.ssd, name: "boxes", shape: [1, 10, 4], classCount: 0) == nil)
        #expect(throws: OutputParserError.self) {
            _ = try OutputParsers.denseLayout(.yolo, name: "out", shape: [1, 10, 84], classCount: 80)
        }
        let layout = try #require(try OutputParsers.denseLayout(.yolov8, name: "out", shape: [4, 84, 8400], classCount: 80))
        #expect(layout == OutputParsers.DenseLayout(batch: 4, boxes: 8400, classes: 80, frameStride: 84 * 8400, boxStride: 1,
                                                    fieldStride: 8400, objectnessField: nil, firstScoreField: 4))
    }
}
