/// A model output that does not have the layout the configured parser expects.
public struct OutputParserError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
    public init(message: String) { self.message = message }
}

/// Decoders that turn raw detector outputs into `Detection`s, one frame of the batch at a time.
/// These run on every frame, so the inner loops read the tensors through unsafe buffer pointers
/// and allocate nothing per box.
public enum OutputParsers {
    /// Decodes frame `batchIndex` of the model outputs into detections in network-input pixels,
    /// keeping only those whose confidence ≥ the class's pre-cluster threshold (threshold(classID)).
    ///
    /// `classCount` must match the class dimension of YOLO outputs; 0 infers it from the shape.
    /// SSD outputs carry no class dimension: with `classCount` > 0, class ids outside
    /// `0..<classCount` are dropped so `threshold` is never asked about an unknown class.
    public static func parse(_ kind: OutputParserKind, outputs: [Tensor], batchIndex: Int, inputWidth: Int, inputHeight: Int,
                             classCount: Int, threshold: (Int) -> Float) throws -> [Detection] {
        guard classCount >= 0 else {
            throw OutputParserError(message: "\(kind.rawValue): class count must be ≥ 0, got \(classCount)")
        }
        switch kind {
        case .yolo:
            return try parseYOLO(outputs: outputs, batchIndex: batchIndex, classCount: classCount, threshold: threshold)
        case .yolov8:
            return try parseYOLOv8(outputs: outputs, batchIndex: batchIndex, classCount: classCount, threshold: threshold)
        case .ssd:
            return try parseSSD(outputs: outputs, batchIndex: batchIndex, inputWidth: inputWidth, inputHeight: inputHeight,
                                classCount: classCount, threshold: threshold)
        }
    }

    /// A dense parser's one output, its layout checked for `batchIndex`, and each class's
    /// threshold, looked up once per call rather than once per box.
    private static func denseInput(_ kind: OutputParserKind, outputs: [Tensor], batchIndex: Int, classCount: Int,
                                   threshold: (Int) -> Float) throws -> (Tensor, DenseLayout, [Float]) {
        let tensor = try single(kind.rawValue, outputs)
        let layout = try denseLayout(kind, name: tensor.name, shape: tensor.shape, classCount: classCount)!
        try checkBatch(kind.rawValue, tensor, batchIndex: batchIndex, batch: layout.batch)
        return (tensor, layout, (0..<layout.classes).map { threshold($0) })
    }

    // MARK: - YOLO (v3/v4/v5 style)

    /// `[N, boxes, 5 + C]`: cx, cy, w, h, objectness, C class probabilities. One detection per box
    /// (best class only), like DeepStream's YOLO parsers.
    static func parseYOLO(outputs: [Tensor], batchIndex: Int, classCount: Int, threshold: (Int) -> Float) throws -> [Detection] {
        let (tensor, layout, thresholds) = try denseInput(.yolo, outputs: outputs, batchIndex: batchIndex, classCount: classCount,
                                                          threshold: threshold)
        let boxes = layout.boxes, stride = layout.boxStride, classes = layout.classes
        var detections: [Detection] = []
        tensor.data.withUnsafeBufferPointer { data in
            thresholds.withUnsafeBufferPointer { thresholds in
                var row = batchIndex * boxes * stride
                for _ in 0..<boxes {
                    // Argmax with `>` so the first maximum wins on ties; selects, not a branch, because
                    // noisy class scores make the branch mispredict (~15% faster on random 2535×85 scores).
                    var best = 0
                    var bestProbability = data[row + 5]
                    for k in 1..<classes {
                        let p = data[row + 5 + k]
                        let better = p > bestProbability
                        bestProbability = better ? p : bestProbability
                        best = better ? k : best
                    }
                    let confidence = data[row + 4] * bestProbability
                    if confidence >= thresholds[best] {
                        detections.append(Detection(classID: best, confidence: confidence,
                                                    rect: centred(data[row], data[row + 1], data[row + 2], data[row + 3])))
                    }
                    row += stride
                }
            }
        }
        return detections
    }

    // MARK: - YOLOv8 (channel-major, no objectness)

    /// `[N, 4 + C, boxes]`: rows cx, cy, w, h, then one row of scores per class.
    static func parseYOLOv8(outputs: [Tensor], batchIndex: Int, classCount: Int, threshold: (Int) -> Float) throws -> [Detection] {
        let (tensor, layout, thresholds) = try denseInput(.yolov8, outputs: outputs, batchIndex: batchIndex, classCount: classCount,
                                                          threshold: threshold)
        let boxes = layout.boxes, classes = layout.classes, channels = 4 + classes
        var detections: [Detection] = []
        tensor.data.withUnsafeBufferPointer { data in
            thresholds.withUnsafeBufferPointer { thresholds in
                let base = batchIndex * channels * boxes
                // Scan the scores row by row (contiguous) rather than striding down each box's
                // column: a running best per box in scratch space keeps the reads sequential.
                withUnsafeTemporaryAllocation(of: Float.self, capacity: boxes) { bestScore in
                    withUnsafeTemporaryAllocation(of: Int32.self, capacity: boxes) { bestClass in
                        let firstRow = base + 4 * boxes
                        for b in 0..<boxes {
                            bestScore[b] = data[firstRow + b]
                            bestClass[b] = 0
                        }
                        for k in 1..<classes {
                            let row = base + (4 + k) * boxes
                            let classID = Int32(truncatingIfNeeded: k)
                            for b in 0..<boxes {
                                let score = data[row + b]
                                // `>`: the first maximum wins on ties, as for `yolo`. Selects, not a branch, so it vectorises.
                                let better = score > bestScore[b]
                                bestScore[b] = better ? score : bestScore[b]
                                bestClass[b] = better ? classID : bestClass[b]
                            }
                        }
                        for b in 0..<boxes {
                            let classID = Int(bestClass[b])
                            let confidence = bestScore[b]
                            guard confidence >= thresholds[classID] else { continue }
                            let rect = centred(data[base + b], data[base + boxes + b],
                                               data[base + 2 * boxes + b], data[base + 3 * boxes + b])
                            detections.append(Detection(classID: classID, confidence: confidence, rect: rect))
                        }
                    }
                }
            }
        }
        return detections
    }

    // MARK: - SSD (TensorFlow object-detection API)

    /// Boxes `[N, K, 4]` (ymin, xmin, ymax, xmax, normalised), scores `[N, K]`, classes `[N, K]`
    /// (float ids), count `[N]` (`[N, 1]` is accepted too); only the first count entries are valid.
    static func parseSSD(outputs: [Tensor], batchIndex: Int, inputWidth: Int, inputHeight: Int,
                         classCount: Int, threshold: (Int) -> Float) throws -> [Detection] {
        guard inputWidth > 0, inputHeight > 0 else {
            throw OutputParserError(message: "ssd: input size must be positive, got \(inputWidth)×\(inputHeight)")
        }
        let (boxes, classes, scores, count) = try ssdRoles(outputs)
        guard boxes.shape.count == 3, boxes.shape[2] == 4, boxes.shape[1] >= 0 else {
            throw shapeError("ssd boxes", boxes, expected: "[N, K, 4]")
        }
        let batch = boxes.shape[0], k = boxes.shape[1]
        guard scores.shape == [batch, k] else { throw shapeError("ssd scores", scores, expected: "[\(batch), \(k)]") }
        guard classes.shape == [batch, k] else { throw shapeError("ssd classes", classes, expected: "[\(batch), \(k)]") }
        guard count.shape == [batch] || count.shape == [batch, 1] else {
            throw shapeError("ssd count", count, expected: "[\(batch)]")
        }
        try checkBatch("ssd boxes", boxes, batchIndex: batchIndex, batch: batch)

        // `!(raw > 0)` also maps NaN to 0; clamp before converting so Int() cannot trap.
        let raw = count.data[batchIndex]
        let valid = !(raw > 0) ? 0 : (raw >= Float(k) ? k : Int(raw))
        // Ids at or past this bound are dropped; without a class count only keep ids that fit an Int32.
        let idLimit: Float = classCount > 0 ? Float(classCount) - 0.5 : 0x1p31
        let width = Float(inputWidth), height = Float(inputHeight)

        var detections: [Detection] = []
        boxes.data.withUnsafeBufferPointer { boxData in
            scores.data.withUnsafeBufferPointer { scoreData in
                classes.data.withUnsafeBufferPointer { classData in
                    let first = batchIndex * k
                    for i in first..<(first + valid) {
                        let id = classData[i]
                        // Rejects NaN and ±inf as well as out-of-range ids.
                        guard id > -0.5, id < idLimit else { continue }
                        let classID = Int(id.rounded())
                        let confidence = scoreData[i]
                        guard confidence >= threshold(classID) else { continue }
                        let b = 4 * i
                        let ymin = boxData[b], xmin = boxData[b + 1], ymax = boxData[b + 2], xmax = boxData[b + 3]
                        let rect = Rect(left: xmin * width, top: ymin * height,
                                        width: (xmax - xmin) * width, height: (ymax - ymin) * height)
                        detections.append(Detection(classID: classID, confidence: confidence, rect: rect))
                    }
                }
            }
        }
        return detections
    }

    /// Picks the SSD outputs by name (case-insensitive substrings "box", "class", "score", "num"/"count").
    /// A role claimed by exactly one output gets it; the roles left over take the outputs left over
    /// in the order boxes, classes, scores, count — which needs exactly four outputs.
    static func ssdRoles(_ outputs: [Tensor]) throws -> (boxes: Tensor, classes: Tensor, scores: Tensor, count: Tensor) {
        let keywords: [[String]] = [["box"], ["class"], ["score"], ["num", "count"]]
        let names = outputs.map { $0.name.lowercased() }
        var assigned: [Int?] = [nil, nil, nil, nil]
        var taken = [Bool](repeating: false, count: outputs.count)
        for role in 0..<4 {
            let candidates = names.indices.filter { i in keywords[role].contains { names[i].contains($0) } }
            if candidates.count == 1, !taken[candidates[0]] {
                assigned[role] = candidates[0]
                taken[candidates[0]] = true
            }
        }
        if assigned.contains(where: { $0 == nil }) {
            guard outputs.count == 4 else {
                throw OutputParserError(message: "ssd: expected 4 outputs (boxes, classes, scores, count) or names that tell them apart, got \(outputs.count): \(outputs.map(\.name))")
            }
            var rest = outputs.indices.filter { !taken[$0] }.makeIterator()
            for role in 0..<4 where assigned[role] == nil { assigned[role] = rest.next() }
        }
        return (outputs[assigned[0]!], outputs[assigned[1]!], outputs[assigned[2]!], outputs[assigned[3]!])
    }

    // MARK: - Dense layouts (yolo, yolov8), shared with the GPU's candidate filter

    /// Where a dense detection output keeps its values: the value `field` of box `box` of frame
    /// `frame` is element `frame × frameStride + box × boxStride + field × fieldStride`; fields
    /// 0–3 are cx, cy, w, h, then the objectness (yolo only), then one score per class.
    public struct DenseLayout: Sendable, Equatable {
        public var batch: Int
        public var boxes: Int
        public var classes: Int
        public var frameStride: Int
        public var boxStride: Int
        public var fieldStride: Int
        /// 4 for yolo (confidence = objectness × best class score); nil for yolov8 (the score alone).
        public var objectnessField: Int?
        public var firstScoreField: Int
    }

    /// The layout of a `yolo` (`[N, boxes, 5 + C]`) or `yolov8` (`[N, 4 + C, boxes]`) output of
    /// `shape`; nil for the other parsers. Throws when the shape does not fit the parser.
    public static func denseLayout(_ kind: OutputParserKind, name: String, shape: [Int], classCount: Int) throws -> DenseLayout? {
        guard kind == .yolo || kind == .yolov8 else { return nil }
        // yolo: boxes × (cx, cy, w, h, objectness, C scores); yolov8: (cx, cy, w, h, C scores) × boxes.
        let transposed = kind == .yolov8, headerFields = transposed ? 4 : 5
        func shapeText(_ channels: String) -> String { transposed ? "[N, \(channels), boxes]" : "[N, boxes, \(channels)]" }
        let expected = classCount > 0
            ? "\(shapeText("\(headerFields) + \(classCount)")) = \(shapeText("\(headerFields + classCount)"))"
            : shapeText("\(headerFields) + C")
        guard shape.count == 3, shape[transposed ? 2 : 1] >= 0 else { throw shapeError(kind.rawValue, name: name, shape: shape, expected: expected) }
        let boxes = shape[transposed ? 2 : 1], channels = shape[transposed ? 1 : 2]
        let classes = classCount > 0 ? classCount : channels - headerFields
        guard classes >= 1, channels == headerFields + classes else { throw shapeError(kind.rawValue, name: name, shape: shape, expected: expected) }
        return DenseLayout(batch: shape[0], boxes: boxes, classes: classes, frameStride: channels * boxes,
                           boxStride: transposed ? 1 : channels, fieldStride: transposed ? boxes : 1,
                           objectnessField: transposed ? nil : 4, firstScoreField: headerFields)
    }

    // MARK: - Helpers

    @inline(__always)
    static func centred(_ cx: Float, _ cy: Float, _ w: Float, _ h: Float) -> Rect {
        Rect(left: cx - w / 2, top: cy - h / 2, width: w, height: h)
    }

    static func single(_ kind: String, _ outputs: [Tensor]) throws -> Tensor {
        guard outputs.count == 1 else {
            throw OutputParserError(message: "\(kind): expected 1 output, got \(outputs.count): \(outputs.map(\.name))")
        }
        return outputs[0]
    }

    static func checkBatch(_ kind: String, _ tensor: Tensor, batchIndex: Int, batch: Int) throws {
        guard batchIndex >= 0, batchIndex < batch else {
            throw OutputParserError(message: "\(kind) output '\(tensor.name)': batch index \(batchIndex) out of range for shape \(tensor.shape) (N = \(batch))")
        }
    }

    static func shapeError(_ kind: String, _ tensor: Tensor, expected: String) -> OutputParserError {
        shapeError(kind, name: tensor.name, shape: tensor.shape, expected: expected)
    }

    static func shapeError(_ kind: String, name: String, shape: [Int], expected: String) -> OutputParserError {
        OutputParserError(message: "\(kind) output '\(name)': expected shape \(expected), got \(shape)")
    }
}
