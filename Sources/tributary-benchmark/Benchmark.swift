import ArgumentParser
import CGStreamer
import Logging
import Tributary
import TributarySample
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Throughput on this machine, one table, every figure from the same run (medians of
/// `--repetitions` runs) with its ceiling beside it:
/// (a) the full pipeline (decode → mux → detect → probe edit → tile → OSD → fakesink / MP4),
/// (b) ONNX Runtime alone on already pre-processed batches of the same size and threads,
/// (c) decode-only (no detector, no OSD) against the same GStreamer decode graph run alone,
/// (d) peak RSS, (e) the ratios. FP32 and INT8 side by side.
@main
struct TributaryBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tributary-benchmark",
                                                    abstract: "Measure pipeline throughput against its ceilings.")

    @Option(name: [.short, .customLong("input")], help: "Input file.")
    var input = "media/sample_1080p_h264.mp4"

    @Option(name: [.short, .customLong("config")], help: "Detector config (nvinfer format).")
    var config = "configs/yolov3_tiny_pgie_config.txt"

    @Option(name: .customLong("streams"), parsing: .upToNextOption, help: "Stream counts to measure (default: 1 4 8; a soak: 4).")
    var streamCounts: [Int] = []

    /// The stream counts to measure: `--streams`, else 1, 4 and 8.
    var streams: [Int] { streamCounts.isEmpty ? [1, 4, 8] : streamCounts }

    @Option(name: .customLong("repetitions"), help: "Runs per figure; the median is reported.")
    var repetitions = 3

    @Option(name: .customLong("frames"), help: "Frames per stream in each pipeline run with the detector.")
    var frames = 60

    @Option(name: .customLong("decode-frames"), help: "Frames per stream in decode-only runs and their ceiling (start-up is a large share of short runs).")
    var decodeFrames = 300

    @Flag(name: .customLong("no-int8"), help: "Skip the INT8 columns.")
    var noInt8 = false

    @Flag(name: .customLong("no-mp4"), help: "Skip the MP4 column.")
    var noMP4 = false

    @Option(name: .customLong("soak-minutes"), help: ArgumentHelp(
        "Instead of the table: a soak this long (fractions allowed): --streams' first count (4) of the input looping, detector, sort tracker, "
            + "OSD, MP4 and JSON-lines output; RSS, open fds (and GPU memory) every --soak-interval s; their trend over the last 20 min "
            + "(or 2/3 of the run), the frame ledger and a verdict (exit 1 on FAIL).", valueName: "M"))
    var soakMinutes: Double?

    @Option(name: .customLong("soak-seconds"), help: ArgumentHelp("The soak's length in seconds instead (CI).", valueName: "N"))
    var soakSeconds: Int?

    @Option(name: .customLong("soak-interval"), help: ArgumentHelp("Seconds between the soak's samples.", valueName: "S"))
    var soakInterval = 30.0

    @Option(name: .customLong("soak-max-rss-growth"), help: ArgumentHelp(
        "The soak's goal for RSS: its least-squares growth over the window below this percentage of its mean there.", valueName: "PERCENT"))
    var soakRSSGrowthLimit = 2.0

    @Option(name: .customLong("soak-device"), help: "For the soak: cpu or cuda (GPU 0; device memory sampled too).")
    var soakDevice = "cpu"

    @Flag(name: .customLong("soak-keep-files"), help: "Keep the soak's MP4 and JSON lines (default: removed after their sizes are printed).")
    var soakKeepFiles = false

    @Flag(name: .customLong("gpu-table"), help: "The GPU table: NVDEC ceiling, GPU pipeline and CPU path per stream count.")
    var gpuTableMode = false

    @Flag(name: .customLong("gpu-check"), help: "Check every GPU stage against its CPU counterpart on the same pixels.")
    var gpuCheckMode = false

    @Option(name: .customLong("gpus"), parsing: .upToNextOption, help: "In --gpu-table, also run K streams per GPU on each of these GPU counts.")
    var gpuCounts: [Int] = [1]

    @Option(name: .customLong("streams-per-gpu"), parsing: .upToNextOption, help: "Stream counts per GPU for the --gpus table (default: --streams).")
    var streamsPerGPU: [Int] = []

    @Option(name: .customLong("gpu-processes"), parsing: .upToNextOption,
            help: "For the --gpus table: 'one' (every GPU's pipeline in this process), 'per-gpu' (a process per GPU, started together), or both.")
    var gpuProcesses: [String] = ["one"]

    /// A child of a `per-gpu` row: one run of `--streams`' first count on this GPU.
    @Option(name: .customLong("child-gpu"), help: .hidden)
    var childGPU: Int?

    @Option(name: .customLong("cpu-path-max-streams"), help: "In --gpu-table, run the CPU path only up to this many streams.")
    var cpuPathMaximumStreams = 8

    @Option(name: .customLong("detection-workers"), help: "Detectors working on consecutive batches at once (default: 2 on a GPU, 1 on the CPU).")
    var detectionWorkers: Int?

    @Flag(name: .customLong("host-output-parsing"), help: "On the GPU path, parse the detector's whole output on the CPU instead of filtering it on the GPU.")
    var hostOutputParsing = false

    @Flag(name: .customLong("tracker-table"), help: "Instead of the table: the tracker's cost per frame, and throughput and counts with interval 0, 1, 2 and the sort tracker.")
    var trackerTableMode = false

    @Option(name: .customLong("latency-seconds"), help: "Instead of the table: per --streams count, the frames' decode → sink latency (p50/p95/p99) over this many seconds of looping real-time streams.")
    var latencySeconds: Int?

    @Option(name: .customLong("tracker"), help: "For --gpu-table and --latency-seconds: this tracker (iou or sort) after the detector.")
    var tracker: TrackerConfiguration.Kind?

    @Option(name: .customLong("batch-size"), help: "For --gpu-table and --latency-seconds: the muxer's and detector's batch size, at most the stream count (default: the stream count).")
    var batchSize: Int?

    @Option(name: .customLong("latency-device"), help: "For --latency-seconds: cpu or cuda (GPU 0).")
    var latencyDevice = "cpu"

    @Option(name: .customLong("redis-throughput"), help: "Instead of the table: this many frame messages through the Redis sink to a redis-server started here.")
    var redisMessages: Int?

    @Option(name: .customLong("width")) var width = 1920
    @Option(name: .customLong("height")) var height = 1080

    @OptionGroup var charts: ChartOptions

    func validate() throws {
        if soakMinutes != nil && soakSeconds != nil { throw ValidationError("--soak-minutes or --soak-seconds, not both") }
        if let soakMinutes, !(soakMinutes > 0) { throw ValidationError("--soak-minutes \(soakMinutes): a positive number of minutes") }
        if let soakSeconds, soakSeconds <= 0 { throw ValidationError("--soak-seconds \(soakSeconds): a positive number of seconds") }
        if !(soakInterval > 0) { throw ValidationError("--soak-interval \(soakInterval): a positive number of seconds") }
        if !["cpu", "cuda"].contains(soakDevice) { throw ValidationError("--soak-device \(soakDevice): cpu or cuda") }
        if let batchSize, batchSize < 1 { throw ValidationError("--batch-size \(batchSize): at least 1") }
    }

    func run() throws {
        var logger = Logger(label: "benchmark")
        logger.logLevel = .warning
        if let redisMessages { return try redisThroughput(messages: redisMessages, logger: logger) }
        let uri = try SourceURI(input)
        let fp32 = try InferConfiguration.load(path: config)
        var int8 = fp32
        int8.networkMode = 1
        let haveInt8 = !noInt8 && int8.int8OnnxFile.map { access($0, R_OK) == 0 } == true
        if let soakSeconds = soakMinutes.map({ $0 * 60 }) ?? soakSeconds.map(Double.init) {
            var passed = false
            do { passed = try soak(uri: uri, configuration: fp32, seconds: soakSeconds, logger: logger) } catch {
                printError("Error: \(error)")
            }
            let status: Int32 = passed && renderCharts() ? 0 : 1
            // On a GPU every figure is printed by then: skip the CUDA libraries' exit-time teardown.
            if soakDevice == "cuda" { exitWithoutLibraryTeardown(status) }
            if status != 0 { throw ExitCode(status) }
            return
        }
        if trackerTableMode { return try trackerTable(uri: uri, configuration: fp32, logger: logger) }
        if let latencySeconds {
            do { try latencyTable(uri: uri, configuration: fp32, seconds: latencySeconds, logger: logger) } catch {
                printError("Error: \(error)")
                exitWithoutLibraryTeardown(1)
            }
            exitWithoutLibraryTeardown(renderCharts() ? 0 : 1)
        }
        if let childGPU { childRun(uri: uri, configuration: fp32, gpu: childGPU, logger: logger) }
        if gpuCheckMode || gpuTableMode {
            // Every figure is printed by then: skip the CUDA libraries' exit-time teardown.
            do {
                if gpuCheckMode { try gpuCheck(uri: uri, configuration: fp32, logger: logger) }
                if gpuTableMode { try gpuTable(uri: uri, configuration: fp32, logger: logger) }
            } catch {
                printError("Error: \(error)")
                exitWithoutLibraryTeardown(1)
            }
            exitWithoutLibraryTeardown(renderCharts() ? 0 : 1)
        }

        print("Tributary benchmark: \(processorCount()) cores, input \(input), muxer \(width)×\(height), "
              + "\(frames) frames per stream per detector run, \(decodeFrames) per decode run, median of \(repetitions); "
              + "ORT intra-op threads \(fp32.intraOpThreads); aggregate frames per second")
        var header = "| N | (a) FP32 → fakesink | (a) FP32 → MP4 | (b) ORT FP32 | (a)/(b) FP32 |"
        if haveInt8 { header += " (a) INT8 → fakesink | (b) ORT INT8 | (a)/(b) INT8 | INT8 / FP32 pipeline |" }
        header += " (c) decode-only | (c) GStreamer alone | (c) ratio | peak RSS MB |"
        print(header)
        print(String(repeating: "|---", count: header.split(separator: "|").count) + "|")
        var rssByStreams: [(Int, Double)] = []
        let chart = chartData(.cpuFPS, machine: cpuMachine(streamsNote: "N x"))
        for n in streams {
            let peak = RSSSampler()
            let a32 = try median { try pipelineFPS(uri, n, detector: fp32, outputs: [.discard], logger) }
            let a32mp4 = noMP4 ? nil : try median { try pipelineFPS(uri, n, detector: fp32, outputs: [.mp4(path: "/tmp/tributary-benchmark.mp4")], logger) }
            let b32 = try inferenceFPS(fp32, batch: n, logger)
            var row = "| \(n) | \(f(a32)) | \(a32mp4.map(f) ?? "–") | \(f(b32)) | \(f(a32 / b32)) |"
            var int8Figures: [String?] = [nil, nil, nil, nil]
            if haveInt8 {
                let a8 = try median { try pipelineFPS(uri, n, detector: int8, outputs: [.discard], logger) }
                let b8 = try inferenceFPS(int8, batch: n, logger)
                row += " \(f(a8)) | \(f(b8)) | \(f(a8 / b8)) | \(f(a8 / a32)) |"
                int8Figures = [f(a8), f(b8), f(a8 / b8), f(a8 / a32)]
            }
            let c = try median { try pipelineFPS(uri, n, detector: nil, outputs: [.discard], frames: decodeFrames, logger) }
            let ceiling = try median { try gstreamerAloneFPS(uri, n, frames: decodeFrames) }
            let rss = peak.stop()
            rssByStreams.append((n, rss))
            row += " \(f(c)) | \(f(ceiling)) | \(f(c / ceiling)) | \(f(rss)) |"
            print(row)
            flushStandardOutput()
            chart?.add(["\(n)", f(a32), a32mp4.map(f), f(b32), f(a32 / b32)] + int8Figures + [f(c), f(ceiling), f(c / ceiling), f(rss)])
        }
        if let first = rssByStreams.first, let last = rssByStreams.last, last.0 > first.0 {
            print("RSS per added stream: \(f((last.1 - first.1) / Double(last.0 - first.0))) MB (peak at N=\(last.0) minus N=\(first.0))")
        }
        if !renderCharts() { throw ExitCode.failure }
    }

    /// Aggregate frames per second of pipeline runs cut at `frames` per stream: one pipeline of
    /// `n` streams per entry of `devices` (a GPU each for the `--gpus` table), run together, with
    /// the detector (its batch `n`, on that GPU), the sample's edit and the OSD when a detector
    /// config is given.
    func pipelineFPS(_ uri: SourceURI, _ n: Int, detector inferConfiguration: InferConfiguration?, outputs: [SinkKind],
                     frames: Int? = nil, devices: [ComputeDevice] = [.cpu], beforeRun: () -> Void = {},
                     onFrames: (@Sendable ([FrameMeta]) -> Void)? = nil, _ logger: Logger) throws -> Double {
        let target = n * (frames ?? self.frames)
        let delivered = Locked([Int](repeating: 0, count: devices.count))
        let rate = SteadyRate(total: target * devices.count, batch: n * devices.count)
        let pipelines = try devices.enumerated().map { index, device -> Pipeline in
            var detector: Detector?
            if var inferConfiguration {
                inferConfiguration.batchSize = batch(n)
                if let tracker { inferConfiguration.tracker = TrackerConfiguration(kind: tracker) }
                if case .cuda(let gpuID) = device { inferConfiguration.gpuID = gpuID }
                detector = try Detector.load(configuration: inferConfiguration, logger: logger)
                detector?.filtersOutputsOnDevice = !hostOutputParsing
                try detector?.warmUp(batchSize: batch(n))
            }
            var configuration = PipelineConfiguration(
                inputs: Array(repeating: uri, count: n), muxer: StreamMuxerConfiguration(batchSize: batch(n), width: width, height: height),
                outputs: outputs, osd: detector != nil, perfIntervalNanoseconds: 0, device: device)
            configuration.detectionWorkers = detectionWorkers
            let pipeline = try Pipeline(configuration: configuration, detector: detector, logger: logger)
            let edit = detector != nil
            pipeline.probe = { [unowned pipeline] batch in
                if edit { try? SampleEdit.halveRed(&batch) }
                let count = delivered.withValue { $0[index] += batch.frameCount; return $0[index] }
                if count <= target { onFrames?(batch.meta.frames) }
                if count <= target { rate.add(batch.frameCount) }
                if count >= target { pipeline.requestStop(signal: 0) }
            }
            return pipeline
        }
        beforeRun()
        guard PipelineGroup(pipelines).run().outcomes.allSatisfy(\.succeeded) else {
            throw PipelineError.failed(what: "benchmark", message: "a pipeline run failed")
        }
        return try rate.framesPerSecond()
    }

    /// The same decode graph as a source, N branches in one `gst-launch`-style pipeline, each cut
    /// at `frames` by `identity eos-after`.
    private func gstreamerAloneFPS(_ uri: SourceURI, _ n: Int, frames: Int) throws -> Double {
        let branches = (0..<n).map { index in
            VideoSource.decodeGraph(width: width, height: height, uri: uri.uri, name: "decoder\(index)")
                + " ! identity eos-after=\(frames) ! " + countedSink(index)
        }
        return try timedLaunch(branches.joined(separator: " "), sinks: n, frames: n * frames,
                               decoderThreads: VideoSource.softwareDecoderThreads(streams: n))
    }

    /// A branch's end for `timedLaunch`: a fakesink that reports each frame.
    func countedSink(_ index: Int) -> String { "fakesink sync=false signal-handoffs=true name=counted\(index)" }

    /// Frames per second, at steady state (`SteadyRate`), of a `gst-launch`-style description
    /// whose branches end in `countedSink(0..<sinks)`, run to its end-of-stream in this process
    /// (the plugin registry already loaded).
    /// `decoderThreads` limits its software decoders as the app's sources are (0: libav chooses).
    func timedLaunch(_ description: String, sinks: Int, frames: Int, decoderThreads: Int = 0) throws -> Double {
        var error: UnsafeMutablePointer<GError>?
        guard let pipeline = gst_parse_launch(description, &error), error == nil else {
            throw PipelineError.failed(what: "benchmark", message: "cannot build the pipeline \(description.prefix(80))…")
        }
        defer { gst_object_unref(pipeline) }
        if decoderThreads > 0 { VideoSource.limitSoftwareDecoderThreads(in: pipeline, to: decoderThreads) }
        let rate = SteadyRate(total: frames, batch: sinks)
        let handoff: @convention(c) (gpointer?, gpointer?, gpointer?, gpointer?) -> Void = { _, _, _, counter in
            Unmanaged<SteadyRate>.fromOpaque(counter!).takeUnretainedValue().add(1)
        }
        for index in 0..<sinks {
            guard let sink = gst_bin_get_by_name(tb_bin(pipeline), "counted\(index)") else {
                throw PipelineError.failed(what: "benchmark", message: "no counted\(index) in \(description.prefix(80))…")
            }
            _ = tb_signal_connect(sink, "handoff", unsafeBitCast(handoff, to: UnsafeMutableRawPointer.self),
                                  Unmanaged.passUnretained(rate).toOpaque())
            gst_object_unref(sink)
        }
        gst_element_set_state(pipeline, GST_STATE_PLAYING)
        let bus = gst_element_get_bus(pipeline)
        defer { gst_object_unref(bus) }
        let types = GstMessageType(rawValue: GST_MESSAGE_EOS.rawValue | GST_MESSAGE_ERROR.rawValue)
        let message = gst_bus_timed_pop_filtered(bus, GstClockTime(600_000_000_000), types)
        var failure: String? = message == nil ? "no end-of-stream within 600 s" : nil
        if let message {
            if tb_message_type(message) == GST_MESSAGE_ERROR { failure = GStreamer.describe(message).text }
            gst_message_unref(message)
        }
        gst_element_set_state(pipeline, GST_STATE_NULL)
        if let failure { throw PipelineError.failed(what: "benchmark", message: "\(description.prefix(80))…: \(failure)") }
        return try withExtendedLifetime(rate) { try rate.framesPerSecond() }
    }

    /// ONNX Runtime alone: the same model, batch and threads, input already pre-processed.
    private func inferenceFPS(_ configuration: InferConfiguration, batch: Int, _ logger: Logger) throws -> Double {
        let detector = try Detector.load(configuration: configuration, logger: logger)
        let p = detector.preprocessor.parameters
        let shape = [batch, p.channels, p.networkHeight, p.networkWidth]
        let input = [Float](repeating: 0.5, count: shape.reduce(1, *))
        let clock = MonotonicClock()
        _ = try input.withUnsafeBufferPointer { try detector.engine.run(shape: shape, data: $0) }  // warm-up
        let runs = max(3, 48 / batch)
        return try median {
            let start = clock.now()
            for _ in 0..<runs { _ = try input.withUnsafeBufferPointer { try detector.engine.run(shape: shape, data: $0) } }
            return Double(runs * batch) / seconds(since: start, clock)
        }
    }

    func median(_ body: () throws -> Double) throws -> Double {
        let values = try (0..<repetitions).map { _ in try body() }.sorted()
        return values[values.count / 2]
    }

    func f(_ x: Double) -> String { PerfMonitor.pythonRounded(x) }

    /// The batch size for `streams` streams: `--batch-size`, at most the stream count.
    func batch(_ streams: Int) -> Int { min(batchSize ?? streams, streams) }
}

extension TrackerConfiguration.Kind: ExpressibleByArgument {}

func seconds(since start: MonotonicInstant, _ clock: MonotonicClock) -> Double {
    Double(clock.now().nanoseconds(since: start)) / 1e9
}

/// Resident memory now, from /proc/self/statm (pages × page size).
func currentRSSMegabytes() -> Double {
    guard let file = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(file) }
    var size = 0, resident = 0
    guard withUnsafeMutablePointer(to: &size, { s in withUnsafeMutablePointer(to: &resident) { r in
        withVaList([s, r]) { vfscanf(file, "%ld %ld", $0) }
    } }) == 2 else { return 0 }
    return Double(resident * Int(getpagesize())) / 1_048_576
}

/// The highest RSS seen while it runs (sampled every 50 ms).
final class RSSSampler: @unchecked Sendable {
    private let peak = Locked(currentRSSMegabytes())
    private var task: PeriodicTask?

    init() {
        task = PeriodicTask(name: "rss", intervalNanoseconds: 50_000_000) { [peak] in
            let now = currentRSSMegabytes()
            peak.withValue { $0 = max($0, now) }
        }
    }

    func stop() -> Double {
        task?.stop()
        return peak.withValue { $0 }
    }
}

