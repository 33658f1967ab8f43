/// The GPU path's first half of the `yolo` and `yolov8` parsers: picks each box's best class and
/// keeps the boxes that reach their class's pre-cluster threshold on the GPU, so only those come
/// down (a few hundred bytes a frame) instead of the whole output (≈ 860 KB a frame for
/// YOLOv3-tiny-416: 55 MB a batch of 64, which the host then scanned). What it returns per frame
/// is exactly what `OutputParsers.parse` gives for that frame of the same output.
package final class DeviceDetectionFilter: @unchecked Sendable {
    let device: CUDADevice
    private let kernel: CUDAFunction
    private let stream: CUDAStream
    private let counter: DeviceMemory
    private var candidates: DeviceMemory
    private var capacity: Int
    private var thresholds: DeviceMemory?
    private var uploadedThresholds: [Float] = []
    private var downloaded: [Float] = []

    /// Words a kept box takes: frame, box, class (as int bits), confidence, cx, cy, w, h.
    static let candidateWords = 8

    package init(device: CUDADevice, stream: CUDAStream) throws {
        self.device = device
        self.stream = stream
        kernel = try device.function(named: "dense_detection_candidates", source: CUDAKernels.denseDetectionCandidates)
        counter = try device.allocate(byteCount: MemoryLayout<UInt32>.size)
        capacity = 4096
        candidates = try device.allocate(byteCount: capacity * Self.candidateWords * MemoryLayout<Float>.size)
    }

    /// Raw detections (network-input pixels, before clustering) of every frame of `output`, in
    /// box order; `thresholds[c]` is class c's pre-cluster threshold (one per class of `layout`).
    package func detections(in output: DeviceTensor, layout: OutputParsers.DenseLayout, thresholds classThresholds: [Float]) throws -> [[Detection]] {
        precondition(classThresholds.count == layout.classes, "one threshold per class")
        guard layout.batch > 0 else { return [] }
        guard layout.boxes > 0 else { return Array(repeating: [], count: layout.batch) }
        let floatSize = MemoryLayout<Float>.size
        if classThresholds != uploadedThresholds {  // also the first call: every layout has a class
            let memory = try device.allocate(byteCount: classThresholds.count * floatSize)
            var values = classThresholds
            try values.withUnsafeMutableBytes { bytes in
                try device.copy(byteCount: bytes.count, from: .host(bytes.baseAddress!), to: .device(memory.address), stream: stream)
            }
            thresholds = memory
            uploadedThresholds = classThresholds
        }
        var kept = 0
        while true {
            try device.set32(counter.address, to: 0, count: 1, stream: stream)
            var arguments = KernelArguments()
            arguments.append(output.address)
            for value in [layout.batch, layout.boxes, layout.classes, layout.frameStride, layout.boxStride, layout.fieldStride,
                          layout.objectnessField ?? -1, layout.firstScoreField] {
                arguments.append(value)
            }
            arguments.append(thresholds!.address)
            arguments.append(candidates.address)
            arguments.append(counter.address)
            arguments.append(capacity)
            try kernel.launch(grid: ((layout.boxes + 127) / 128, layout.batch, 1), block: (128, 1, 1), stream: stream, arguments: arguments)
            var count: UInt32 = 0
            try withUnsafeMutableBytes(of: &count) { bytes in
                try device.copy(byteCount: bytes.count, from: .device(counter.address), to: .host(bytes.baseAddress!), stream: stream)
            }
            kept = Int(count)
            guard kept > capacity else { break }
            // More kept than fit (a low threshold): room for all of them, and once more.
            capacity = kept * 2
            candidates = try device.allocate(byteCount: capacity * Self.candidateWords * floatSize)
        }
        let words = kept * Self.candidateWords
        if downloaded.count < words { downloaded = [Float](repeating: 0, count: words) }
        if words > 0 {
            try downloaded.withUnsafeMutableBytes { bytes in
                try device.copy(byteCount: words * floatSize, from: .device(candidates.address), to: .host(bytes.baseAddress!), stream: stream)
            }
        }
        return downloaded.withUnsafeBufferPointer {
            Self.detections(fromCandidates: UnsafeBufferPointer(rebasing: $0[0..<words]), frames: layout.batch)
        }
    }

    /// The kernel's records (in the order the GPU's threads took their slots) as detections per
    /// frame, each frame's in box order as the host parsers give them.
    static func detections(fromCandidates records: UnsafeBufferPointer<Float>, frames: Int) -> [[Detection]] {
        var perFrame = [[(box: Int32, detection: Detection)]](repeating: [], count: frames)
        var index = 0
        while index + candidateWords <= records.count {
            let frame = Int(Int32(bitPattern: records[index].bitPattern))
            let box = Int32(bitPattern: records[index + 1].bitPattern)
            let classID = Int(Int32(bitPattern: records[index + 2].bitPattern))
            if frame >= 0, frame < frames {
                let rect = OutputParsers.centred(records[index + 4], records[index + 5], records[index + 6], records[index + 7])
                perFrame[frame].append((box, Detection(classID: classID, confidence: records[index + 3], rect: rect)))
            }
            index += candidateWords
        }
        return perFrame.map { kept in kept.sorted { $0.box < $1.box }.map(\.detection) }
    }
}
