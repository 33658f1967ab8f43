import Testing
@testable import Tributary

/// Hand-built tensors with dyadic values so every confidence and rect is exact in Float.
@Suite struct OutputParserTests {
    static func all(_ value: Float) -> (Int) -> Float { { _ in value } }

    // MARK: yolo

    /// `[2, 2, 5 + 3]`: two frames of two boxes, 3 classes.
    static let yolo = Tensor(name: "output0", shape: [2, 2, 8], data: [
        // frame 0
        50, 40, 20, 10, 0.5, 0.25, 0.75, 0.125,  // class 1, 0.5 × 0.75 = 0.375
        10, 10, 4, 4, 0.25, 0.5, 0, 0,           // class 0, 0.125: below 0.2
        // frame 1
        100, 60, 30, 20, 0.75, 0.5, 0.5, 0.25,   // tie 0/1: class 0 wins, 0.375
        20, 30, 8, 6, 1.0, 0, 0.25, 0.5,         // class 2, 0.5
    ])

    @Test func yoloFrameZero() throws {
        let result = try OutputParsers.parse(.yolo, outputs: [Self.yolo], batchIndex: 0, inputWidth: 416, inputHeight: 416,
                                             classCount: 3, threshold: Self.all(0.2))
        #expect(result == [Detection(classID: 1, confidence: 0.375, rect: Rect(left: 40, top: 35, width: 20, height: 10))])
    }

    @Test func yoloBatchIndexSelectsTheSecondFrameAndFirstMaxWins() throws {
        let result = try OutputParsers.parse(.yolo, outputs: [Self.yolo], batchIndex: 1, inputWidth: 416, inputHeight: 416,
                                             classCount: 3, threshold: Self.all(0.2))
        #expect(result == [
            Detection(classID: 0, confidence: 0.375, rect: Rect(left: 85, top: 50, width: 30, height: 20)),
            Detection(classID: 2, confidence: 0.5, rect: Rect(left: 16, top: 27, width: 8, height: 6)),
        ])
    }

    @Test func yoloThresholdIsPerClassAndInclusive() throws {
        var asked: [Int] = []
        let result = try OutputParsers.parse(.yolo, outputs: [Self.yolo], batchIndex: 1, inputWidth: 416, inputHeight: 416,
                                             classCount: 3, threshold: { asked.append($0); return $0 == 2 ? 0.625 : 0.375 })
        #expect(result == [Detection(classID: 0, confidence: 0.375, rect: Rect(left: 85, top: 50, width: 30, height: 20))])
        #expect(asked == [0, 1, 2])  // looked up once per class, not once per box
    }

    @Test func yoloKeepsOnlyTheBestClass() throws {
        // Class 0 is best (0.5) but under its 0.75 threshold; class 1 (0.25) would pass its own, yet is not tried.
        let tensor = Tensor(name: "out", shape: [1, 1, 7], data: [8, 8, 4, 4, 1.0, 0.5, 0.25])
        let result = try OutputParsers.parse(.yolo, outputs: [tensor], batchIndex: 0, inputWidth: 16, inputHeight: 16,
                                             classCount: 2, threshold: { $0 == 0 ? 0.75 : 0.125 })
        #expect(result.isEmpty)
    }

    @Test func yoloInfersClassCountFromTheShape() throws {
        let result = try OutputParsers.parse(.yolo, outputs: [Self.yolo], batchIndex: 1, inputWidth: 416, inputHeight: 416,
                                             classCount: 0, threshold: Self.all(0.2))
        #expect(result.map(\.classID) == [0, 2])
        #expect(result.map(\.confidence) == [0.375, 0.5])
    }

    // MARK: yolov8

    /// `[2, 4 + 2, 3]`, channel-major: each row is one channel across the 3 boxes.
    static let yolov8 = Tensor(name: "output0", shape: [2, 6, 3], data: [
        // frame 0: three unit boxes, both classes 0.875 (tie: class 0)
        1, 1, 1,
        1, 1, 1,
        1, 1, 1,
        1, 1, 1,
        0.875, 0.875, 0.875,
        0.875, 0.875, 0.875,
        // frame 1
        10, 50, 90,            // cx
        20, 60, 100,           // cy
        4, 10, 20,             // w
        6, 8, 40,              // h
        0.5, 0.125, 0.25,      // class 0
        0.25, 0.75, 0.25,      // class 1
    ])

    @Test func yolov8ReadsTheTransposedLayout() throws {
        let result = try OutputParsers.parse(.yolov8, outputs: [Self.yolov8], batchIndex: 1, inputWidth: 640, inputHeight: 640,
                                             classCount: 2, threshold: Self.all(0.2))
        #expect(result == [
            Detection(classID: 0, confidence: 0.5, rect: Rect(left: 8, top: 17, width: 4, height: 6)),
            Detection(classID: 1, confidence: 0.75, rect: Rect(left: 45, top: 56, width: 10, height: 8)),
            Detection(classID: 0, confidence: 0.25, rect: Rect(left: 80, top: 80, width: 20, height: 40)),
        ])
    }

    @Test func yolov8FrameZeroAndPerClassThreshold() throws {
        let first = try OutputParsers.parse(.yolov8, outputs: [Self.yolov8], batchIndex: 0, inputWidth: 640, inputHeight: 640,
                                            classCount: 0, threshold: Self.all(0.2))
        #expect(first == Array(repeating: Detection(classID: 0, confidence: 0.875, rect: Rect(left: 0.5, top: 0.5, width: 1, height: 1)),
                               count: 3))
        let second = try OutputParsers.parse(.yolov8, outputs: [Self.yolov8], batchIndex: 1, inputWidth: 640, inputHeight: 640,
                                             classCount: 2, threshold: { $0 == 0 ? 0.5 : 0.875 })
        #expect(second == [Detection(classID: 0, confidence: 0.5, rect: Rect(left: 8, top: 17, width: 4, height: 6))])
    }

    // MARK: ssd

    /// Two frames, K = 3; frame 1 has count 2, so its third (strong) entry must be ignored.
    static func ssdOutputs(names: [String] = ["detection_boxes", "detection_classes", "detection_scores", "num_detections"]) -> [Tensor] {
        [
            Tensor(name: names[0], shape: [2, 3, 4], data: [
                0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1,
                0.25, 0.5, 0.75, 1.0,    // ymin, xmin, ymax, xmax
                0, 0, 0.5, 0.25,
                0, 0, 1, 1,
            ]),
            Tensor(name: names[1], shape: [2, 3], data: [7, 7, 7, 3, 1, 2]),
            Tensor(name: names[2], shape: [2, 3], data: [0.9, 0.9, 0.9, 0.875, 0.5, 0.99]),
            Tensor(name: names[3], shape: [2], data: [3, 2]),
        ]
    }

    static let ssdFrame1 = [
        Detection(classID: 3, confidence: 0.875, rect: Rect(left: 150, top: 50, width: 150, height: 100)),
        Detection(classID: 1, confidence: 0.5, rect: Rect(left: 0, top: 0, width: 75, height: 100)),
    ]

    @Test func ssdFindsOutputsByNameAndHonoursCount() throws {
        let o = Self.ssdOutputs(names: ["detection_boxes", "detection_classes", "detection_scores", "num_detections"])
        let shuffled = [o[3], o[2], o[0], o[1]]
        let result = try OutputParsers.parse(.ssd, outputs: shuffled, batchIndex: 1, inputWidth: 300, inputHeight: 200,
                                             classCount: 0, threshold: Self.all(0.2))
        #expect(result == Self.ssdFrame1)
    }

    @Test func ssdNameMatchIsCaseInsensitiveAndAcceptsCount() throws {
        let o = Self.ssdOutputs(names: ["BBoxes", "Classes", "Scores", "Count"])
        let result = try OutputParsers.parse(.ssd, outputs: [o[2], o[3], o[1], o[0]], batchIndex: 1, inputWidth: 300, inputHeight: 200,
                                             classCount: 0, threshold: Self.all(0.2))
        #expect(result == Self.ssdFrame1)
    }

    @Test func ssdFallsBackToOrderWhenNamesDoNotTell() throws {
        let o = Self.ssdOutputs(names: ["out0", "out1", "out2", "out3"])
        let result = try OutputParsers.parse(.ssd, outputs: o, batchIndex: 1, inputWidth: 300, inputHeight: 200,
                                             classCount: 0, threshold: Self.all(0.2))
        #expect(result == Self.ssdFrame1)
        // Frame 0: count 3, all class 7, 0.9, full-frame boxes.
        let first = try OutputParsers.parse(.ssd, outputs: o, batchIndex: 0, inputWidth: 300, inputHeight: 200,
                                            classCount: 0, threshold: Self.all(0.2))
        #expect(first == Array(repeating: Detection(classID: 7, confidence: 0.9, rect: Rect(left: 0, top: 0, width: 300, height: 200)),
                               count: 3))
    }

    @Test func ssdThresholdAndClassRange() throws {
        let o = Self.ssdOutputs()
        let perClass = try OutputParsers.parse(.ssd, outputs: o, batchIndex: 1, inputWidth: 300, inputHeight: 200,
                                               classCount: 0, threshold: { $0 == 1 ? 0.625 : 0.2 })
        #expect(perClass == [Self.ssdFrame1[0]])
        // With 3 classes, id 3 is out of range and dropped.
        let ranged = try OutputParsers.parse(.ssd, outputs: o, batchIndex: 1, inputWidth: 300, inputHeight: 200,
                                             classCount: 3, threshold: Self.all(0.2))
        #expect(ranged == [Self.ssdFrame1[1]])
    }

    @Test func ssdCountIsClampedToK() throws {
        var o = Self.ssdOutputs()
        o[3] = Tensor(name: "num_detections", shape: [2], data: [0, 7])
        let result = try OutputParsers.parse(.ssd, outputs: o, batchIndex: 1, inputWidth: 300, inputHeight: 200,
                                             classCount: 0, threshold: Self.all(0.2))
        #expect(result == Self.ssdFrame1 + [Detection(classID: 2, confidence: 0.99, rect: Rect(left: 0, top: 0, width: 300, height: 200))])
        let none = try OutputParsers.parse(.ssd, outputs: o, batchIndex: 0, inputWidth: 300, inputHeight: 200,
                                           classCount: 0, threshold: Self.all(0.2))
        #expect(none.isEmpty)
    }

    // MARK: errors

    static func zeros(_ name: String, _ shape: [Int]) -> Tensor {
        Tensor(name: name, shape: shape, data: Array(repeating: 0, count: shape.reduce(1, *)))
    }

    @Test func yoloClassCountMismatchNamesTensorAndShapes() throws {
        let error = try #require(throws: OutputParserError.self) {
            try OutputParsers.parse(.yolo, outputs: [Self.zeros("output0", [1, 4, 84])], batchIndex: 0, inputWidth: 416, inputHeight: 416,
                                    classCount: 80, threshold: Self.all(0.2))
        }
        #expect(error.message == "yolo output 'output0': expected shape [N, boxes, 5 + 80] = [N, boxes, 85], got [1, 4, 84]")
        #expect(error.description == error.message)
    }

    @Test func yoloRankAndBatchAndOutputCountErrors() throws {
        let rank = try #require(throws: OutputParserError.self) {
            try OutputParsers.parse(.yolo, outputs: [Self.zeros("flat", [4, 85])], batchIndex: 0, inputWidth: 416, inputHeight: 416,
                                    classCount: 80, threshold: Self.all(0.2))
        }
        #expect(rank.message == "yolo output 'flat': expected shape [N, boxes, 5 + 80] = [N, boxes, 85], got [4, 85]")

        let batch = try #require(throws: OutputParserError.self) {
            try OutputParsers.parse(.yolo, outputs: [Self.zeros("output0", [1, 4, 85])], batchIndex: 1, inputWidth: 416, inputHeight: 416,
                                    classCount: 80, threshold: Self.all(0.2))
        }
        #expect(batch.message == "yolo output 'output0': batch index 1 out of range for shape [1, 4, 85] (N = 1)")

        let count = try #require(throws: OutputParserError.self) {
            try OutputParsers.parse(.yolo, outputs: [Self.zeros("a", [1, 4, 85]), Self.zeros("b", [1, 4, 85])], batchIndex: 0,
                                    inputWidth: 416, inputHeight: 416, classCount: 80, threshold: Self.all(0.2))
        }
        #expect(count.message == "yolo: expected 1 output, got 2: [\"a\", \"b\"]")

        // Inferring C needs at least one class column.
        #expect(throws: OutputParserError.self) {
            try OutputParsers.parse(.yolo, outputs: [Self.zeros("output0", [1, 4, 5])], batchIndex: 0, inputWidth: 416, inputHeight: 416,
                                    classCount: 0, threshold: Self.all(0.2))
        }
    }

    @Test func yolov8ShapeError() throws {
        // The untransposed `[N, boxes, 4 + C]` layout is refused.
        let error = try #require(throws: OutputParserError.self) {
            try OutputParsers.parse(.yolov8, outputs: [Self.zeros("output0", [1, 8400, 84])], batchIndex: 0, inputWidth: 640, inputHeight: 640,
                                    classCount: 80, threshold: Self.all(0.2))
        }
        #expect(error.message == "yolov8 output 'output0': expected shape [N, 4 + 80, boxes] = [N, 84, boxes], got [1, 8400, 84]")
    }

    @Test func ssdShapeErrors() throws {
        var o = Self.ssdOutputs()
        o[0] = Self.zeros("detection_boxes", [2, 3, 5])
        let boxes = try #require(throws: OutputParserError.self) {
            try OutputParsers.parse(.ssd, outputs: o, batchIndex: 0, inputWidth: 300, inputHeight: 200, classCount: 0, threshold: Self.all(0.2))
        }
        #expect(boxes.message == "ssd boxes output 'detection_boxes': expected shape [N, K, 4], got [2, 3, 5]")

        o = Self.ssdOutputs()
        o[2] = Self.zeros("detection_scores", [2, 4])
        let scores = try #require(throws: OutputParserError.self) {
            try OutputParsers.parse(.ssd, outputs: o, batchIndex: 0, inputWidth: 300, inputHeight: 200, classCount: 0, threshold: Self.all(0.2))
        }
        #expect(scores.message == "ssd scores output 'detection_scores': expected shape [2, 3], got [2, 4]")

        let batch = try #require(throws: OutputParserError.self) {
            try OutputParsers.parse(.ssd, outputs: Self.ssdOutputs(), batchIndex: 2, inputWidth: 300, inputHeight: 200,
                                    classCount: 0, threshold: Self.all(0.2))
        }
        #expect(batch.message == "ssd boxes output 'detection_boxes': batch index 2 out of range for shape [2, 3, 4] (N = 2)")

        let missing = try #require(throws: OutputParserError.self) {
            try OutputParsers.parse(.ssd, outputs: Array(Self.ssdOutputs(names: ["o0", "o1", "o2", "o3"]).prefix(3)), batchIndex: 0,
                                    inputWidth: 300, inputHeight: 200, classCount: 0, threshold: Self.all(0.2))
        }
        #expect(missing.message == "ssd: expected 4 outputs (boxes, classes, scores, count) or names that tell them apart, got 3: [\"o0\", \"o1\", \"o2\"]")
    }
}
