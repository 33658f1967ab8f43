import Hummingbird
import Logging
import ServiceLifecycle
import Tributary
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Service mode: the REST API and `/metrics` served at once, the pipeline built behind it (the
/// detector loads while `live` already answers), the initial inputs added as cameras `0`, `1`, …,
/// and everything run until SIGINT/SIGTERM, which stops the sources, finalises the outputs and
/// then the server. A camera that fails never ends the process.
public enum ServiceRunner {
    public struct Options: Sendable {
        public var address: String
        public var port: Int
        /// `-i`: cameras present from the start.
        public var inputs: [String]
        /// `--meta-out`, `--redis`: where each frame's metadata goes, camera ids as given by REST.
        public var metadataSinks: [any MetadataSink]
        public var metadataFormat: MetadataFormat
        /// `tributary worker`: cameras come from the shared registry through leases, and the
        /// metadata sinks publish under `fence` (the one given to them).
        public var cluster: (configuration: ClusterWorkerConfiguration, fence: PublishFence)?

        public init(address: String, port: Int, inputs: [String], metadataSinks: [any MetadataSink] = [],
                    metadataFormat: MetadataFormat = .tributary,
                    cluster: (configuration: ClusterWorkerConfiguration, fence: PublishFence)? = nil) {
            self.cluster = cluster
            self.metadataFormat = metadataFormat
            self.address = address
            self.port = port
            self.inputs = inputs
            self.metadataSinks = metadataSinks
        }
    }

    /// - Parameters:
    ///   - configuration: the pipeline's; its inputs are ignored (`options.inputs` are cameras), it
    ///     takes new sources and its batch size follows them.
    ///   - makeDetector: loads the primary detector (nil: none), once the server listens.
    ///   - onListening: told the address served, once the server listens.
    /// - Returns: the exit status: 128 + the signal that stopped it.
    /// - Throws: the pipeline's build error (the detector's config, the model), or the server's
    ///   (the address is taken).
    public static func run(options: Options, configuration: PipelineConfiguration, logger: Logger,
                           makeDetector: @escaping @Sendable () throws -> Detector?,
                           onListening: @escaping @Sendable (String) -> Void) async throws -> Int32 {
        let cameras = CameraService()
        let liveView = LiveView(cameras: cameras, logger: logger), objectCounts = LatestObjectCounts()
        let worker = options.cluster.map { ClusterWorker(configuration: $0.configuration, cameras: cameras, fence: $0.fence, logger: logger) }
        let metrics = MetricsExporter(metadataSinks: options.metadataSinks, liveView: liveView, worker: worker)
        defer { liveView.stop() }  // the pipeline's end stops it first; this covers a build that failed
        var configuration = configuration
        configuration.inputs = []
        configuration.muxer.acceptsNewSources = true
        configuration.batchSizeFollowsSources = true
        configuration.metricsFactory = metrics.factory
        let metadataSinks = options.metadataSinks, metadataFormat = options.metadataFormat
        let makePipeline: @Sendable () throws -> Pipeline = { [configuration] in
            let pipeline = try Pipeline(configuration: configuration, detector: try makeDetector(), logger: logger)
            pipeline.frameTap = liveView
            pipeline.append(objectCounts)
            if !metadataSinks.isEmpty {
                let muxer = PixelSize(width: configuration.muxer.width, height: configuration.muxer.height)
                var builder = FrameMessageBuilder(muxerSize: muxer) { cameras.cameraID(ofSource: $0) ?? String($0) }
                builder.format = metadataFormat
                pipeline.append(MetadataStage(builder: builder, sinks: metadataSinks))
            }
            return pipeline
        }
        let running = Locked<(pipeline: Pipeline?, signal: Int32?)>((nil, nil))
        let signals = SignalStopper(signals: [SIGINT, SIGTERM]) { signal in
            cameras.stopping()
            let pipeline = running.withValue { state -> Pipeline? in
                if state.signal == nil { state.signal = signal }
                return state.pipeline
            }
            pipeline?.requestStop(signal: signal)
        }
        defer { signals.cancel() }
        let app = Application(
            router: ServiceRoutes.router(cameras: cameras, metrics: metrics, liveView: liveView, objectCounts: objectCounts, worker: worker),
            configuration: .init(address: .hostname(options.address, port: options.port), serverName: "tributary"),
            onServerRunning: { channel in
                let address = "http://\(options.address):\(channel.localAddress?.port ?? options.port)"
                worker?.apiAddress.withValue { $0 = address }
                onListening(address)
            },
            logger: logger)
        let pipelineService = PipelineService(inputs: options.inputs, metadataSinks: options.metadataSinks, cameras: cameras, metrics: metrics,
                                              liveView: liveView, worker: worker, running: running, logger: logger, makePipeline: makePipeline)
        let group = ServiceGroup(configuration: .init(services: [
            .init(service: app, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup),
            .init(service: pipelineService, successTerminationBehavior: .gracefullyShutdownGroup,
                  failureTerminationBehavior: .gracefullyShutdownGroup),
        ], logger: logger))
        try await group.run()
        if let error = pipelineService.buildError.withValue({ $0 }) { throw error }
        return running.withValue { $0.signal }.map { 128 + $0 } ?? 0
    }
}

/// The pipeline as a service of the group: built on a thread of its own (the detector's load
/// blocks), run there until a stop; a shutdown of the group (the server failed) stops it too.
final class PipelineService: Service, @unchecked Sendable {
    let inputs: [String]
    let metadataSinks: [any MetadataSink]
    let cameras: CameraService
    let metrics: MetricsExporter
    let liveView: LiveView
    let worker: ClusterWorker?
    let running: Locked<(pipeline: Pipeline?, signal: Int32?)>
    let logger: Logger
    let makePipeline: @Sendable () throws -> Pipeline
    let buildError = Locked<(any Error)?>(nil)

    init(inputs: [String], metadataSinks: [any MetadataSink], cameras: CameraService, metrics: MetricsExporter, liveView: LiveView,
         worker: ClusterWorker?, running: Locked<(pipeline: Pipeline?, signal: Int32?)>, logger: Logger,
         makePipeline: @escaping @Sendable () throws -> Pipeline) {
        self.worker = worker
        self.inputs = inputs
        self.metadataSinks = metadataSinks
        self.cameras = cameras
        self.metrics = metrics
        self.liveView = liveView
        self.running = running
        self.logger = logger
        self.makePipeline = makePipeline
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            await onThread { [self] in runPipeline() }
        } onGracefulShutdown: { [cameras, running] in
            cameras.stopping()
            running.withValue { $0.pipeline }?.requestStop(signal: SIGTERM)
        }
        if let error = buildError.withValue({ $0 }) { throw error }
    }

    private func runPipeline() {
        let pipeline: Pipeline
        do {
            pipeline = try makePipeline()
        } catch {
            buildError.withValue { $0 = error }
            return
        }
        pipeline.onEvent = { [cameras, metrics, logger] event in
            switch event {
            case .perf(let rates): metrics.record(rates: rates, cameras: cameras)
            case .sourceState(let status): if let line = status.recoveryWarning { logger.warning("\(line)") }
            case .sourceFailed(let failure): logger.error("\(failure)")
            case .stageFailed(let error): logger.error("\(error)")
            case .outputFailed(let failure): logger.error("\(failure); going on without it")
            case .liveSource: break
            }
        }
        let stoppedEarly = running.withValue { state -> Int32? in
            state.pipeline = pipeline
            return state.signal
        }
        cameras.started(pipeline)
        // A worker's cameras come from the registry, through its leases.
        worker?.start()
        for (index, input) in inputs.enumerated() {
            do {
                try cameras.add(StreamChange(kind: .add, cameraID: String(index), cameraURL: input))
            } catch {
                logger.error("input \(input): \(error)")
            }
        }
        if let stoppedEarly {
            cameras.stopping()
            pipeline.requestStop(signal: stoppedEarly)
        }
        let outcome = pipeline.run()
        cameras.stopping()
        // Every frame is out (and published under its lease): the leases go.
        worker?.stop()
        // No frame comes any more: the viewers' streams end, so the server's graceful shutdown,
        // which waits for its open responses, is not held by a live view.
        liveView.stop()
        for line in outcome.ledger.summaryLines(uri: { pipeline.uri(ofSource: $0) ?? "?" }) { logger.notice("\(line)") }
        for sink in metadataSinks { logger.notice("\(sink.summary)") }
        running.withValue { $0.pipeline = nil }
    }
}

/// Runs blocking work on a thread of its own and awaits it, keeping the cooperative pool free.
func onThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    let thread = Locked<WorkerThread?>(nil)
    let value = await withCheckedContinuation { continuation in
        thread.withValue { $0 = WorkerThread(name: "service-pipeline") { continuation.resume(returning: body()) } }
    }
    thread.withValue { $0 }?.join()
    return value
}
