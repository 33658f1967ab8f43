import ArgumentParser
import Logging
import Tributary

/// Throughput of the pipeline's stages on this machine; prints one table. The CPU performance
/// issue extends it with the detector and the ceilings side by side.
@main
struct TributaryBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tributary-benchmark",
                                                    abstract: "Measure decode → mux → tile throughput.")

    @Option(name: [.short, .customLong("input")], help: "Input file or URI.")
    var input = "media/sample_1080p_h264.mp4"

    @Option(name: .customLong("streams"), parsing: .upToNextOption, help: "Stream counts to measure.")
    var streams: [Int] = [1, 4]

    @Option(name: .customLong("repetitions"), help: "Runs per configuration; the median is reported.")
    var repetitions = 3

    @Option(name: .customLong("width")) var width = 1920
    @Option(name: .customLong("height")) var height = 1080

    func run() throws {
        var logger = Logger(label: "benchmark")
        logger.logLevel = .warning
        let uri = try SourceURI(input)
        let clock = MonotonicClock()
        print("| streams | frames | median s | aggregate FPS | per-stream FPS |")
        print("|---|---|---|---|---|")
        for n in streams {
            var times: [Double] = []
            var frames = 0
            for _ in 0..<repetitions {
                let configuration = PipelineConfiguration(
                    inputs: Array(repeating: uri, count: n),
                    muxer: StreamMuxerConfiguration(batchSize: n, width: width, height: height),
                    sink: .discard, perfIntervalNanoseconds: 0)
                let pipeline = try Pipeline(configuration: configuration, logger: logger)
                let start = clock.now()
                let outcome = pipeline.run()
                times.append(Double(clock.now().nanoseconds(since: start)) / 1e9)
                frames = outcome.ledger.allCounts.reduce(0) { $0 + $1.delivered }
            }
            let median = times.sorted()[times.count / 2]
            let fps = Double(frames) / median
            print("| \(n) | \(frames) | \(format(median)) | \(format(fps)) | \(format(fps / Double(n))) |")
        }
    }

    private func format(_ x: Double) -> String { PerfMonitor.pythonRounded(x) }
}
