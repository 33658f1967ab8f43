import Logging
import Tributary
import TributarySample
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension TributaryBenchmark {
    /// `--soak-minutes M` (`--soak-seconds N`): the whole pipeline on looping inputs for that long —
    /// `--streams`' first count (4 unless given) of the input with `--file-loop`, the detector
    /// (the config's FP32 model) and the sort tracker, the sample's edit, the OSD, MP4 (x264) and
    /// the JSON-lines metadata sink into a temporary folder — sampling RSS (and of it transparent
    /// huge pages), open file descriptors and, on a GPU, the device's memory in use (total − free)
    /// every `--soak-interval` seconds; then the trends over
    /// the run's last 20 minutes (or last 2/3, `SoakLimits`), the frame ledger and the verdict
    /// (`SoakVerdict`). False when a criterion failed.
    func soak(uri: SourceURI, configuration: InferConfiguration, seconds total: Double, logger: Logger) throws -> Bool {
        let n = streamCounts.first ?? 4
        let device: ComputeDevice = soakDevice == "cuda" ? .cuda(gpuID: 0) : .cpu
        var inferConfiguration = configuration
        inferConfiguration.batchSize = n
        inferConfiguration.tracker = TrackerConfiguration(kind: .sort)
        let gpu: CUDADevice?
        if case .cuda(let gpuID) = device {
            inferConfiguration.executionProvider = .cuda
            inferConfiguration.gpuID = gpuID
            gpu = try CUDADevice.open(gpuID)
        } else {
            gpu = nil
        }
        let folder = try makeTemporaryFolder()
        let videoPath = folder + "/soak.mp4", metadataPath = folder + "/frames.jsonl"
        defer {
            if !soakKeepFiles {
                unlink(videoPath)
                unlink(metadataPath)
                rmdir(folder)
            }
        }

        let (pipeline, metadata, frames) = try soakPipeline(uri: uri, streams: n, device: device, detector: inferConfiguration,
                                                            videoPath: videoPath, metadataPath: metadataPath, logger: logger)

        print("Soak: \(n) x \(input) looping, muxer and tiler \(width)×\(height), device \(device)\(gpu.map { " (\($0.name))" } ?? ""), "
              + "detector \(inferConfiguration.onnxFile ?? "?") (\(inferConfiguration.networkMode == 1 ? "INT8" : "FP32")), sort tracker, sample edit, OSD, MP4 → \(videoPath), "
              + "JSON lines → \(metadataPath); \(PerfMonitor.pythonRounded(total)) s, a sample every \(PerfMonitor.pythonRounded(soakInterval)) s")
        print("| seconds | frames | fps | RSS MB | of it huge pages MB | open fds |\(gpu == nil ? "" : " GPU MB |")")
        print("|---|---|---|---|---|---|\(gpu == nil ? "" : "---|")")
        flushStandardOutput()
        let chart = chartData(.rss, machine: cpuMachine(streamsNote: "\(n) x looping"))
        let samples = Locked<[SoakSample]>([])
        let clock = MonotonicClock()
        let start = clock.now()
        let sampler = SoakSampler(start: start, clock: clock, interval: soakInterval, total: total) { seconds, last in
            let sample = SoakSample(seconds: seconds, frames: frames.withValue { $0 }, residentMegabytes: currentRSSMegabytes(),
                                    openFileDescriptors: openFileDescriptorCount(),
                                    gpuMegabytes: gpu.flatMap { try? $0.memoryInfo() }.map { Double($0.total - $0.free) / 1_048_576 })
            let hugePages = anonymousHugePagesMegabytes()
            let previous = samples.withValue { all -> SoakSample? in
                defer { all.append(sample) }
                return all.last
            }
            let fps = previous.map { Double(sample.frames - $0.frames) / max(1e-9, sample.seconds - $0.seconds) }
            let rss = f(sample.residentMegabytes)
            print("| \(f(sample.seconds)) | \(sample.frames) | \(fps.map(f) ?? "–") | \(rss) | \(hugePages.map(f) ?? "–") | \(sample.openFileDescriptors) |"
                  + (sample.gpuMegabytes.map { " \(f($0)) |" } ?? (gpu == nil ? "" : " – |")))
            flushStandardOutput()
            chart?.add([f(sample.seconds), "\(sample.frames)", rss])
            if last { pipeline.requestStop(signal: 0) }
        }
        let outcome = pipeline.run()
        sampler.stop()

        // What the run left: its files, the ledger, the trends and the verdict.
        let all = samples.withValue { $0 }
        var failure: String?
        if let source = outcome.sourceFailures.first { failure = "\(source)" }
        if let error = outcome.detectorFailure { failure = "detector: \(error)" }
        if let error = outcome.sinkFailure { failure = "output: \(error)" }
        if outcome.interruptedBy == nil { failure = failure ?? "ended before its time (\(f(seconds(since: start, clock))) s)" }
        let verdict = SoakVerdict(samples: all, ledger: outcome.ledger.allCounts, framesSeen: frames.withValue { $0 },
                                  messagesWritten: metadata.counts.published, failure: failure,
                                  limits: SoakLimits(residentGrowth: soakRSSGrowthLimit / 100))
        printReport(verdict, outcome: outcome, framesSeen: frames.withValue { $0 }, runSeconds: seconds(since: start, clock), streams: n,
                    files: (videoPath, metadataPath, folder), messages: metadata.counts.published, showsGPU: gpu != nil)
        print("Soak: \(verdict.passed ? "PASS" : "FAIL")")
        flushStandardOutput()
        return verdict.passed
    }

    /// The soak's pipeline: `streams` × `uri` looping through the detector (its tracker), the
    /// sample's edit, the OSD, MP4 and JSON lines; and the count of frames its probe saw.
    private func soakPipeline(uri: SourceURI, streams n: Int, device: ComputeDevice, detector configuration: InferConfiguration,
                              videoPath: String, metadataPath: String, logger: Logger) throws -> (Pipeline, JSONLinesSink, Locked<Int>) {
        let detector = try Detector.load(configuration: configuration, logger: logger)
        detector.filtersOutputsOnDevice = !hostOutputParsing
        try detector.warmUp(batchSize: n)
        var pipelineConfiguration = PipelineConfiguration(
            inputs: Array(repeating: uri, count: n), muxer: StreamMuxerConfiguration(batchSize: n, width: width, height: height),
            tilerWidth: width, tilerHeight: height, outputs: [.mp4(path: videoPath)], osd: true, fileLoop: true,
            perfIntervalNanoseconds: 0, device: device)
        pipelineConfiguration.detectionWorkers = detectionWorkers
        let pipeline = try Pipeline(configuration: pipelineConfiguration, detector: detector, logger: logger)
        let metadata = try JSONLinesSink(path: metadataPath)
        pipeline.append(MetadataStage(builder: FrameMessageBuilder(muxerSize: PixelSize(width: width, height: height)) { String($0) },
                                      sinks: [metadata]))
        let frames = Locked(0)
        pipeline.probe = { batch in
            try? SampleEdit.halveRed(&batch)
            frames.withValue { $0 += batch.frameCount }
        }
        return (pipeline, metadata, frames)
    }

    /// The soak's closing lines: rates, files, the ledger, the window's trends and the verdict's table.
    private func printReport(_ verdict: SoakVerdict, outcome: PipelineOutcome, framesSeen: Int, runSeconds: Double, streams: Int,
                             files: (video: String, metadata: String, folder: String), messages: Int, showsGPU: Bool) {
        print("")
        var rates = "Frames: \(framesSeen) in \(f(runSeconds)) s, \(f(Double(framesSeen) / runSeconds)) fps "
            + "(\(f(Double(framesSeen) / runSeconds / Double(streams))) per stream)"
        if let first = verdict.window.first, let last = verdict.window.last, last.seconds > first.seconds {
            let fps = Double(last.frames - first.frames) / (last.seconds - first.seconds)
            rates += "; in the window \(f(fps)) fps (\(f(fps / Double(streams))) per stream)"
        }
        print(rates)
        print("Files: MP4 \(f(fileMegabytes(files.video))) MB, JSON lines \(f(fileMegabytes(files.metadata))) MB (\(messages) lines)"
              + (soakKeepFiles ? ", kept in \(files.folder)" : ", removed"))
        for line in outcome.ledger.summaryLines(uri: { _ in input }) { print(line) }
        print("")
        print("Window: \(f(verdict.windowStart))–\(f(verdict.windowEnd)) s, \(verdict.window.count) samples (the last 20 min, or the last 2/3 of a shorter run)")
        print("| measure | first in window | last | min | max | mean | slope / 10 min | growth over the window |")
        print("|---|---|---|---|---|---|---|---|")
        func row(_ name: String, _ values: [Double], _ trend: SoakTrend?, _ show: (Double) -> String = { f($0) }) {
            guard let first = values.first, let last = values.last, let low = values.min(), let high = values.max() else { return }
            print("| \(name) | \(show(first)) | \(show(last)) | \(show(low)) | \(show(high)) | \(trend.map { f($0.mean) } ?? "–") | "
                  + "\(trend.map { SoakVerdict.signed($0.perTenMinutes) } ?? "–") | \(trend.map { SoakVerdict.signed($0.relativeGrowth * 100) + " %" } ?? "–") |")
        }
        row("RSS MB", verdict.window.map(\.residentMegabytes), verdict.resident)
        row("open fds", verdict.window.map { Double($0.openFileDescriptors) }, verdict.fileDescriptors) { String(Int($0)) }
        if showsGPU { row("GPU MB", verdict.window.compactMap(\.gpuMegabytes), verdict.gpu) }
        print("")
        print("| criterion | measured | goal | verdict |")
        print("|---|---|---|---|")
        for criterion in verdict.criteria {
            print("| \(criterion.name) | \(criterion.measured) | \(criterion.goal) | \(criterion.result.rawValue) |")
        }
    }

    /// A fresh folder under $TMPDIR (or /tmp) for the run's MP4 and JSON lines.
    private func makeTemporaryFolder() throws -> String {
        let base = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array((base + "/tributary-soak-XXXXXX").utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw PipelineError.failed(what: base, message: "cannot make a temporary folder: \(String(cString: strerror(errno)))")
        }
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Takes a sample at 0, every `interval` seconds and at `total` (`last` true), on a thread of its
/// own; stops early when told (the run ended first).
final class SoakSampler: @unchecked Sendable {
    private let lock = ConditionLock()
    private var stopped = false
    private var thread: WorkerThread?

    init(start: MonotonicInstant, clock: MonotonicClock, interval: Double, total: Double,
         _ body: @escaping @Sendable (_ seconds: Double, _ last: Bool) -> Void) {
        let step = UInt64(max(0.001, interval) * 1e9), end = UInt64(max(0, total) * 1e9)
        thread = WorkerThread(name: "soak-sampler") { [self] in
            var due: UInt64 = 0
            while true {
                let at = min(due, end)
                let deadline = start.advanced(byNanoseconds: at)
                let shouldStop: Bool = lock.withLock {
                    while !stopped && clock.now() < deadline { lock.wait(until: deadline) }
                    return stopped
                }
                if shouldStop { return }
                body(Double(at) / 1e9, at >= end)
                if at >= end { return }
                due += step
            }
        }
    }

    func stop() {
        lock.withLock { stopped = true; lock.broadcast() }
        thread?.join()
    }
}

/// This process's open file descriptors: the entries of /proc/self/fd, less the one reading it.
func openFileDescriptorCount() -> Int {
    guard let directory = opendir("/proc/self/fd") else { return 0 }
    defer { closedir(directory) }
    var count = 0
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { count += 1 }
    }
    return count - 1
}

/// Of the RSS, anonymous memory in transparent huge pages (/proc/self/smaps_rollup's
/// AnonHugePages), in MB; nil where the kernel does not say.
func anonymousHugePagesMegabytes() -> Double? {
    guard let file = fopen("/proc/self/smaps_rollup", "r") else { return nil }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, Int32(line.count), file) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard text.hasPrefix("AnonHugePages:") else { continue }
        return text.split(separator: " ").dropFirst().first.flatMap { Double($0) }.map { $0 / 1024 }
    }
    return nil
}

/// A file's size in MB (0 when it is not there).
private func fileMegabytes(_ path: String) -> Double {
    var info = stat()
    return stat(path, &info) == 0 ? Double(info.st_size) / 1_048_576 : 0
}
