import Logging
import Tributary
import TributarySample
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The progress line (`ProgressLine`) at the bottom of the terminal, and the one way the app
/// prints while a run goes on (`printAbove`), so that nothing is ever written into the line.
///
/// The line goes to standard error, redrawn in place (`\r`, then ANSI erase-to-end-of-line). The
/// per-frame lines and `**PERF` stay on standard output, as the DeepStream sample prints them
/// (users pipe and grep them): each print clears the line first and draws it again after, so the
/// lines scroll by above it as a build's messages scroll above its progress bar. Its text changes
/// at most four times a second (`RedrawThrottle`); between, a print repaints the same text.
final class TerminalProgress: @unchecked Sendable {
    private struct State {
        var enabled: Bool
        /// Each input's frames done and its total, when known.
        var read: (@Sendable () -> [ProgressLine.Input])?
        var started: MonotonicInstant?
        /// The line on the terminal now; nil: none.
        var shown: String?
        var throttle = RedrawThrottle()
        /// Each input's total once known: the sources' statuses forget it when the run ends.
        var totals: [Int?] = []

        /// The line at `now` from `inputs`, keeping the totals learnt so far.
        mutating func line(_ inputs: [ProgressLine.Input], at now: MonotonicInstant, finished: Bool) -> ProgressLine {
            if totals.count < inputs.count { totals += Array(repeating: nil, count: inputs.count - totals.count) }
            var inputs = inputs
            for index in inputs.indices {
                totals[index] = totals[index] ?? inputs[index].total
                inputs[index].total = totals[index]
            }
            let elapsed = Double(now.nanoseconds(since: started ?? now)) / 1e9
            return ProgressLine(inputs: inputs, elapsedSeconds: elapsed, finished: finished)
        }
    }

    private let state: Locked<State>
    private let clock = MonotonicClock()
    private static let clearLine = "\r\u{1B}[K"

    /// - Parameter enabled: whether this run may show a line at all (the terminal, the flags);
    ///   it shows none until `start`.
    init(enabled: Bool) {
        state = Locked(State(enabled: enabled))
    }

    /// Whether a terminal is there for the line: standard output (where the per-frame lines go:
    /// piped, they are for a program) and standard error (where the line goes) both, and one that
    /// knows the escape that erases a line (not `TERM=dumb`).
    static var terminalAttached: Bool {
        isatty(STDOUT_FILENO) == 1 && isatty(STDERR_FILENO) == 1 && getenv("TERM").map { String(cString: $0) } != "dumb"
    }

    /// Counts from here on; `read` gives each input's frames done and total.
    func start(read: @escaping @Sendable () -> [ProgressLine.Input]) {
        let now = clock.now()
        state.withValue {
            $0.read = $0.enabled ? read : nil
            $0.started = now
        }
    }

    /// Redraws the line with fresh counts when the throttle allows (call it for every batch).
    func tick() {
        let now = clock.now()
        guard let read = state.withValue({ s in s.read != nil && s.throttle.shouldRedraw(at: now) ? s.read : nil }) else { return }
        let inputs = read()  // outside the lock: the pipelines' own locks are taken
        state.withValue { s in
            guard s.read != nil else { return }
            let line = s.line(inputs, at: now, finished: false).text(fittingColumns: Self.terminalColumns())
            Self.writeToStandardError(Self.clearLine + line)
            s.shown = line
        }
    }

    /// Runs `body`, which prints, with the line cleared before and drawn again after; lines from
    /// several threads (batches, `**PERF`, errors, logs) come out whole, one after another.
    func printAbove<R>(_ body: () throws -> R) rethrows -> R {
        try state.withValue { s in
            guard let shown = s.shown else { return try body() }
            Self.writeToStandardError(Self.clearLine)
            defer {
                flushStandardOutput()  // what `body` printed comes before the line again
                Self.writeToStandardError(Self.clearLine + shown)
            }
            return try body()
        }
    }

    /// The line goes for good (a live input: there is no end to count to).
    func hide() {
        state.withValue { s in
            if s.shown != nil { Self.writeToStandardError(Self.clearLine) }
            s.shown = nil
            s.read = nil
        }
    }

    /// The run is over: the line drawn a last time with the final counts and the time the run
    /// took, and left on the terminal above what the app prints next.
    func finish() {
        let now = clock.now()
        guard let read = state.withValue({ s in s.shown != nil ? s.read : nil }) else { return hide() }
        let inputs = read()
        state.withValue { s in
            guard s.shown != nil else { return }
            Self.writeToStandardError(Self.clearLine + s.line(inputs, at: now, finished: true).text(fittingColumns: Self.terminalColumns()) + "\n")
            s.shown = nil
            s.read = nil
        }
    }

    /// A log handler that writes above the line (GStreamer's warnings come through the logger).
    func logHandler(label: String) -> any LogHandler {
        LineClearingLogHandler(inner: StreamLogHandler.standardError(label: label), progress: self)
    }

    /// Standard error's width in columns; nil when it does not say (a pseudo-terminal without a
    /// size says 0).
    private static func terminalColumns() -> Int? {
        var size = winsize()
        guard ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return nil }
        return Int(size.ws_col)
    }

    /// Straight to standard error, unbuffered.
    private static func writeToStandardError(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(STDERR_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 { return }
                offset += written
            }
        }
    }
}

/// Swift-log's standard-error handler, writing above the progress line.
private struct LineClearingLogHandler: LogHandler {
    var inner: StreamLogHandler
    let progress: TerminalProgress

    func log(event: LogEvent) {
        progress.printAbove { inner.log(event: event) }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }
}
