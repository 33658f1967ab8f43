import ArgumentParser
import Logging
import Tributary
import TributaryCLI
import TributarySample
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The Swift counterpart of DeepStream's `deepstream-imagedata-multistream` sample: N inputs,
/// batched, tiled and written out, with the sample's per-frame and `**PERF` lines.
@main
struct ImageDataMultistream: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "imagedata-multistream",
        abstract: "Decode N video streams, batch them like nvstreammux, tile them and show, encode or discard the result.")

    @Option(name: [.short, .customLong("input")], parsing: .upToNextOption,
            help: "Input URIs (file://, rtsp://, http(s)://) or file paths.")
    var inputs: [String] = []

    @Option(name: [.short, .customLong("output")], help: "Write the tiled stream as H.264 in this MP4 file.")
    var output: String?

    @Option(name: [.short, .customLong("config")], help: "Primary detector config file (nvinfer format).")
    var config = "configs/yolov3_tiny_pgie_config.txt"

    @Flag(name: .customLong("no-detector"), help: "Run without the primary detector (decode → mux → tile → sink).")
    var noDetector = false

    @Flag(name: .customLong("no-osd"), help: "Do not draw boxes and labels.")
    var noOSD = false

    @Flag(name: .customLong("no-probe-edit"), help: "Do not apply the sample's edit (red channel halved: R' = (R + 1) >> 1).")
    var noProbeEdit = false

    @Option(name: .customLong("save-frames"), help: "Save frames with objects of confidence 0.3–0.4 as JPEG in this new folder.")
    var saveFrames: String?

    @Option(name: .customLong("rtsp-port"), help: "Serve the output as H.264 at rtsp://<address>:PORT/ds-test.")
    var rtspPort: Int?

    @Option(name: .customLong("rtsp-address"), help: "Address the RTSP server listens on.")
    var rtspAddress = "127.0.0.1"

    @Flag(name: .customLong("no-display"), help: "Do not show the output (fakesink, sync off).")
    var noDisplay = false

    @Flag(name: [.short, .customLong("silent")], help: "Do not print the per-frame line.")
    var silent = false

    @Flag(name: .customLong("file-loop"), help: "Restart file inputs at end-of-stream.")
    var fileLoop = false

    @Option(name: .customLong("batch-size"), help: "Muxer batch size (default: number of inputs).")
    var batchSize: Int?






    @Option(name: .customLong("perf-interval"), parsing: .unconditional, help: "Seconds between **PERF lines (0: none).")
    var perfInterval: Double = 5

    @Option(name: .customLong("device"), help: "cpu, cuda, or auto: cuda when an NVIDIA GPU is present (NVDEC → CUDA memory → probe on device pointers → ONNX Runtime's CUDA provider).")
    var device = "auto"

    @Option(name: .customLong("gpus"), help: "Shard the inputs over this many GPUs (0: all); one muxer, detector and output each. Default: the config's gpu-id alone.")
    var gpus: Int?

    @Option(name: .customLong("devices"), help: "Shard the inputs over these devices, a pipeline each, instead of --device and --gpus: cuda:N or cpu, comma-separated (cuda:0,cuda:2 takes those two GPUs; cpu,cpu runs two host pipelines).")
    var devices: String?

    @Flag(name: .customLong("single-output"), help: "With --gpus or --devices: one tiled output of every input (frames come down to the host for it) instead of one per GPU.")
    var singleOutput = false

    @Flag(name: .customLong("process-per-gpu"), help: "With --gpus or --devices: each device's share of the inputs in its own process (measured to scale better with many streams; one output per GPU).")
    var processPerGPU = false

    /// A child of --process-per-gpu: run this shard of the plan alone.
    @Option(name: .customLong("shard-process"), help: .hidden)
    var shardProcess: Int?

    @Option(name: .customLong("detection-workers"), help: "Detectors working on consecutive batches at once, each with its own ONNX Runtime session (default: 2 on a GPU, 1 on the CPU).")
    var detectionWorkers: Int?

    @Flag(name: .customLong("host-output-parsing"), help: "On the GPU path, download the detector's whole output and parse it on the CPU (as nvinfer does) instead of keeping only the boxes above threshold on the GPU.")
    var hostOutputParsing = false

    @Flag(name: .customLong("stage-times"), help: "At the end, print where each stage's threads spent their time (busy or waiting).")
    var stageTimes = false

    @OptionGroup var analytics: AnalyticsOptions

    @Flag(name: .customLong("analytics-lines"), help: "With --analytics: print each frame's analytics, as deepstream-nvdsanalytics-test does.")
    var analyticsLines = false













    @OptionGroup var layout: LayoutOptions
    @OptionGroup var metadata: MetadataOptions
    @OptionGroup var recovery: RecoveryOptions

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "warning"

    func validate() throws {
        if inputs.isEmpty { throw ValidationError("give at least one input with -i URI [URI ...]") }
        if let batchSize, batchSize <= 0 { throw ValidationError("--batch-size must be positive") }
        if perfInterval < 0 { throw ValidationError("--perf-interval must be 0 (no **PERF lines) or more") }
        if !["auto", "cpu", "cuda"].contains(device) { throw ValidationError("--device must be cpu, cuda or auto") }
        if let gpus, gpus < 0 { throw ValidationError("--gpus must not be negative") }
        if let detectionWorkers, detectionWorkers <= 0 { throw ValidationError("--detection-workers must be positive") }
        if processPerGPU && singleOutput { throw ValidationError("--single-output needs every GPU in one process: leave out --process-per-gpu") }
        if processPerGPU && gpus == nil && devices == nil { throw ValidationError("--process-per-gpu shards over devices: give --gpus or --devices too") }
        if gpus != nil && device == "cpu" { throw ValidationError("--gpus shards over GPUs; host pipelines are --devices cpu,cpu,…") }
        if let devices {
            if gpus != nil || device != "auto" { throw ValidationError("--devices names every device: leave out --device and --gpus") }
            if let bad = deviceNames.first(where: { ComputeDevice(parsing: $0) == nil }) {
                throw ValidationError("--devices: '\(bad)' is not cpu or cuda:N")
            }
            let listed = listedDevices
            if Set(listed.map { $0 == .cpu }).count > 1 { throw ValidationError("--devices: all cpu or all cuda:N, not both") }
            if let twice = listed.first(where: { $0 != .cpu && listed.firstIndex(of: $0) != listed.lastIndex(of: $0) }) {
                throw ValidationError("--devices: \(twice) is listed twice")
            }
        }
    }

    /// As ParsableCommand's own, but usage errors (a bad flag or value) exit 2, like every other
    /// error in what the user gave, instead of the parser's EX_USAGE (64).
    static func main() {
        let command: ImageDataMultistream
        do { command = try parse() } catch {
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
            printError(fullMessage(for: error))
            printError(usageString())
            exit(withError: ExitCode(2))
        }
        do { try command.run() } catch { exit(withError: error) }
    }

    func run() throws {
        // The progress line: at a terminal, with the per-frame lines on (`-s` is quiet), in one
        // process (--process-per-gpu's children would share the terminal), standard output not
        // the JSON lines; decided before `--meta-out -` takes standard output over.
        let showsProgress = !silent && !processPerGPU && metadata.metaOut != "-" && TerminalProgress.terminalAttached
        let progress = TerminalProgress(enabled: showsProgress)
        var logger = showsProgress ? Logger(label: "tributary", factory: progress.logHandler) : Logger(label: "tributary")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .warning
        // Listening from the start: a signal while the model loads stops the run once it is built
        // (the handler reaches the pipelines through this box, emptied at the end: it is released
        // on its own thread and must not be what tears a pipeline down while the process exits).
        let running = Locked<(group: PipelineGroup?, stopSignal: Int32?)>((nil, nil))
        let signals = SignalStopper(signals: [SIGINT, SIGTERM]) { signal in
            let group = running.withValue { state -> PipelineGroup? in
                if state.stopSignal == nil { state.stopSignal = signal }
                return state.group
            }
            group?.requestStop(signal: signal)
        }
        defer { signals.cancel() }

        let metadataSinks = try Self.reporting { try metadata.makeSinks(logger: logger) }
        if metadata.metaOut == "-" {
            // The JSON lines keep standard output (the sink holds a duplicate of it); the sample's
            // own lines go to standard error from here on.
            dup2(STDERR_FILENO, STDOUT_FILENO)
        }
        let uris = try Self.reporting { try inputs.map(SourceURI.init) }
        var inferConfiguration = try Self.reporting { try loadInferConfiguration() }
        let (useCUDA, plan) = try Self.reporting { try shardPlan(sourceCount: uris.count, gpuID: inferConfiguration?.gpuID) }
        let analyticsRules = try Self.reporting { try loadAnalytics() }
        if processPerGPU && shardProcess == nil && plan.shards.count > 1 {
            signals.cancel()  // the parent passes every signal on instead
            let status = Self.runProcessPerShard(shardCount: plan.shards.count)
            if status != 0 { throw ExitCode(status) }
            return
        }
        if let shardProcess {
            guard plan.shards.indices.contains(shardProcess) else { throw Self.reported(PipelineError.invalidArgument("no shard \(shardProcess)")) }
            // Whole lines, each in one write: the shards' processes share standard output.
            lineBufferStandardOutput()
        }
        // The shards this process runs (their index in the plan): all, or a child's one.
        let ownShards = plan.shards.enumerated().filter { shardProcess == nil || $0.offset == shardProcess }
        // Each shard's muxer batches that shard's sources: the batch size the detector gets.
        if let shardSize = ownShards.map(\.element.sources.count).max(),
           let message = inferConfiguration?.overrideBatchSize(sourceCount: shardSize) {
            print(message)
        }
        var group: PipelineGroup? = try Self.reporting {
            try buildGroup(uris: uris, plan: plan, shards: ownShards, useCUDA: useCUDA, detector: inferConfiguration,
                           analytics: analyticsRules, metadataSinks: metadataSinks, logger: logger)
        }
        let editFailed = installSampleProbes(on: group!, shards: ownShards.map(\.element), sharded: plan.shards.count > 1, progress: progress)
        // Live inputs have no end to count to.
        if !uris.contains(where: \.isLiveByScheme) {
            progress.start(read: Self.progressInputs(of: group!, shards: ownShards.map(\.element), inputCount: uris.count))
        }
        let earlySignal = running.withValue { state -> Int32? in
            state.group = group
            return state.stopSignal
        }
        if let earlySignal { group!.requestStop(signal: earlySignal) }
        let (finished, sharedFailure) = group!.run()
        progress.finish()
        signals.cancel()
        if let sharedFailure, !(sharedFailure is OutputFailures) { printError("Error: \(sharedFailure)") }  // those were said
        printSummary(finished, group: group!, shards: ownShards.map(\.element), sharded: plan.shards.count > 1)
        for sink in metadataSinks { print(sink.summary) }
        // Tear every pipeline down here, on this thread, before exit runs the libraries' own
        // teardown (the CUDA driver's, GStreamer's).
        running.withValue { $0.group = nil }
        group = nil
        let status = Self.exitStatus(finished, failedElsewhere: editFailed.withValue { $0 } || sharedFailure != nil)
        // Every output is finished: on the GPU path, skip the CUDA libraries' exit-time teardown.
        if useCUDA { exitWithoutLibraryTeardown(status) }
        if status != 0 { throw ExitCode(status) }
    }

    /// `--analytics`' rules by input, in muxer pixels; its warnings said.
    func loadAnalytics() throws -> [Int: StreamAnalyticsRules] {
        let (rules, warnings) = try analytics.load(layout)
        for warning in warnings { printError("Warning: \(warning)") }
        return rules
    }

    /// The detector's config (nil with `--no-detector`); its warnings said.
    func loadInferConfiguration() throws -> InferConfiguration? {
        guard !noDetector else { return nil }
        let configuration = try InferConfiguration.load(path: config)
        for warning in configuration.warnings { printError("Warning: \(warning)") }
        return configuration
    }

    /// `--devices`' names, as given.
    var deviceNames: [Substring] { devices?.split(separator: ",", omittingEmptySubsequences: false) ?? [] }

    /// `--devices`' list as parsed (names that are no device left out: validate() refuses them).
    var listedDevices: [ComputeDevice] { deviceNames.compactMap(ComputeDevice.init(parsing:)) }

    /// Whether frames live on GPUs, and the inputs' shards: `--devices`' list, else one per GPU
    /// of `--gpus` (the CPU path is one).
    func shardPlan(sourceCount: Int, gpuID configuredGPU: Int?) throws -> (useCUDA: Bool, plan: ShardPlan) {
        let gpuCount = CUDADevice.count()
        // `asked`: the flag that asked for the GPU path; `named`: where the ids come from.
        func checked(_ gpuIDs: [Int], asked: String, named: String) throws -> [ComputeDevice] {
            if gpuCount == 0 { throw PipelineError.failed(what: asked, message: "no NVIDIA GPU found (is the driver loaded?)") }
            if let bad = gpuIDs.first(where: { $0 >= gpuCount }) { throw PipelineError.invalidArgument("\(named): no GPU \(bad), only \(gpuCount) found") }
            return gpuIDs.map { .cuda(gpuID: $0) }
        }
        if let devices {
            let listed = listedDevices  // checked in validate()
            let gpuIDs = listed.compactMap { device -> Int? in if case .cuda(let id) = device { id } else { nil } }
            if gpuIDs.isEmpty { return (false, ShardPlan(sourceCount: sourceCount, devices: listed)) }
            return (true, ShardPlan(sourceCount: sourceCount, devices: try checked(gpuIDs, asked: "--devices \(devices)", named: "--devices")))
        }
        // auto: the GPU path where there is a GPU and GStreamer can decode on it.
        let useCUDA = device == "cuda" || (device == "auto" && gpuCount > 0 && VideoSource.hardwareDecoderAvailable)
        if let gpus, gpus > gpuCount { throw PipelineError.invalidArgument("--gpus \(gpus): only \(gpuCount) GPU(s) found") }
        guard useCUDA else { return (false, ShardPlan(sourceCount: sourceCount, devices: [.cpu])) }
        let gpuIDs = gpus.map { Array(0..<($0 == 0 ? gpuCount : $0)) } ?? [configuredGPU ?? 0]
        return (true, ShardPlan(sourceCount: sourceCount, devices: try checked(gpuIDs, asked: "--device \(device)", named: gpus != nil ? "--gpus" : "gpu-id")))
    }

    /// Where a shard's tiled frames go: `-o` (one file a shard unless shared), RTSP (a port a
    /// shard unless shared), else the window or, without a display, fakesink.
    func outputs(of shard: ShardPlan.Shard, index: Int, plan: ShardPlan, shared: Bool) -> [SinkKind] {
        var outputs: [SinkKind] = []
        if let output { outputs.append(.mp4(path: shared ? output : plan.outputPath(output, shard: shard))) }
        if let rtspPort { outputs.append(.rtsp(address: rtspAddress, port: rtspPort + (shared ? 0 : index))) }
        guard outputs.isEmpty else { return outputs }
        if noDisplay { return [.discard] }
        if getenv("DISPLAY") != nil || getenv("WAYLAND_DISPLAY") != nil { return [.display] }
        if index == 0 { print("No display available: using fakesink (pass --no-display to say so)") }
        return [.discard]
    }

    /// A pipeline per shard this process runs, each with its detector, and the shared output
    /// (`--single-output`) they feed; says where it runs and what it serves.
    func buildGroup(uris: [SourceURI], plan: ShardPlan, shards: [(offset: Int, element: ShardPlan.Shard)], useCUDA: Bool,
                    detector inferConfiguration: InferConfiguration?, analytics: [Int: StreamAnalyticsRules],
                    metadataSinks: [any MetadataSink], logger: Logger) throws -> PipelineGroup {
        for sink in metadataSinks {
            (sink as? JSONLinesSink)?.setUsers(shards.count)
            (sink as? BrokerSink)?.setUsers(shards.count)
        }
        let runID = FrameMessageBuilder.newRunID()
        let shareOutput = singleOutput && plan.shards.count > 1
        var sharedOutput: SharedOutput?
        var pipelines: [Pipeline] = []
        for (index, shard) in shards {
            let outputs = outputs(of: shard, index: index, plan: plan, shared: shareOutput)
            if shareOutput && index == 0 {
                sharedOutput = try SharedOutput(shardSources: plan.shards.map(\.sources), tilerWidth: layout.tilerWidth, tilerHeight: layout.tilerHeight,
                                                muxerWidth: layout.width, muxerHeight: layout.height, outputs: outputs, osd: !noOSD, logger: logger)
            }
            let shardURIs = shard.sources.map { uris[$0] }
            var configuration = PipelineConfiguration(
                inputs: shardURIs,
                muxer: StreamMuxerConfiguration(batchSize: batchSize ?? shardURIs.count, width: layout.width, height: layout.height,
                                                batchedPushTimeoutMicroseconds: layout.batchedPushTimeout),
                tilerWidth: layout.tilerWidth, tilerHeight: layout.tilerHeight, outputs: outputs, osd: !noOSD, fileLoop: fileLoop, perfIntervalNanoseconds: UInt64(max(0, perfInterval) * 1e9),
                device: shard.device)
            configuration.measureStages = stageTimes
            configuration.recovery = recovery.policy
            // nvdsanalytics' stream N is input N: its rules go to the shard's own source id.
            for (local, global) in shard.sources.enumerated() { configuration.analytics[local] = analytics[global] }
            configuration.detectionWorkers = detectionWorkers
            var detector: Detector?
            if var inferConfiguration {
                if case .cuda(let gpuID) = shard.device {
                    // On the GPU path the detector reads the frames where they are.
                    inferConfiguration.executionProvider = .cuda
                    inferConfiguration.gpuID = gpuID
                }
                detector = try Detector.load(configuration: inferConfiguration, logger: logger)
                detector?.filtersOutputsOnDevice = !hostOutputParsing
            }
            let pipeline = try Pipeline(configuration: configuration, detector: detector,
                                        sharedOutput: sharedOutput.map { ($0, index) }, logger: logger)
            if let saveFrames {
                let folder = plan.shards.count > 1 ? "\(saveFrames)/\(shard.name)" : saveFrames
                pipeline.append(try SampleFrameSaving.frameSaver(folder: folder, sourceCount: shardURIs.count))
            }
            if !metadataSinks.isEmpty {
                // The camera id is the input's index in the run (a shard numbers its own sources).
                let global = shard.sources
                var builder = FrameMessageBuilder(muxerSize: PixelSize(width: layout.width, height: layout.height), runID: runID) { String(global[$0]) }
                builder.format = metadata.format
                pipeline.append(MetadataStage(builder: builder, sinks: metadataSinks))
            }
            pipelines.append(pipeline)
        }
        if useCUDA {
            let names = Set(shards.compactMap { shard -> String? in
                guard case .cuda(let gpuID) = shard.element.device else { return nil }
                return (try? CUDADevice.open(gpuID)).map { "\(shard.element.label): \($0.name)" }
            })
            print("Running on \(names.sorted().joined(separator: ", ")) (NVDEC, CUDA memory)")
        }
        if let saveFrames { print("Frames will be saved in  \(saveFrames)") }
        for url in sharedOutput?.rtspURLs ?? pipelines.flatMap(\.rtspURLs) { print("\n *** Tributary: Launched RTSP Streaming at \(url) ***\n") }
        return PipelineGroup(pipelines, sharedOutput: sharedOutput)
    }

    /// The sample's behaviour on every pipeline: its probe (the red-channel edit, the per-frame
    /// line) and the lines it prints as things happen (`**PERF`, live sources, errors).
    /// - Returns: whether the edit failed (said once).
    func installSampleProbes(on group: PipelineGroup, shards: [ShardPlan.Shard], sharded: Bool,
                             progress: TerminalProgress) -> Locked<Bool> {
        let (edit, silent, analyticsLines) = (!noProbeEdit, self.silent, self.analyticsLines)
        let editFailed = Locked(false)
        for (pipeline, shard) in zip(group.pipelines, shards) {
            pipeline.probe = { batch in
                if edit {
                    do { try SampleEdit.halveRed(&batch) } catch {
                        let first = editFailed.withValue { failed -> Bool in
                            defer { failed = true }
                            return !failed
                        }
                        if first { progress.printAbove { printError("Error: probe edit: \(error)") } }
                    }
                }
                guard !silent else { return }
                progress.printAbove {
                    for frame in batch.meta.frames {
                        let counts = SampleClass.counts(frame.objects)
                        print("Frame Number= \(frame.frameNumber) Number of Objects= \(frame.objects.count) Vehicle_count= \(counts[.vehicle, default: 0]) Person_count= \(counts[.person, default: 0])")
                        if analyticsLines, let analytics = frame.analytics {
                            for line in SampleAnalyticsLines.lines(analytics, objects: frame.objects, source: frame.sourceID) { print(line) }
                        }
                    }
                }
                progress.tick()
            }
            // With several shards, each `**PERF` line names its device.
            let label = sharded ? "[\(shard.label)] " : ""
            pipeline.onEvent = { event in
                if case .liveSource = event { progress.hide() }
                progress.printAbove {
                    switch event {
                    case .liveSource: print("Atleast one of the sources is live")
                    case .sourceFailed(let failure): printError("Error: \(failure)")
                    case .sourceState(let status): if let line = status.recoveryWarning { printError(line) }
                    case .stageFailed(let error): printError("Error: \(error)")
                    case .outputFailed(let failure): printError("Error: \(failure); the run goes on without it")
                    case .perf(let rates): print("\n\(label)\(PerfMonitor.perfLine(rates))\n")
                    }
                    flushStandardOutput()
                }
            }
        }
        return editFailed
    }

    /// The progress line's counts: each input's frames delivered in batches and the total its
    /// container gives, by input index across the shards.
    static func progressInputs(of group: PipelineGroup, shards: [ShardPlan.Shard], inputCount: Int) -> @Sendable () -> [ProgressLine.Input] {
        let pipelines = zip(group.pipelines, shards.map(\.sources)).map { ($0, $1) }
        return {
            var inputs = Array(repeating: ProgressLine.Input(done: 0, total: nil), count: inputCount)
            for (pipeline, sources) in pipelines {
                var totals: [Int: Int] = [:]
                for status in pipeline.sourceStatuses { totals[status.sourceID] = status.expectedFrames }
                for (local, input) in sources.enumerated() where inputs.indices.contains(input) {
                    inputs[input] = ProgressLine.Input(done: pipeline.ledger.counts(of: local).delivered, total: totals[local])
                }
            }
            return inputs
        }
    }

    /// `End-of-stream`, then each input's frames (decoded, delivered, dropped) and, with
    /// `--stage-times`, where each pipeline's threads spent their time.
    func printSummary(_ outcomes: [PipelineOutcome], group: PipelineGroup, shards: [ShardPlan.Shard], sharded: Bool) {
        print("End-of-stream")
        for ((outcome, pipeline), shard) in zip(zip(outcomes, group.pipelines), shards) {
            let firstSource = shard.sources.first ?? 0
            for line in outcome.ledger.summaryLines(firstSourceID: firstSource, uri: { inputs[shard.sources[$0]] }) { print(line) }
            let stages = pipeline.stageReport()
            if !stages.isEmpty {
                print(sharded ? "Stage times, \(shard.label):" : "Stage times:")
                for line in stages { print("  " + line) }
            }
        }
        flushStandardOutput()
    }
}

extension ImageDataMultistream {
    /// `--process-per-gpu`: this program again for each shard of the plan (`--shard-process N`,
    /// the same arguments otherwise), in its own process group so that a Ctrl-C reaches it once,
    /// through this process, which passes SIGINT/SIGTERM on. The exit status: the first child's
    /// that ended on a signal, else the first failing child's, else 0.
    static func runProcessPerShard(shardCount: Int) -> Int32 {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let processes: ShardProcesses
        do {
            processes = try ShardProcesses(count: shardCount, pipes: false, ownProcessGroups: true) { arguments + ["--shard-process=\($0)"] }
        } catch {
            printError("Error: \(error)")
            return 1
        }
        print("One process per device: \(processes.children.map { String($0.pid) }.joined(separator: ", "))")
        flushStandardOutput()
        return ShardProcesses.exitStatus(processes.waitPassingSignals())
    }

    /// 128 + the signal that stopped a pipeline, else 1 if one failed or something else did, else 0.
    static func exitStatus(_ outcomes: [PipelineOutcome], failedElsewhere: Bool) -> Int32 {
        if let signal = outcomes.compactMap(\.interruptedBy).first { return 128 + signal }
        return failedElsewhere || !outcomes.allSatisfy(\.succeeded) ? 1 : 0
    }

    /// `body`'s value; an error it throws is said on stderr and becomes its exit code.
    static func reporting<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch { throw reported(error) }
    }

    /// Says the error on stderr and gives the exit code it maps to.
    static func reported(_ error: Error) -> ExitCode {
        printError("Error: \(error)")
        return ExitCode(exitCode(for: error))
    }

    /// The exit code an error maps to (`PipelineError.exitStatus`).
    static func exitCode(for error: Error) -> Int32 { PipelineError.exitStatus(for: error) }
}
