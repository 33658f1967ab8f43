import Logging
import Tributary
import TributarySample
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The checks' verdicts: one line each, PASS or FAIL with its figure; the failures' names kept.
final class GPUCheckReport {
    private(set) var failures: [String] = []

    func report(_ name: String, _ passed: Bool, _ figure: String) {
        print("\(passed ? "PASS" : "FAIL")  \(name): \(figure)")
        flushStandardOutput()
        if !passed { failures.append(name) }
    }
}

extension TributaryBenchmark {
    /// `--gpu-check`: every GPU stage against its CPU counterpart on the same pixels; prints one
    /// line per check with its figure and PASS/FAIL, and throws if any fails. Our tests cannot run
    /// on the GPU machine, so the checks a test would make there run from this binary.
    func gpuCheck(uri: SourceURI, configuration: InferConfiguration, logger: Logger) throws {
        let device = try CUDADevice.open(configuration.gpuID)
        print("GPU checks on \(device.name), sm_\(device.computeCapability.major)\(device.computeCapability.minor)")
        let checks = GPUCheckReport()
        let count = 2
        let hostFrames = try checkDecode(uri, count: count, device: device, checks, logger: logger)
        // The same host pixels on both paths from here on.
        let uploaded = try hostFrames.map { frame -> Frame in
            var copy = frame
            copy.image = try frame.image.uploaded(to: device)
            return copy
        }
        var cpuConfiguration = configuration
        cpuConfiguration.executionProvider = .cpu
        cpuConfiguration.batchSize = count
        let cpuDetector = try Detector.load(configuration: cpuConfiguration, logger: logger)
        let tensor = try checkPreprocessing(hostFrames, uploaded, detector: cpuDetector, device: device, checks)
        var gpuConfiguration = configuration
        gpuConfiguration.executionProvider = .cuda
        gpuConfiguration.batchSize = count
        let gpuDetector = try Detector.load(configuration: gpuConfiguration, logger: logger)
        try gpuDetector.bind(to: device)
        let expected = try checkDetections(hostFrames, uploaded, cpu: cpuDetector, gpu: gpuDetector, device: device, checks)
        try checkCandidateFilter(gpuDetector, tensor: tensor, frames: count, device: device, checks)
        try checkEdit(hostFrames[0].image, device: device, checks)
        let tiled = try checkTilerAndOSD(hostFrames, uploaded, objects: expected, detector: cpuDetector, device: device, checks)
        try checkHandOver(tiled, device: device, checks, logger: logger)
        if !checks.failures.isEmpty {
            throw PipelineError.failed(what: "GPU benchmark", message: "GPU checks failed: \(checks.failures.joined(separator: "; "))")
        }
    }

    /// 1. Decode: NVDEC + our NV12 → RGBA kernel vs NVDEC + GStreamer's videoconvert/videoscale.
    /// - Returns: the host frames, the reference for every later check.
    private func checkDecode(_ uri: SourceURI, count: Int, device: CUDADevice, _ checks: GPUCheckReport, logger: Logger) throws -> [Frame] {
        let hostFrames = try firstBatch(uri, count, device: .cpu, logger: logger)
        let deviceFrames = try firstBatch(uri, count, device: .cuda(gpuID: device.ordinal), logger: logger)
        let decodeDifferences = try zip(hostFrames, deviceFrames).map { try difference($0.image, $1.image.onHost()) }
        let meanDifference = decodeDifferences.map(\.meanColour).reduce(0, +) / Double(count)
        let worst = decodeDifferences.map(\.max).max() ?? 0
        checks.report("NV12→RGBA kernel vs videoconvert (same NVDEC frames)", meanDifference < 4, "mean |diff| \(f(meanDifference)) levels, max \(worst)")
        return hostFrames
    }

    /// 2. Pre-processing: the GPU letterbox against the CPU's, on the same pixels.
    /// - Returns: the device tensor, for the checks of inference.
    private func checkPreprocessing(_ hostFrames: [Frame], _ uploaded: [Frame], detector cpuDetector: Detector, device: CUDADevice,
                                    _ checks: GPUCheckReport) throws -> DevicePointer {
        let p = cpuDetector.preprocessor.parameters
        var cpuTensor = [Float](repeating: 0, count: hostFrames.count * cpuDetector.preprocessor.frameElementCount)
        cpuTensor.withUnsafeMutableBufferPointer { cpuDetector.preprocessor.process(hostFrames, into: $0) }
        let transform = cpuDetector.preprocessor.prepare(sourceWidth: width, sourceHeight: height)
        let devicePreprocessor = try DevicePreprocessor(device: device, parameters: p)
        let tensor = try devicePreprocessor.process(uploaded, transform: transform)
        var gpuTensor = [Float](repeating: 0, count: cpuTensor.count)
        let bytes = gpuTensor.count * MemoryLayout<Float>.size
        try gpuTensor.withUnsafeMutableBytes { host in
            try device.copy(byteCount: bytes, from: .device(tensor), to: .host(host.baseAddress!))
        }
        let tensorDifference = zip(cpuTensor, gpuTensor).map { abs($0 - $1) }.max() ?? .infinity
        checks.report("GPU letterbox pre-processing vs CPU", tensorDifference <= 1e-4, "max |diff| \(tensorDifference)")
        return tensor
    }

    /// 3. Detector: CUDA provider on device input vs CPU provider on host input.
    /// - Returns: the CPU detector's detections, drawn by the OSD check.
    private func checkDetections(_ hostFrames: [Frame], _ uploaded: [Frame], cpu cpuDetector: Detector, gpu gpuDetector: Detector,
                                 device: CUDADevice, _ checks: GPUCheckReport) throws -> [[Detection]] {
        let onDevice = gpuDetector.engine.inputDeviceID == device.ordinal
        checks.report("ONNX Runtime CUDA provider with device input binding", onDevice, "provider \(gpuDetector.engine.executionProviderName)")
        let expected = try cpuDetector.detect(hostFrames)
        let got = try gpuDetector.detect(uploaded)
        var matched = 0, total = 0
        for (e, g) in zip(expected, got) {
            total += e.count
            var used = Set<Int>()
            for d in e {
                if let j = g.indices.first(where: { !used.contains($0) && g[$0].classID == d.classID && Clustering.iou(g[$0].rect, d.rect) >= 0.5 }) {
                    used.insert(j)
                    matched += 1
                }
            }
        }
        let share = total == 0 ? 1 : Double(matched) / Double(total)
        checks.report("GPU detections match CPU detections (same class, IoU ≥ 0.5)", total > 0 && share >= 0.95, "\(matched) of \(total)")
        return expected
    }

    /// 3b. The GPU's candidate filter (best class, thresholds) vs the host parser, on the same
    /// device outputs of one run, with a threshold low enough to keep many boxes, and with the
    /// configured ones.
    private func checkCandidateFilter(_ gpuDetector: Detector, tensor: DevicePointer, frames count: Int, device: CUDADevice,
                                      _ checks: GPUCheckReport) throws {
        let configuration = gpuDetector.configuration
        let p = gpuDetector.preprocessor.parameters
        let filter = try DeviceDetectionFilter(device: device, stream: device.makeStream())
        let shape = [count, p.channels, p.networkHeight, p.networkWidth]
        let parser = configuration.outputParser
        let comparison = try gpuDetector.engine.withDeviceOutputs(shape: shape, deviceInput: tensor) { outputs -> (same: Bool, kept: Int, figure: String) in
            let output = outputs[0]
            guard let layout = try OutputParsers.denseLayout(parser, name: output.name, shape: output.shape,
                                                             classCount: configuration.numDetectedClasses) else {
                return (true, 0, "parser \(parser.rawValue) has no GPU filter")
            }
            var host = [Float](repeating: .nan, count: output.shape.reduce(1, *))
            try host.withUnsafeMutableBytes { bytes in
                try device.copy(byteCount: bytes.count, from: .device(output.address), to: .host(bytes.baseAddress!))
            }
            let hostTensor = Tensor(name: output.name, shape: output.shape, data: host)
            var same = true, kept = 0, figures: [String] = []
            for low in [true, false] {
                let thresholds = (0..<layout.classes).map { low ? Float(0.01) : configuration.attributes(forClass: $0).preClusterThreshold }
                let onDevice = try filter.detections(in: output, layout: layout, thresholds: thresholds)
                let onHost = try (0..<count).map { index in
                    try OutputParsers.parse(parser, outputs: [hostTensor], batchIndex: index, inputWidth: p.networkWidth,
                                            inputHeight: p.networkHeight, classCount: configuration.numDetectedClasses,
                                            threshold: { thresholds[$0] })
                }
                same = same && onDevice == onHost
                kept += onHost.map(\.count).reduce(0, +)
                figures.append("\(onDevice.map(\.count).reduce(0, +)) vs \(onHost.map(\.count).reduce(0, +)) boxes (\(low ? "threshold 0.01" : "configured thresholds"))")
            }
            return (same, kept, figures.joined(separator: ", "))
        }
        if let comparison {
            checks.report("GPU candidate filter vs host \(parser.rawValue) parser, same outputs (identical lists)", comparison.same && comparison.kept > 0,
                          comparison.figure)
        } else {
            checks.report("GPU candidate filter vs host parser", false, "the engine cannot leave its outputs on the device")
        }
    }

    /// 4. The sample's edit as a kernel vs the CPU loop.
    private func checkEdit(_ image: ImageBuffer, device: CUDADevice, _ checks: GPUCheckReport) throws {
        let editedOnHost = image.hostCopy()
        editedOnHost.withPixels { SampleEdit.halveRed(&$0) }
        let editedOnDevice = try image.uploaded(to: device)
        try editedOnDevice.withPixels { try SampleEdit.halveRed(inPlace: &$0) }
        let editDifference = try difference(editedOnHost, editedOnDevice.onHost()).max
        checks.report("halve_red elementwise kernel vs CPU edit", editDifference == 0, "max |diff| \(editDifference)")
    }

    /// 5. Tiler and OSD vs the CPU stages.
    /// - Returns: the GPU tiler with the tiled, drawn frame in its output, and that frame on the host.
    private func checkTilerAndOSD(_ hostFrames: [Frame], _ uploaded: [Frame], objects expected: [[Detection]], detector: Detector,
                                  device: CUDADevice, _ checks: GPUCheckReport) throws -> (tiler: DeviceTiler, frame: ImageBuffer) {
        let layout = TileLayout(sourceCount: hostFrames.count, width: width, height: height)
        var hostBatch = FrameBatch(batchID: 0, frames: hostFrames)
        hostBatch.meta.frames = hostBatch.meta.frames.enumerated().map { index, meta in
            var meta = meta
            meta.objects = expected[index].map { ObjectMeta(classID: $0.classID, label: detector.label(of: $0.classID), confidence: $0.confidence, rect: $0.rect, detectorID: 1) }
            // The analytics' overlay too: a region, a crossing line with its arrow, the counts.
            let (w, h) = (Float(width), Float(height))
            let rules = StreamAnalyticsRules(regions: [.init(name: "Left", polygon: [Point(x: 0, y: 0), Point(x: w / 2, y: 0), Point(x: w / 2, y: h), Point(x: 0, y: h)])],
                                             lines: [.init(name: "East", from: Point(x: w * 0.4, y: h * 0.5), to: Point(x: w * 0.6, y: h * 0.5),
                                                           lineStart: Point(x: w * 0.5, y: 0), lineEnd: Point(x: w * 0.45, y: h))])
            var results = FrameAnalytics()
            results.objectsInRegion["Left"] = meta.objects.count
            results.crossingsSoFar["East"] = index
            meta.display = rules.overlay.display(of: rules, results: results)
            return meta
        }
        var deviceBatch = FrameBatch(batchID: 0, frames: uploaded)
        deviceBatch.meta = hostBatch.meta
        let cpuTiled = ImageBuffer.allocateHost(width: width, height: height)
        cpuTiled.withMutableHostView { Tiler(layout: layout).composite(hostBatch, into: $0) }
        let deviceTiler = try DeviceTiler(device: device, layout: layout)
        try deviceTiler.composite(deviceBatch)
        let gpuTiled = ImageBuffer.allocateHost(width: width, height: height)
        try gpuTiled.withMutableHostView { try deviceTiler.download(into: $0) }
        let tileDifference = difference(cpuTiled, gpuTiled).max
        checks.report("GPU tiler vs CPU tiler", tileDifference == 0, "max |diff| \(tileDifference)")
        let renderer = OSDRenderer()
        cpuTiled.withMutableHostView { renderer.drawObjects(of: hostBatch.meta, layout: layout, muxerWidth: width, muxerHeight: height, on: $0) }
        let deviceOSD = try DeviceOSD(device: device, renderer: renderer)
        try deviceOSD.draw(hostBatch.meta, layout: layout, muxerWidth: width, muxerHeight: height, on: deviceTiler.output.address,
                           bytesPerRow: deviceTiler.output.pitch, width: width, height: height, stream: deviceTiler.stream)
        try gpuTiled.withMutableHostView { try deviceTiler.download(into: $0) }
        let osd = difference(cpuTiled, gpuTiled)
        let objects = hostBatch.meta.frames.map(\.objects.count).reduce(0, +)
        let lines = hostBatch.meta.frames.map(\.display.lines.count).reduce(0, +), texts = hostBatch.meta.frames.map(\.display.texts.count).reduce(0, +)
        checks.report("GPU OSD (boxes, glyph-atlas labels, display meta) vs Cairo OSD, \(objects) objects, \(lines) lines, \(texts) texts",
                      osd.differentPixels == 0,
                      "\(osd.differentPixels) pixels differ, max |diff| \(osd.max)")
        return (deviceTiler, gpuTiled)
    }

    /// 6. The tiled frame handed to GStreamer as CUDA memory (as NVENC takes it: our context,
    /// libgstcuda's pool, its strides), read back through cudadownload; 7. NVENC from CUDA
    /// memory, where the card has an encoder: 30 frames into an MP4 that decodes back to 30.
    private func checkHandOver(_ tiled: (tiler: DeviceTiler, frame: ImageBuffer), device: CUDADevice, _ checks: GPUCheckReport,
                               logger: Logger) throws {
        let deviceTiler = tiled.tiler
        // The tiled frame (with the OSD) into a sink's CUDA buffer.
        func copyTiledFrame(to address: DevicePointer, pitch: Int) throws {
            try device.copy2D(from: .device(deviceTiler.output.address), sourcePitch: deviceTiler.output.pitch, to: .device(address),
                              targetPitch: pitch, widthBytes: width * 4, height: height, stream: deviceTiler.stream)
        }
        let rawPath = "/tmp/tributary-gpu-check.rgba"
        unlink(rawPath)
        let deviceSink = try VideoSink(deviceTail: "cudadownload ! video/x-raw,format=RGBA ! filesink location=\(rawPath)",
                                       device: device, width: width, height: height, logger: logger)
        try deviceSink.pushDeviceFrame(pts: 0, copyTiledFrame)
        try deviceSink.finish()
        if let handedOver = readRawFrame(rawPath, width: width, height: height) {
            let handOver = difference(tiled.frame, handedOver)
            checks.report("tiled frame handed to GStreamer as CUDA memory, read back by cudadownload", handOver.differentPixels == 0,
                          "\(handOver.differentPixels) pixels differ")
        } else {
            checks.report("tiled frame handed to GStreamer as CUDA memory, read back by cudadownload", false, "no frame in \(rawPath)")
        }
        guard let encoder = VideoSink.deviceEncoder(gpu: device.ordinal) else {
            print("SKIP  NVENC from CUDA memory: \(device.name) has no NVENC (nvcudah264enc not registered)")
            return
        }
        let mp4 = "/tmp/tributary-gpu-check.mp4"
        unlink(mp4)
        let sink = try VideoSink(outputs: [.mp4(path: mp4)], width: width, height: height, gpu: device.ordinal, device: device, logger: logger)
        for index in 0..<30 {
            try sink.pushDeviceFrame(pts: UInt64(index) * 33_333_333, copyTiledFrame)
        }
        try sink.finish()
        let decoded = try decodedFrameCount(try SourceURI(mp4), logger: logger)
        checks.report("\(encoder) from CUDA memory → MP4", sink.takesDeviceFrames && decoded == 30, "\(decoded) of 30 frames decode back")
    }
}
