import CoreMetrics
import Logging
import Tributary
import TributarySample
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension TributaryBenchmark {
    /// `--latency-seconds S`: for each `--streams` count, that many copies of the input looping in
    /// real time (each frame handed out at its presentation time, as a camera's), through the
    /// whole pipeline (detector, the sample's edit, tiler, OSD, fakesink) for S seconds after a
    /// 5-s warm-up; the frames' decode → sink latency from the pipeline's own histogram
    /// (`tributary_frame_latency_seconds`, recorded here instead of Prometheus), and the frame rate.
    func latencyTable(uri: SourceURI, configuration: InferConfiguration, seconds: Int, logger: Logger) throws {
        let device: ComputeDevice = latencyDevice == "cuda" ? .cuda(gpuID: 0) : .cpu
        print("Frame latency, decode → sink, \(seconds) s after a 5-s warm-up, input \(input) looping in real time, "
              + "muxer \(width)×\(height), device \(device), detector \(configuration.onnxFile ?? "?")"
              + (tracker.map { ", \($0.rawValue) tracker" } ?? "") + (batchSize.map { ", batch size \($0)" } ?? ""))
        print("| streams | frames | fps per stream | dropped | p50 ms | p95 ms | p99 ms | max ms |")
        print("|---|---|---|---|---|---|---|---|")
        let chart = chartData(.latency, machine: "\(device == .cpu ? cpuMachine(streamsNote: "K x") : "\((try? CUDADevice.open(0).name) ?? "GPU 0"), K x \(input), muxer \(width)x\(height)"), "
                              + "looping in real time")
        for k in streams {
            let recorder = LatencyRecorder()
            var inferConfiguration = configuration
            inferConfiguration.batchSize = batch(k)
            if let tracker { inferConfiguration.tracker = TrackerConfiguration(kind: tracker) }
            if case .cuda(let gpuID) = device {
                inferConfiguration.executionProvider = .cuda
                inferConfiguration.gpuID = gpuID
            }
            let detector = try Detector.load(configuration: inferConfiguration, logger: logger)
            detector.filtersOutputsOnDevice = !hostOutputParsing
            var pipelineConfiguration = PipelineConfiguration(
                inputs: Array(repeating: uri, count: k), muxer: StreamMuxerConfiguration(batchSize: batch(k), width: width, height: height),
                outputs: [.discard], osd: true, fileLoop: true, perfIntervalNanoseconds: 0, device: device)
            pipelineConfiguration.realTime = true
            pipelineConfiguration.metricsFactory = recorder
            pipelineConfiguration.detectionWorkers = detectionWorkers
            let pipeline = try Pipeline(configuration: pipelineConfiguration, detector: detector, logger: logger)
            pipeline.probe = { batch in try? SampleEdit.halveRed(&batch) }
            // Frames decoded and dropped (late: the streams are cameras) within the window.
            let window = Locked<(decoded: Int, dropped: Int)>((0, 0))
            @Sendable func totals() -> (decoded: Int, dropped: Int) {
                pipeline.ledger.allCounts.reduce((0, 0)) { ($0.0 + $1.decoded, $0.1 + $1.droppedTotal) }
            }
            let timer = WorkerThread(name: "latency-timer") { [pipeline] in
                sleep(5)
                recorder.reset()
                let start = totals()
                sleep(UInt32(seconds))
                recorder.stop()
                let end = totals()
                window.withValue { $0 = (end.decoded - start.decoded, end.dropped - start.dropped) }
                pipeline.requestStop(signal: 0)
            }
            let outcome = pipeline.run()
            timer.join()
            guard outcome.succeeded else { throw PipelineError.failed(what: "latency run of \(k) streams", message: "a stage or source failed") }
            let (values, elapsed) = recorder.values()
            let sorted = values.sorted()
            func percentile(_ p: Double) -> String {
                guard !sorted.isEmpty else { return "–" }
                return f(Double(sorted[min(sorted.count - 1, Int(p * Double(sorted.count)))]) / 1e6)
            }
            let fps = Double(sorted.count) / max(elapsed, 1e-9) / Double(k)
            let (decoded, dropped) = window.withValue { $0 }
            let droppedShare = "\(f(Double(dropped) / Double(max(1, decoded)) * 100)) %"
            print("| \(k) | \(sorted.count) | \(f(fps)) | \(droppedShare) | \(percentile(0.5)) | \(percentile(0.95)) | \(percentile(0.99)) | \(sorted.last.map { f(Double($0) / 1e6) } ?? "–") |")
            flushStandardOutput()
            chart?.add(["\(k)", tracker?.rawValue ?? "none", "\(seconds)", "\(sorted.count)", f(fps), percentile(0.5), percentile(0.95),
                        percentile(0.99), sorted.last.map { f(Double($0) / 1e6) }])
        }
    }
}

/// A swift-metrics backend that keeps only the frame latencies, every one (the benchmark's
/// percentiles are exact); the pipeline's other metrics go nowhere.
final class LatencyRecorder: MetricsFactory, TimerHandler, @unchecked Sendable {
    private let state = Locked<(values: [Int64], recording: Bool, started: MonotonicInstant, stopped: MonotonicInstant?)>(
        ([], false, MonotonicClock().now(), nil))

    func reset() { state.withValue { $0 = ([], true, MonotonicClock().now(), nil) } }
    func stop() { state.withValue { $0.recording = false; $0.stopped = MonotonicClock().now() } }
    /// The latencies recorded (nanoseconds) and the seconds they were recorded over.
    func values() -> ([Int64], Double) {
        state.withValue { ($0.values, ($0.stopped ?? MonotonicClock().now()).seconds - $0.started.seconds) }
    }

    func recordNanoseconds(_ duration: Int64) {
        state.withValue { if $0.recording { $0.values.append(duration) } }
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        label == PipelineMetricNames.frameLatencySeconds ? self : NOOPMetricsHandler.instance
    }
    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler { NOOPMetricsHandler.instance }
    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler { NOOPMetricsHandler.instance }
    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler { NOOPMetricsHandler.instance }
    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler { NOOPMetricsHandler.instance }
    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyMeter(_ handler: any MeterHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}
}
