/// What a pipeline needs of a source: its frames, pulled on a thread of its own until its end.
/// `VideoSource` (a GStreamer pipeline per input) is the one the framework builds; tests give
/// the pipeline frames made in memory through the same face.
public protocol FrameSource: AnyObject, Sendable {
    /// The source's id in its pipeline (never reused within a run).
    var id: Int { get }
    var uri: SourceURI { get }
    /// Whether it plays in real time (it then drops rather than blocks when the muxer is full).
    var isLive: Bool { get }
    /// The frame rate it reported, once its first frame is out.
    var frameRate: (numerator: Int, denominator: Int)? { get }
    /// The frames it holds by its container (duration × frame rate), once its first frame is out;
    /// nil where there is no end to count to (live, looping) or it cannot tell.
    var expectedFrameCount: Int? { get }
    /// Starts producing (a GStreamer pipeline goes to PLAYING).
    func start()
    /// Asks `run` to end as at end-of-stream, from any thread.
    func requestStop()
    /// Pulls frames until end-of-stream, failure or a stop, handing each to `deliver` (which may
    /// block: that is the back-pressure); records each decoded frame in `ledger`.
    func run(ledger: FrameLedger, times: StageTimes?, deliver: (Frame) -> Void) -> SourceEnd
}

extension FrameSource {
    /// Sources made in memory know no container.
    public var expectedFrameCount: Int? { nil }
}

extension VideoSource: FrameSource {}
