import CGStreamer
import Logging
import Tributary
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The GPU machine's table and checks. Swift and GStreamer's headers are not on that machine, so
/// the checks a test would make there run here, from the release binary the device bundle carries.
extension TributaryBenchmark {
    /// `--gpu-table`: per stream count K, (a) the NVDEC ceiling (K parallel `nvh264dec ! fakesink`
    /// branches in one pipeline, timed in-process), (b) the full GPU pipeline (NVDEC → CUDA →
    /// detector on ONNX Runtime's CUDA provider → probe kernel → GPU tiler and OSD → fakesink), and
    /// (c) the CPU path of the same machine on the same input; aggregate FPS, the per-stream rate,
    /// peak GPU memory, CPU cores busy.
    func gpuTable(uri: SourceURI, configuration cpuConfiguration: InferConfiguration, logger: Logger) throws {
        let device = try CUDADevice.open(cpuConfiguration.gpuID)
        // The GPU path's detector reads the device tensor through the CUDA provider, as the app runs it.
        var configuration = cpuConfiguration
        configuration.executionProvider = .cuda
        print("Tributary GPU benchmark: \(device.name) (sm_\(device.computeCapability.major)\(device.computeCapability.minor)), "
              + "\(processorCount()) cores, input \(input), muxer \(width)×\(height), \(frames) frames per stream, median of \(repetitions); "
              + "steady-state FPS (after the first fifth of each run); detection workers \(detectionWorkers.map(String.init) ?? "2 (GPU), 1 (CPU)"); "
              + "detector outputs \(hostOutputParsing ? "parsed on the host" : "filtered on the GPU")"
              + (tracker.map { ", \($0.rawValue) tracker" } ?? "") + (batchSize.map { ", batch size ≤ \($0)" } ?? ""))
        _ = try nvdecCeilingFPS(uri, 1, frames: 30)  // builds the plugin registry and warms NVDEC up
        print("| K | (a) NVDEC ceiling | (b) GPU pipeline | (b) per stream | (b)/(a) | GPU MB | CPU cores busy | (c) CPU path | (b)/(c) |")
        print("|---|---|---|---|---|---|---|---|---|")
        let chart = chartData(.gpuFPS, machine: "\(device.name), \(processorCount()) cores; K x \(input), muxer \(width)x\(height)")
        var sustained = 0
        for k in streams {
            let ceiling = try median { try nvdecCeilingFPS(uri, k, frames: frames) }
            let memory = GPUMemorySampler(device: device)
            let usage = CPUUsage()
            let gpu = try median { try pipelineFPS(uri, k, detector: configuration, outputs: [.discard], devices: [.cuda(gpuID: device.ordinal)], logger) }
            let cores = usage.coresBusy()
            let peakMB = memory.stop()
            var cpuPath: Double?
            if k <= cpuPathMaximumStreams {
                var cpuConfiguration = configuration
                cpuConfiguration.executionProvider = .cpu
                cpuConfiguration.intraOpThreads = processorCount()
                cpuPath = try pipelineFPS(uri, k, detector: cpuConfiguration, outputs: [.discard], logger)
            }
            if gpu / Double(k) >= 30 { sustained = max(sustained, k) }
            print("| \(k) | \(f(ceiling)) | \(f(gpu)) | \(f(gpu / Double(k))) | \(f(gpu / ceiling)) | \(f(peakMB)) | \(f(cores)) | "
                  + "\(cpuPath.map(f) ?? "–") | \(cpuPath.map { f(gpu / $0) } ?? "–") |")
            flushStandardOutput()
            chart?.add(["\(k)", f(ceiling), f(gpu), f(gpu / Double(k)), f(gpu / ceiling), f(peakMB), f(cores),
                        cpuPath.map(f), cpuPath.map { f(gpu / $0) }])
        }
        print("Streams sustained at ≥ 30 FPS each (largest K measured): \(sustained)")
        if gpuCounts.count > 1 || (gpuCounts.first ?? 1) > 1 { try multiGPUTable(uri: uri, configuration: configuration, logger: logger) }
    }

    /// `--gpus 1 2 …`: K streams per GPU on G GPUs at once, aggregate FPS and scaling against one
    /// GPU. `--gpu-processes one`: one pipeline per GPU in this process (as `imagedata-multistream
    /// --gpus` shards); `per-gpu`: one process per GPU, each a single-GPU run, started together.
    func multiGPUTable(uri: SourceURI, configuration: InferConfiguration, logger: Logger) throws {
        let available = CUDADevice.count()
        print("")
        print("| K per GPU | GPUs | processes | aggregate FPS | per stream | × one GPU | scaling efficiency |")
        print("|---|---|---|---|---|---|---|")
        let chart = chartData(.gpuScaling, machine: "\(available) x \((try? CUDADevice.open(0).name) ?? "GPU"), \(processorCount()) cores; "
                              + "K x \(input) a GPU, muxer \(width)x\(height)")
        for k in streamsPerGPU.isEmpty ? streams : streamsPerGPU {
            for mode in gpuProcesses {
                var single: Double?
                for g in gpuCounts where g <= available {
                    let fps = try median {
                        mode == "per-gpu"
                            ? try processPerGPUFPS(k, gpus: g)
                            : try pipelineFPS(uri, k, detector: configuration, outputs: [.discard], devices: (0..<g).map { .cuda(gpuID: $0) }, logger)
                    }
                    if g == 1 { single = fps }
                    let speedup = single.map { fps / $0 }
                    print("| \(k) | \(g) | \(mode == "per-gpu" ? "\(g)" : "1") | \(f(fps)) | \(f(fps / Double(k * g))) | \(speedup.map(f) ?? "–") | "
                          + "\(speedup.map { f($0 / Double(g)) } ?? "–") |")
                    flushStandardOutput()
                    chart?.add(["\(k)", "\(g)", mode, mode == "per-gpu" ? "\(g)" : "1", f(fps), f(fps / Double(k * g)),
                                speedup.map(f), speedup.map { f($0 / Double(g)) }])
                }
            }
        }
    }

    /// `per-gpu` rows: this benchmark once per GPU as a child (`--child-gpu`), each one
    /// single-GPU run of `k` streams; the children build their pipelines, say "ready", and start
    /// together on "go". The sum of their steady-state rates.
    func processPerGPUFPS(_ k: Int, gpus: Int) throws -> Double {
        var common = ["-i", input, "-c", config, "--streams", "\(k)", "--frames", "\(frames)", "--width", "\(width)", "--height", "\(height)"]
        if let detectionWorkers { common += ["--detection-workers", "\(detectionWorkers)"] }
        if hostOutputParsing { common.append("--host-output-parsing") }
        // Children still waiting for "go" when this throws are ended when `processes` goes.
        let processes = try ShardProcesses(count: gpus, pipes: true, ownProcessGroups: false) { ["--child-gpu=\($0)"] + common }
        let children = processes.children
        for (gpu, child) in children.enumerated() where child.readLine() != "ready" {
            throw PipelineError.failed(what: "GPU benchmark", message: "the child process for GPU \(gpu) did not start")
        }
        for child in children { child.send("go") }
        let rates = children.map { child -> Double? in
            guard let line = child.readLine(), line.hasPrefix("rate ") else { return nil }
            return Double(line.dropFirst(5))
        }
        _ = processes.waitAll()
        return try rates.enumerated().reduce(0) { total, entry in
            guard let rate = entry.element else {
                throw PipelineError.failed(what: "GPU benchmark", message: "the child process for GPU \(entry.offset) failed")
            }
            return total + rate
        }
    }

    /// `--child-gpu`: builds one run of `--streams`' first count on `gpu`, says "ready", waits for
    /// a line on standard input, runs, prints "rate FPS", and ends the process.
    func childRun(uri: SourceURI, configuration: InferConfiguration, gpu: Int, logger: Logger) -> Never {
        var configuration = configuration
        configuration.executionProvider = .cuda
        do {
            let fps = try pipelineFPS(uri, streams.first ?? 1, detector: configuration, outputs: [.discard], devices: [.cuda(gpuID: gpu)],
                                      beforeRun: { print("ready"); flushStandardOutput(); _ = readLine() }, logger)
            print("rate \(fps)")
            flushStandardOutput()
            exitWithoutLibraryTeardown(0)
        } catch {
            printError("Error: GPU \(gpu): \(error)")
            exitWithoutLibraryTeardown(1)
        }
    }

    /// K parallel NVDEC decodes into fakesinks, each cut at `frames` by `identity eos-after`.
    func nvdecCeilingFPS(_ uri: SourceURI, _ k: Int, frames: Int) throws -> Double {
        let branches = (0..<k).map { index in
            VideoSource.deviceDecodeGraph(uri: uri.uri, name: "decoder\(index)") + " ! identity eos-after=\(frames) ! " + countedSink(index)
        }
        return try timedLaunch(branches.joined(separator: " "), sinks: k, frames: k * frames)
    }

    /// A raw RGBA frame written by `filesink`, rows of `size / height` bytes; nil if missing.
    func readRawFrame(_ path: String, width: Int, height: Int) -> ImageBuffer? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes = [UInt8](repeating: 0, count: width * height * 8)
        let size = bytes.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
        let rowBytes = size / height
        guard size > 0, size % height == 0, rowBytes >= width * 4 else { return nil }
        let image = ImageBuffer.allocateHost(width: width, height: height)
        image.withMutableHostView { view in
            for row in 0..<height {
                bytes.withUnsafeBytes { source in
                    (view.base + row * view.bytesPerRow).copyMemory(from: source.baseAddress! + row * rowBytes, byteCount: width * 4)
                }
            }
        }
        return image
    }

    /// Frames a file decodes to through the app's own source (host path, no detector).
    func decodedFrameCount(_ uri: SourceURI, logger: Logger) throws -> Int {
        let configuration = PipelineConfiguration(
            inputs: [uri], muxer: StreamMuxerConfiguration(batchSize: 1, width: 320, height: 180, batchedPushTimeoutMicroseconds: -1),
            outputs: [.discard], osd: false, perfIntervalNanoseconds: 0, device: .cpu)
        let pipeline = try Pipeline(configuration: configuration, logger: logger)
        let frames = Locked(0)
        pipeline.onBatch = { batch in frames.withValue { $0 += batch.frames.count } }
        guard pipeline.run().succeeded else { throw PipelineError.failed(what: "GPU benchmark", message: "\(uri.original) does not decode") }
        return frames.withValue { $0 }
    }

    /// The first batch of `k` streams of `uri` on `device`, no detector.
    func firstBatch(_ uri: SourceURI, _ k: Int, device: ComputeDevice, logger: Logger) throws -> [Frame] {
        let configuration = PipelineConfiguration(
            inputs: Array(repeating: uri, count: k),
            muxer: StreamMuxerConfiguration(batchSize: k, width: width, height: height, batchedPushTimeoutMicroseconds: -1),
            outputs: [.discard], osd: false, perfIntervalNanoseconds: 0, device: device)
        let pipeline = try Pipeline(configuration: configuration, logger: logger)
        let captured = Locked<[Frame]>([])
        pipeline.onBatch = { batch in
            guard captured.withValue({ $0.isEmpty }) else { return }
            // Keep private copies: the originals go back to the decoders' pool.
            let copies = batch.frames.map { frame -> Frame in
                var copy = frame
                copy.image = frame.image.isHost ? frame.image.hostCopy() : ((try? frame.image.onHost()) ?? frame.image)
                return copy
            }
            captured.withValue { $0 = copies }
            pipeline.requestStop(signal: 0)
        }
        let outcome = pipeline.run()
        guard outcome.succeeded else { throw PipelineError.failed(what: "GPU benchmark", message: "decode run on \(device) failed") }
        let frames = captured.withValue { $0 }
        guard frames.count == k else { throw PipelineError.failed(what: "GPU benchmark", message: "decode run on \(device) gave \(frames.count) frames") }
        return frames
    }

    /// How two images of one size differ: pixels with any byte different, the largest byte
    /// difference, and the mean difference of the colour bytes (alpha left out).
    func difference(_ a: ImageBuffer, _ b: ImageBuffer) -> (differentPixels: Int, max: Int, meanColour: Double) {
        var differentPixels = 0, worst = 0, sum = 0
        a.withHostView { x in b.withHostView { y in
            for row in 0..<x.height {
                let r0 = x.row(row), r1 = y.row(row)
                for i in stride(from: 0, to: r0.count, by: 4) {
                    var differs = false
                    for c in 0..<4 {
                        let d = abs(Int(r0[i + c]) - Int(r1[i + c]))
                        worst = max(worst, d)
                        if c < 3 { sum += d }
                        differs = differs || d != 0
                    }
                    if differs { differentPixels += 1 }
                }
            }
        } }
        return (differentPixels, worst, Double(sum) / Double(max(1, a.width * a.height * 3)))
    }
}

/// Peak device memory in use (total − free) while it runs, sampled every 50 ms.
final class GPUMemorySampler: @unchecked Sendable {
    private let peak = Locked(0.0)
    private var task: PeriodicTask?

    init(device: CUDADevice) {
        task = PeriodicTask(name: "gpu-memory", intervalNanoseconds: 50_000_000) { [peak] in
            guard let info = try? device.memoryInfo() else { return }
            peak.withValue { $0 = max($0, Double(info.total - info.free) / 1_048_576) }
        }
    }

    func stop() -> Double {
        task?.stop()
        return peak.withValue { $0 }
    }
}

/// Process CPU time over wall time since creation: cores kept busy.
struct CPUUsage {
    private let startCPU = CPUUsage.cpuSeconds()
    private let clock = MonotonicClock()
    private let start: MonotonicInstant

    init() { start = clock.now() }

    func coresBusy() -> Double {
        (CPUUsage.cpuSeconds() - startCPU) / (Double(clock.now().nanoseconds(since: start)) / 1e9)
    }

    private static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}
