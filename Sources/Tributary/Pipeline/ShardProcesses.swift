#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Shards run each in a child process: this executable again, with each shard's arguments (a
/// pipeline per GPU in a process of its own, measured to scale better than one process for every
/// GPU). The app's `--process-per-gpu` and the benchmark's per-GPU rows start theirs here. A child
/// that cannot start ends the ones already started; children never waited for are ended and
/// reaped when the group goes.
public final class ShardProcesses: @unchecked Sendable {
    public let children: [ChildProcess]
    private let waited = Locked(false)

    /// - Parameters:
    ///   - pipes: each child's standard input and output through pipes, for a line protocol
    ///     (`ChildProcess.send`, `readLine`); otherwise it shares this process's.
    ///   - ownProcessGroups: each child in its own process group, so that a terminal's Ctrl-C
    ///     reaches it once, through this process (`waitPassingSignals`).
    ///   - arguments: shard `i`'s arguments.
    public init(count: Int, pipes: Bool, ownProcessGroups: Bool, arguments: (Int) -> [String]) throws {
        let executable = try ChildProcess.currentExecutable()
        var started: [ChildProcess] = []
        do {
            for shard in 0..<count {
                started.append(try ChildProcess(executable: executable, arguments: arguments(shard), pipes: pipes,
                                                newProcessGroup: ownProcessGroups))
            }
        } catch {
            Self.end(started)
            throw error
        }
        children = started
    }

    /// Waits for every child; each one's exit status (128 + N after signal N).
    public func waitAll() -> [Int32] {
        waited.withValue { $0 = true }
        return children.map { $0.wait() }
    }

    /// `waitAll`, passing SIGINT and SIGTERM on to every child meanwhile — every copy: a second
    /// Ctrl-C ends the children at once, as it ends one process.
    public func waitPassingSignals() -> [Int32] {
        let signals = SignalStopper(signals: [SIGINT, SIGTERM], passEveryOn: true) { [children] signal in
            for child in children { child.signal(signal) }
        }
        defer { signals.cancel() }
        return waitAll()
    }

    /// The group's exit status: the first child's that ended on a signal, else the first failing
    /// child's, else 0.
    public static func exitStatus(_ statuses: [Int32]) -> Int32 {
        statuses.first { $0 > 128 } ?? statuses.first { $0 != 0 } ?? 0
    }

    private static func end(_ children: [ChildProcess]) {
        for child in children { child.signal(SIGTERM) }
        for child in children { _ = child.wait() }
    }

    deinit {
        if !waited.withValue({ $0 }) { Self.end(children) }
    }
}
