import Tributary

/// The service's cameras over one running pipeline: DeepStream's add, remove and stream-info by
/// `camera_id`, and the readiness the health probes report. No HTTP here (`ServiceRoutes` maps it).
public final class CameraService: @unchecked Sendable {
    /// A camera as it was added, and the source it runs as.
    public struct Camera: Sendable, Equatable {
        public var cameraID: String
        public var cameraName: String?
        public var cameraURL: String
        public var sourceID: Int
        public var metadata: JSONValue?
    }

    /// One camera's line in `get-stream-info`.
    public struct StreamInfo: Sendable, Equatable {
        public var camera: Camera
        public var status: SourceStatus?
        public var counts: FrameLedger.SourceCounts
    }

    public enum Phase: Sendable, Equatable {
        /// The HTTP server answers; the detector and the pipeline are being built.
        case starting
        /// The pipeline runs: cameras may be added.
        case running
        /// Stopping (a signal), or stopped.
        case stopping
    }

    private struct State {
        var phase = Phase.starting
        var pipeline: Pipeline?
        var cameras: [String: Camera] = [:]
        /// Every source the run has had, by id: its camera (for the metrics of removed ones too).
        var cameraOfSource: [Int: String] = [:]
    }

    private let state = Locked(State())

    public init() {}

    public var phase: Phase { state.withValue { $0.phase } }

    /// The pipeline is built and about to run: cameras may come.
    public func started(_ pipeline: Pipeline) {
        state.withValue {
            $0.pipeline = pipeline
            $0.phase = .running
        }
    }

    /// The pipeline is stopping: no camera is added any more.
    public func stopping() { state.withValue { $0.phase = .stopping } }

    /// Adds a camera; its frames join the batches from its first decoded frame.
    /// - Throws: `StreamRequestError` (a URI that cannot be opened, a camera id present, not running).
    @discardableResult
    public func add(_ change: StreamChange, firstFrameNumber: Int = 0) throws -> Camera {
        let pipeline = try runningPipeline()
        guard let url = change.cameraURL else { throw StreamRequestError.badRequest("missing field: value.camera_url") }
        let uri: SourceURI
        do { uri = try SourceURI(url) } catch { throw StreamRequestError.badRequest("camera_url: \(error)") }
        // One add at a time per camera id: the check and the insertion happen under the lock of
        // the pipeline's own camera table (`addSource` refuses a camera id present).
        let sourceID: Int
        do {
            sourceID = try pipeline.addSource(uri, cameraID: change.cameraID, firstFrameNumber: firstFrameNumber)
        } catch SourceChangeError.cameraPresent(let camera, let id) {
            throw StreamRequestError.conflict("camera_id \(camera) is already present (source \(id))")
        } catch SourceChangeError.inputClosed {
            throw StreamRequestError.unavailable("the pipeline is stopping")
        } catch {
            throw StreamRequestError.badRequest("camera_url \(url): \(error)")
        }
        let camera = Camera(cameraID: change.cameraID, cameraName: change.cameraName, cameraURL: url, sourceID: sourceID,
                            metadata: change.metadata)
        state.withValue {
            $0.cameras[change.cameraID] = camera
            $0.cameraOfSource[sourceID] = change.cameraID
        }
        return camera
    }

    /// Removes a camera: it stops at once, its queued frames still go out (`.drain`) or not (`.drop`).
    /// - Throws: `StreamRequestError.unknownCamera`, or `.badRequest` when `camera_url` is not its own.
    @discardableResult
    public func remove(_ change: StreamChange, policy: SourceRemovalPolicy = .drain) throws -> Camera {
        let pipeline = try runningPipeline()
        let camera = try state.withValue { state -> Camera in
            guard let camera = state.cameras[change.cameraID] else { throw StreamRequestError.unknownCamera("no camera \(change.cameraID)") }
            if let url = change.cameraURL, url != camera.cameraURL {
                throw StreamRequestError.badRequest("camera_url \(url) is not camera \(change.cameraID)'s (\(camera.cameraURL))")
            }
            state.cameras[change.cameraID] = nil
            return camera
        }
        pipeline.removeSource(camera.sourceID, policy: policy)
        return camera
    }

    /// The cameras present, ascending by source id, with their state and frame counts.
    public func streamInfo() -> [StreamInfo] {
        let (pipeline, cameras) = state.withValue { ($0.pipeline, $0.cameras.values.sorted { $0.sourceID < $1.sourceID }) }
        let statuses = Dictionary((pipeline?.sourceStatuses ?? []).map { ($0.sourceID, $0) }, uniquingKeysWith: { a, _ in a })
        return cameras.map { camera in
            StreamInfo(camera: camera, status: statuses[camera.sourceID],
                       counts: pipeline?.ledger.counts(of: camera.sourceID) ?? FrameLedger.SourceCounts())
        }
    }

    /// The source a present camera runs as.
    public func sourceID(ofCamera camera: String) -> Int? { state.withValue { $0.cameras[camera]?.sourceID } }

    /// The camera a source ran as (present or removed), for the metrics' labels.
    public func cameraID(ofSource id: Int) -> String? { state.withValue { $0.cameraOfSource[id] } }

    /// The running pipeline, for the metrics.
    public var pipeline: Pipeline? { state.withValue { $0.pipeline } }

    private func runningPipeline() throws -> Pipeline {
        try state.withValue { state in
            switch (state.phase, state.pipeline) {
            case (.running, let pipeline?): return pipeline
            case (.stopping, _): throw StreamRequestError.unavailable("the pipeline is stopping")
            default: throw StreamRequestError.unavailable("the pipeline is starting (the detector is loading)")
            }
        }
    }
}
