import Tributary

/// The progress line `imagedata-multistream` keeps at the bottom of the terminal while it runs
/// over files: the frames done of the total the containers give, the rate over the run so far and
/// the time left, then each input's own count when there are several:
/// `[ 46%] 730/1590 frames, 52.3 fps, ETA 0:15 | stream0 365/795  stream1 365/795`.
/// An input whose total is unknown (`--file-loop`, a container without a duration) shows its
/// count alone, and the run then has no percentage and no ETA: nothing is guessed.
public struct ProgressLine: Sendable, Equatable {
    public struct Input: Sendable, Equatable {
        public var done: Int
        /// From the container's duration and the stream's frame rate; nil when they do not say.
        public var total: Int?

        public init(done: Int, total: Int?) {
            self.done = done
            self.total = total
        }
    }

    /// By input index (the `-i` order).
    public var inputs: [Input]
    /// Since the run started.
    public var elapsedSeconds: Double
    /// The run is over: the time it took instead of the time left.
    public var finished: Bool

    public init(inputs: [Input], elapsedSeconds: Double, finished: Bool = false) {
        self.inputs = inputs
        self.elapsedSeconds = elapsedSeconds
        self.finished = finished
    }

    /// Every input's frames done.
    public var done: Int { inputs.reduce(0) { $0 + $1.done } }

    /// The sum of the totals, when every input has one.
    public var total: Int? {
        guard !inputs.isEmpty else { return nil }
        var sum = 0
        for input in inputs {
            guard let total = input.total else { return nil }
            sum += total
        }
        return sum
    }

    /// Frames a second over the run so far, every input together.
    public var framesPerSecond: Double { elapsedSeconds > 0 ? Double(done) / elapsedSeconds : 0 }

    public var text: String {
        let done = self.done, fps = framesPerSecond
        var text: String
        if let total {
            // A container's total is an estimate: never past 100 %, never a negative time left.
            let percent = total > 0 ? min(100, done * 100 / total) : 100
            text = "[\(String(repeating: " ", count: 3 - "\(percent)".count))\(percent)%] \(done)/\(total) frames"
        } else {
            text = "\(done) frames"
        }
        text += ", \(PerfMonitor.pythonRounded(fps)) fps"
        if finished {
            text += ", in \(Self.clock(elapsedSeconds))"
        } else if let total, fps > 0 {
            text += ", ETA \(Self.clock(Double(max(0, total - done)) / fps))"
        }
        if inputs.count > 1 {
            text += " | " + inputs.enumerated().map { index, input in
                "stream\(index) \(input.done)" + (input.total.map { "/\($0)" } ?? "")
            }.joined(separator: "  ")
        }
        return text
    }

    /// `text` cut to `columns - 1` characters, ending in `…` when cut: a line that wraps can no
    /// longer be redrawn in place with a carriage return. Nil or 0 columns (not known): as it is.
    public func text(fittingColumns columns: Int?) -> String {
        let text = self.text
        guard let columns, columns > 1, text.count > columns - 1 else { return text }
        return String(text.prefix(columns - 2)) + "…"
    }

    /// `m:ss`, or `h:mm:ss` from an hour on.
    static func clock(_ seconds: Double) -> String {
        let whole = seconds.isFinite ? max(0, Int(seconds.rounded())) : 0
        let (hours, minutes, secs) = (whole / 3600, whole / 60 % 60, whole % 60)
        let mmss = "\(minutes < 10 && hours > 0 ? "0" : "")\(minutes):\(secs < 10 ? "0" : "")\(secs)"
        return hours > 0 ? "\(hours):\(mmss)" : mmss
    }
}

/// When the progress line is redrawn: at most once every `intervalNanoseconds` (the first time at
/// once), however many batches a second come, so that the terminal is not flooded.
public struct RedrawThrottle: Sendable, Equatable {
    public var intervalNanoseconds: UInt64
    private var lastRedraw: MonotonicInstant?

    /// Four times a second by default.
    public init(intervalNanoseconds: UInt64 = 250_000_000) {
        self.intervalNanoseconds = intervalNanoseconds
    }

    /// Whether to redraw at `now`; a yes counts as the redraw.
    public mutating func shouldRedraw(at now: MonotonicInstant) -> Bool {
        if let lastRedraw, now.nanoseconds(since: lastRedraw) < intervalNanoseconds { return false }
        lastRedraw = now
        return true
    }
}
