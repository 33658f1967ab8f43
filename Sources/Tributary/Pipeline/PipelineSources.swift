import Logging

/// Sources that come and go while the pipeline runs: added and removed from any thread, ids never
/// reused, camera ids mapped to them.
extension Pipeline {
    /// No source will be added any more: a pipeline that takes new sources
    /// (`StreamMuxerConfiguration.acceptsNewSources`) ends once the sources present have ended.
    public func closeInput() {
        sources.withValue { $0.inputClosed = true }
        muxer.closeInput()
    }

    /// A new source, from any thread, before or while the pipeline runs: its frames join the
    /// batches from its first decoded frame; the tiler's grid, the `**PERF` block and the ledger
    /// gain an entry. Source ids count up and are never reused; `cameraID` (DeepStream's
    /// `camera_id`) names it, one source at a time. `firstFrameNumber`: where its frame numbers
    /// start (a camera taken over from another worker continues its numbers).
    /// - Returns: the new source's id.
    @discardableResult
    public func addSource(_ uri: SourceURI, cameraID: String? = nil, firstFrameNumber: Int = 0) throws -> Int {
        try addLock.withLock {
            let (id, closed, taken) = sources.withValue { ($0.nextID, $0.inputClosed, cameraID.flatMap($0.sourceID(ofCamera:))) }
            if closed { throw SourceChangeError.inputClosed(uri: uri.original) }
            if let cameraID, let taken { throw SourceChangeError.cameraPresent(cameraID: cameraID, sourceID: taken) }
            let source = try makeSource(id, uri)
            for case let saver as FrameSaver in stages { try saver.addSource(id) }
            ledger.addSource(id)
            perf.addStream(id)
            do { try muxer.addSource(id: id) } catch { throw SourceChangeError.inputClosed(uri: uri.original) }
            let (running, count) = sources.withValue { table in
                table.insert(source, cameraID: cameraID)
                if firstFrameNumber != 0 { table.firstFrameNumbers[id] = firstFrameNumber }
                return (table.running, table.sources.count)
            }
            if configuration.batchSizeFollowsSources { muxer.setBatchSize(followingBatchSize(sources: count)) }
            if running { startThread(of: source) }
            logger.info("source \(id) added: \(uri.original)\(cameraID.map { " (camera \($0))" } ?? "")")
            return id
        }
    }

    /// Removes a source, from any thread, while batches flow: it stops decoding at once;
    /// `.drain` lets the frames it already queued go out, `.drop` discards them (counted in the
    /// ledger as "source removed"). The grid, the `**PERF` block and the camera id let it go.
    /// Returns when its thread has ended (its GStreamer pipeline is then stopped).
    /// - Returns: how many queued frames were dropped; nil when no such source is present.
    @discardableResult
    public func removeSource(_ id: Int, policy: SourceRemovalPolicy = .drain) -> Int? {
        guard let (source, supervisor, thread) = sources.withValue({ $0.remove(id) }) else { return nil }
        source.requestStop()
        supervisor?.stop()
        let dropped = muxer.removeSource(id: id, policy: policy)
        perf.removeStream(id)
        if configuration.batchSizeFollowsSources {
            muxer.setBatchSize(followingBatchSize(sources: sources.withValue { $0.sources.count }))
        }
        thread?.join()
        logger.info("source \(id) removed (\(policy == .drain ? "drained" : "dropped \(dropped) queued frames"))")
        return dropped
    }

    /// The batch size for `count` sources present when it follows them: at least 1, at most
    /// `maxBatchSize`.
    private func followingBatchSize(sources count: Int) -> Int {
        min(max(1, count), configuration.maxBatchSize ?? .max)
    }

    /// The source a camera id names, while it is present.
    public func sourceID(ofCamera cameraID: String) -> Int? { sources.withValue { $0.sourceID(ofCamera: cameraID) } }

    /// The ids of the sources present, ascending.
    public var sourceIDs: [Int] { sources.withValue { $0.presentIDs } }

    /// The URI a source was given as (the user's spelling), for every source the run has had.
    public func uri(ofSource id: Int) -> String? { sources.withValue { $0.uris[id] } }
}

/// Why `Pipeline.addSource` refused a source.
public enum SourceChangeError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The pipeline takes no more sources (it was built for fixed inputs, closed or stopped).
    case inputClosed(uri: String)
    /// Another source present has that camera id.
    case cameraPresent(cameraID: String, sourceID: Int)

    public var description: String {
        switch self {
        case .inputClosed(let uri): return "cannot add \(uri): the pipeline takes no new sources"
        case .cameraPresent(let camera, let id): return "camera \(camera) is already present as source \(id)"
        }
    }
}

/// The pipeline's sources by id: those present, their camera ids and threads. Ids count up from
/// the initial inputs' `0..<N` and are never reused.
struct SourceTable {
    var sources: [Int: any FrameSource] = [:]
    /// The present sources' ids, ascending (the grid's order).
    private(set) var presentIDs: [Int] = []
    /// The URI of every source the run has had, removed or not (the summary's lines). A removed
    /// source itself is let go at once: its GStreamer pipeline is freed (a service adds and
    /// removes cameras for days).
    var uris: [Int: String] = [:]
    var cameras: [String: Int] = [:]
    /// Sources whose frame numbers do not start at 0.
    var firstFrameNumbers: [Int: Int] = [:]
    var threads: [Int: WorkerThread] = [:]
    /// The started sources' drivers (recovery, status).
    var supervisors: [Int: SourceSupervisor] = [:]
    var nextID = 0
    var running = false
    var inputClosed = false
    var anyLive = false

    func sourceID(ofCamera cameraID: String) -> Int? { cameras[cameraID] }

    mutating func insert(_ source: any FrameSource, cameraID: String?) {
        sources[source.id] = source
        uris[source.id] = source.uri.original
        presentIDs.append(source.id)  // the greatest id so far: the order holds
        if let cameraID { cameras[cameraID] = source.id }
        nextID = source.id + 1
    }

    /// Takes a source out; its thread, if started, is the caller's to join.
    mutating func remove(_ id: Int) -> (any FrameSource, SourceSupervisor?, WorkerThread?)? {
        guard let source = sources.removeValue(forKey: id) else { return nil }
        presentIDs.removeAll { $0 == id }
        cameras = cameras.filter { $0.value != id }
        firstFrameNumbers[id] = nil
        return (source, supervisors.removeValue(forKey: id), threads.removeValue(forKey: id))
    }
}
