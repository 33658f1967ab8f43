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
        subcommands: [Serve.self, Worker.self, Cameras.self])

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

    @OptionGroup var service: ServiceOptions

    func run() async throws { try await service.run(inputs: inputs, cluster: nil) }
}

/// `tributary worker`: `serve` whose cameras come from the registry in Redis, shared with the
/// other workers through leases (docs/cluster.md).
struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run as one of several workers sharing the cameras of a registry in Redis through leases; metadata to that Redis, fenced.")

    @Option(name: .customLong("worker-id"), help: "This worker's id, unique among the workers (letters, digits, . _ -; a pod's name).")
    var workerID: String

    @Option(name: .customLong("capacity"), help: "The most cameras this worker runs.")
    var capacity: Int

    @Option(name: .customLong("labels"), help: "This worker's labels, comma-separated: a camera pinned to labels runs only on a worker with all of them.")
    var labels: String = ""

    @Option(name: .customLong("lease-ttl"), help: "Seconds a camera's lease lives without a renewal.")
    var leaseTTL: Double = 6

    @Option(name: .customLong("renew-interval"), help: "Seconds between lease renewals.")
    var renewInterval: Double = 2

    @OptionGroup var service: ServiceOptions

    func validate() throws {
        if !LeaseToken.isValidWorkerID(workerID) { throw ValidationError("--worker-id \(workerID): letters, digits, '.', '_' and '-' only") }
        if capacity < 1 { throw ValidationError("--capacity must be at least 1") }
        if service.metadata.redis == nil { throw ValidationError("--redis redis://HOST:PORT is needed: the registry, the leases and the metadata live there") }
        if !(leaseTTL >= 1) { throw ValidationError("--lease-ttl must be at least 1 second") }
        if !(renewInterval > 0 && renewInterval * 2 < leaseTTL) {
            throw ValidationError("--renew-interval must be positive and under half of --lease-ttl (a camera stops after TTL − 2 s without a renewal)")
        }
    }

    func run() async throws {
        let endpoint: RedisEndpoint
        do { endpoint = try RedisEndpoint(url: service.metadata.redis ?? "", timeoutMilliseconds: 1_000) } catch {
            printError("Error: \(error)")
            throw ExitCode(2)
        }
        var lease = WorkerLeaseStateMachine.Configuration(workerID: workerID, capacity: capacity,
                                                          labels: labels.split(separator: ",").map { String($0) })
        lease.ttlNanoseconds = UInt64(leaseTTL * 1e9)
        lease.renewIntervalNanoseconds = UInt64(renewInterval * 1e9)
        lease.safetyMarginNanoseconds = min(2_000_000_000, lease.ttlNanoseconds / 3)
        try await service.run(inputs: [], cluster: (ClusterWorkerConfiguration(endpoint: endpoint, lease: lease), PublishFence()))
    }
}

/// `tributary cameras add|remove|list`: the workers' registry in Redis.
struct Cameras: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Change or list the cameras of the workers' registry in Redis.",
        subcommands: [Add.self, Remove.self, List.self])

    struct RedisOption: ParsableArguments {
        @Option(name: .customLong("redis"), help: "The workers' Redis: redis://HOST[:PORT][/DB].")
        var redis: String

        func endpoint() throws -> RedisEndpoint {
            do { return try RedisEndpoint(url: redis) } catch { throw ValidationError("\(error)") }
        }
    }

    /// A registry change, as the REST API answers it: the reason, or the error with its exit status.
    static func apply(_ change: StreamChange, labels: [String] = [], redis: RedisOption) throws {
        do {
            print(try CameraRegistry.change(change, labels: labels, at: try redis.endpoint()))
        } catch let error as StreamRequestError {
            printError("Error: \(error)")
            throw ExitCode(error.status == 503 ? 1 : 2)
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a camera to the registry (a worker with room claims it).")
        @OptionGroup var redis: RedisOption
        @Option(name: .customLong("camera-id")) var cameraID: String
        @Option(name: .customLong("camera-url")) var cameraURL: String
        @Option(name: .customLong("camera-name")) var cameraName: String?
        @Option(name: .customLong("labels"), help: "Pin it to workers with all these labels (comma-separated).") var labels: String = ""

        func run() throws {
            try Cameras.apply(StreamChange(kind: .add, cameraID: cameraID, cameraName: cameraName, cameraURL: cameraURL),
                              labels: labels.split(separator: ",").map { String($0) }, redis: redis)
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a camera from the registry (its worker stops it).")
        @OptionGroup var redis: RedisOption
        @Option(name: .customLong("camera-id")) var cameraID: String

        func run() throws { try Cameras.apply(StreamChange(kind: .remove, cameraID: cameraID), redis: redis) }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The registry's cameras, one JSON object a line, with their lease holders.")
        @OptionGroup var redis: RedisOption

        func run() throws {
            do {
                for line in try CameraRegistry.list(at: try redis.endpoint()) { print(line) }
            } catch let error as RedisConnectionError {
                printError("Error: \(error)")
                throw ExitCode(1)
            }
        }
    }
}

/// Every flag of a service (`serve` and `worker`), and its run.
struct ServiceOptions: ParsableArguments {
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

    @Option(name: .customLong("max-batch-size"), help: "The most frames in a batch: it follows the cameras up to this (nvmultiurisrcbin's max-batch-size; default: no limit). Smaller batches keep real-time cameras' latency down.")
    var maxBatchSize: Int?

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
        if let maxBatchSize, maxBatchSize < 1 { throw ValidationError("--max-batch-size must be at least 1") }
    }

    func run(inputs: [String], cluster: (configuration: ClusterWorkerConfiguration, fence: PublishFence)?) async throws {
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
            let metadataSinks = try metadata.makeSinks(logger: logger, fence: cluster?.fence)
            let status = try await ServiceRunner.run(
                options: .init(address: apiAddress, port: apiPort, inputs: inputs, metadataSinks: metadataSinks,
                              metadataFormat: metadata.format, cluster: cluster), configuration: configuration, logger: logger,
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
        configuration.maxBatchSize = maxBatchSize
        return configuration
    }
}
