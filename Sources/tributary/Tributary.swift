import ArgumentParser
import Logging
import Tributary
import TributaryCLI
import TributaryService
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `tributary`: the framework's own command. `serve` runs the pipeline as a service whose cameras
/// come and go through DeepStream's REST API, with health probes and Prometheus metrics.
@main
struct TributaryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tributary",
        abstract: "Multi-stream video analytics.",
        subcommands: [Serve.self])

    /// As AsyncParsableCommand's own, but usage errors (a bad flag or value) exit 2, as every
    /// other error in what the user gave does (and as `imagedata-multistream`), not 64.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand { try await asyncCommand.run() } else { try command.run() }
        } catch {
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
            printError(fullMessage(for: error))
            exit(withError: ExitCode(2))
        }
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the pipeline as a service: cameras added and removed by REST (DeepStream's nvmultiurisrcbin API), /metrics, health probes.")

    @Option(name: [.short, .customLong("input")], parsing: .upToNextOption, help: "Cameras present from the start (ids 0, 1, …).")
    var inputs: [String] = []

    @Option(name: .customLong("api-port"), help: "Port of the REST API and /metrics (0: any free port, printed).")
    var apiPort = 9000

    @Option(name: .customLong("api-address"), help: "Address the REST API listens on.")
    var apiAddress = "127.0.0.1"

    @Option(name: [.short, .customLong("config")], help: "Primary detector config file (nvinfer format).")
    var config = "configs/yolov3_tiny_pgie_config.txt"

    @Flag(name: .customLong("no-detector"), help: "Run without the primary detector.")
    var noDetector = false

    @Option(name: [.short, .customLong("output")], help: "Write the tiled stream as H.264 in this MP4 file (finalised at the stop).")
    var output: String?

    @Option(name: .customLong("rtsp-port"), help: "Serve the tiled stream at rtsp://<api-address>:PORT/ds-test.")
    var rtspPort: Int?

    @Flag(name: .customLong("no-osd"), help: "Do not draw boxes and labels.")
    var noOSD = false

    @Flag(name: .customLong("file-loop"), help: "Restart file cameras at their end.")
    var fileLoop = false

    @Flag(name: .customLong("real-time"), help: "Play file cameras at their own frame rate, as a camera sends (default: as fast as they decode).")
    var realTime = false

    @Option(name: .customLong("perf-interval"), help: "Seconds between the cameras' fps updates (tributary_stream_fps).")
    var perfInterval: Double = 5

    @Option(name: .customLong("device"), help: "cpu, cuda, or auto (cuda when an NVIDIA GPU and NVDEC are present).")
    var device = "auto"

    @OptionGroup var layout: LayoutOptions
    @OptionGroup var metadata: MetadataOptions
    @OptionGroup var recovery: RecoveryOptions
    @OptionGroup var analytics: AnalyticsOptions

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "notice"

    func validate() throws {
        if !(0...65535).contains(apiPort) { throw ValidationError("--api-port must be 0–65535") }
        if perfInterval <= 0 { throw ValidationError("--perf-interval must be positive") }
        if !["auto", "cpu", "cuda"].contains(device) { throw ValidationError("--device must be cpu, cuda or auto") }
    }

    func run() async throws {
        var configuredLogger = Logger(label: "tributary")
        configuredLogger.logLevel = Logger.Level(rawValue: logLevel) ?? .notice
        let logger = configuredLogger
        do {
            let inferConfiguration = noDetector ? nil : try InferConfiguration.load(path: config)
            for warning in inferConfiguration?.warnings ?? [] { printError("Warning: \(warning)") }
            let gpuCount = CUDADevice.count()
            let useCUDA = device == "cuda" || (device == "auto" && gpuCount > 0 && VideoSource.hardwareDecoderAvailable)
            if useCUDA && gpuCount == 0 { throw PipelineError.failed(what: "--device cuda", message: "no NVIDIA GPU found (is the driver loaded?)") }
            let gpuID = inferConfiguration?.gpuID ?? 0
            var configuration = pipelineConfiguration(device: useCUDA ? .cuda(gpuID: gpuID) : .cpu)
            // nvdsanalytics' stream N is the camera given source id N (ids count up from 0 as cameras come).
            let (rules, warnings) = try analytics.load(layout)
            for warning in warnings { printError("Warning: \(warning)") }
            configuration.analytics = rules
            let metadataSinks = try metadata.makeSinks(logger: logger)
            let status = try await ServiceRunner.run(
                options: .init(address: apiAddress, port: apiPort, inputs: inputs, metadataSinks: metadataSinks,
                              metadataFormat: metadata.format), configuration: configuration, logger: logger,
                makeDetector: {
                    guard var inferConfiguration else { return nil }
                    if useCUDA {
                        inferConfiguration.executionProvider = .cuda
                        inferConfiguration.gpuID = gpuID
                    }
                    let detector = try Detector.load(configuration: inferConfiguration, logger: logger)
                    return detector
                },
                onListening: { [metaOnStandardOutput = metadata.metaOut == "-"] address in
                    let line = "Serving the REST API and /metrics at \(address)"
                    if metaOnStandardOutput { printError(line) } else { print(line) }
                    flushStandardOutput()
                })
            if status != 0 { throw ExitCode(status) }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            printError("Error: \(error)")
            throw ExitCode(PipelineError.exitStatus(for: error))
        }
    }

    func pipelineConfiguration(device: ComputeDevice) -> PipelineConfiguration {
        var outputs: [SinkKind] = []
        if let output { outputs.append(.mp4(path: output)) }
        if let rtspPort { outputs.append(.rtsp(address: apiAddress, port: rtspPort)) }
        var configuration = PipelineConfiguration(
            inputs: [],
            muxer: StreamMuxerConfiguration(batchSize: 1, width: layout.width, height: layout.height, batchedPushTimeoutMicroseconds: layout.batchedPushTimeout,
                                            acceptsNewSources: true),
            tilerWidth: layout.tilerWidth, tilerHeight: layout.tilerHeight, outputs: outputs.isEmpty ? [.discard] : outputs, osd: !noOSD,
            fileLoop: fileLoop, perfIntervalNanoseconds: UInt64(perfInterval * 1e9), device: device)
        configuration.recovery = recovery.policy
        configuration.realTime = realTime
        return configuration
    }
}
