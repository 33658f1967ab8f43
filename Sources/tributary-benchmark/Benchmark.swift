import ArgumentParser
import Logging
import Tributary

/// Throughput on this machine, one table, every figure from the same run (medians of
/// `--repetitions` runs): the full pipeline with the detector, the same without it, and ONNX
/// Runtime alone on already pre-processed batches — the ceiling the pipeline is measured against.
@main
struct TributaryBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tributary-benchmark",
                                                    abstract: "Measure pipeline and inference throughput.")

    @Option(name: [.short, .customLong("input")], help: "Input file or URI.")
    var input = "media/sample_1080p_h264.mp4"

    @Option(name: [.short, .customLong("config")], help: "Detector config (nvinfer format).")
    var config = "configs/yolov3_tiny_pgie_config.txt"

    @Option(name: .customLong("streams"), parsing: .upToNextOption, help: "Stream counts to measure.")
    var streams: [Int] = [1, 4]

    @Option(name: .customLong("repetitions"), help: "Runs per figure; the median is reported.")
    var repetitions = 3

    @Option(name: .customLong("frames"), help: "Frames per stream in pipeline runs (the input is cut there).")
    var frames = 120

    @Option(name: .customLong("width")) var width = 1920
    @Option(name: .customLong("height")) var height = 1080

    func run() throws {
        var logger = Logger(label: "benchmark")
        logger.logLevel = .warning
        let uri = try SourceURI(input)
        let inferConfiguration = try InferConfiguration.load(path: config)
        let clock = MonotonicClock()
        print("cores: \(processorCount()), input: \(input), muxer \(width)×\(height), model \(inferConfiguration.onnxFile ?? "?"), intra-op threads \(inferConfiguration.intraOpThreads)")
        print("| streams | pipeline+detector FPS | decode→tile FPS | ORT alone FPS (batch N) | pipeline / ORT |")
        print("|---|---|---|---|---|")
        for n in streams {
            func pipelineFPS(detect: Bool) throws -> Double {
                try median((0..<repetitions).map { _ in
                    let configuration = PipelineConfiguration(
                        inputs: Array(repeating: uri, count: n),
                        muxer: StreamMuxerConfiguration(batchSize: n, width: width, height: height),
                        outputs: [.discard], perfIntervalNanoseconds: 0)
                    var detectorConfiguration = inferConfiguration
                    detectorConfiguration.batchSize = n
                    let detector = detect ? try Detector.load(configuration: detectorConfiguration, logger: logger) : nil
                    let pipeline = try Pipeline(configuration: configuration, detector: detector, logger: logger)
                    var delivered = 0
                    let start = clock.now()
                    pipeline.onBatch = { batch in
                        delivered += batch.frames.count
                        if delivered >= n * frames { pipeline.requestStop(signal: 0) }
                    }
                    _ = pipeline.run()
                    return Double(delivered) / (Double(clock.now().nanoseconds(since: start)) / 1e9)
                })
            }
            let withDetector = try pipelineFPS(detect: true)
            let decodeOnly = try pipelineFPS(detect: false)
            let ceiling = try inferenceFPS(configuration: inferConfiguration, batch: n, logger: logger)
            print("| \(n) | \(format(withDetector)) | \(format(decodeOnly)) | \(format(ceiling)) | \(format(withDetector / ceiling)) |")
        }
    }

    /// ONNX Runtime alone: the same model, batch and threads, input already pre-processed.
    private func inferenceFPS(configuration: InferConfiguration, batch: Int, logger: Logger) throws -> Double {
        let detector = try Detector.load(configuration: configuration, logger: logger)
        let p = detector.preprocessor.parameters
        let shape = [batch, p.channels, p.networkHeight, p.networkWidth]
        let input = [Float](repeating: 0.5, count: shape.reduce(1, *))
        let clock = MonotonicClock()
        _ = try input.withUnsafeBufferPointer { try detector.engine.run(shape: shape, data: $0) }  // warm-up
        let runs = max(3, 24 / batch)
        return try median((0..<repetitions).map { _ in
            let start = clock.now()
            for _ in 0..<runs { _ = try input.withUnsafeBufferPointer { try detector.engine.run(shape: shape, data: $0) } }
            return Double(runs * batch) / (Double(clock.now().nanoseconds(since: start)) / 1e9)
        })
    }

    private func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
    private func format(_ x: Double) -> String { PerfMonitor.pythonRounded(x) }
}
