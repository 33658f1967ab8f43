#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What a stop signal (SIGINT, SIGTERM) means given the ones before it. The first asks for a clean
/// stop (inputs end, outputs are finalised). A second forces the exit only when it is meant as
/// one: typed at the terminal (Ctrl-C again) or sent at least `graceNanoseconds` after the first.
/// Supervisors such as `timeout` send SIGTERM to the child and then to its process group, so a
/// single stop request can arrive twice within microseconds; that copy must not lose the MP4.
public struct StopSignalPolicy: Sendable {
    public enum Action: Equatable, Sendable {
        /// The first signal: stop cleanly.
        case stop
        /// A copy of the request already being carried out.
        case ignore
        /// Give up on the clean stop: end the process now.
        case exitNow
    }

    public static let defaultGraceNanoseconds: UInt64 = 1_000_000_000
    public let graceNanoseconds: UInt64
    private var firstAt: MonotonicInstant?

    public init(graceNanoseconds: UInt64 = StopSignalPolicy.defaultGraceNanoseconds) {
        self.graceNanoseconds = graceNanoseconds
    }

    public mutating func receive(fromTerminal: Bool, at now: MonotonicInstant) -> Action {
        guard let firstAt else {
            firstAt = now
            return .stop
        }
        return fromTerminal || now.nanoseconds(since: firstAt) >= graceNanoseconds ? .exitNow : .ignore
    }
}

/// The write end of the signal pipe: the handler may only make async-signal-safe calls, so it
/// writes what it got there and a thread acts on it.
nonisolated(unsafe) private var signalPipeWriteEnd: Int32 = -1

/// Turns SIGINT/SIGTERM into a clean stop through `onSignal`, following `StopSignalPolicy` (a
/// forced exit ends the process with 128 + the signal), or with `passEveryOn` hands every signal
/// to `onSignal` (a parent of child processes passes each on and lets them decide). One at a time
/// in a process; `cancel` leaves the signals ignored, for the teardown that follows.
public final class SignalStopper: @unchecked Sendable {
    private let signals: [Int32]
    private let pipeEnds: (read: Int32, write: Int32)
    private var reader: WorkerThread?

    public init(signals: [Int32], passEveryOn: Bool = false, clock: TimeSource = MonotonicClock(),
                onSignal: @escaping @Sendable (Int32) -> Void) {
        precondition(signalPipeWriteEnd < 0, "one SignalStopper at a time")
        var ends: [Int32] = [0, 0]
        precondition(pipe(&ends) == 0, "pipe failed")
        self.signals = signals
        pipeEnds = (ends[0], ends[1])
        signalPipeWriteEnd = ends[1]
        let readEnd = ends[0]
        // A parent can hand the signals down blocked (threads of libdispatch's pool block them,
        // and a child spawned from one inherits that): unblocked here, in the threads made from
        // here on, and in the reader, so a signal is never left pending.
        var set = sigset_t()
        sigemptyset(&set)
        for number in signals { sigaddset(&set, number) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        let unblock = set
        reader = WorkerThread(name: "signals") {
            var unblocked = unblock
            pthread_sigmask(SIG_UNBLOCK, &unblocked, nil)
            var policy = StopSignalPolicy()
            var record: (UInt8, UInt8) = (0, 0)
            while withUnsafeMutableBytes(of: &record, { read(readEnd, $0.baseAddress, 2) }) == 2, record.0 != 0 {
                let number = Int32(record.0)
                if passEveryOn {
                    onSignal(number)
                    continue
                }
                switch policy.receive(fromTerminal: record.1 == 1, at: clock.now()) {
                case .stop:
                    printError("Caught signal \(number): stopping; queued frames finish and the output is finalised")
                    onSignal(number)
                case .ignore:
                    continue
                case .exitNow:
                    printError("Caught signal \(number) again: exiting now")
                    _exit(128 + number)
                }
            }
        }
        for number in signals {
            var action = sigaction()
            action.sa_flags = SA_SIGINFO | SA_RESTART
            sigemptyset(&action.sa_mask)
            action.__sigaction_handler.sa_sigaction = { number, info, _ in
                // SI_KERNEL: sent by the kernel itself, which is how the terminal's Ctrl-C arrives
                // (kill(2) and sigqueue(3) give SI_USER / SI_QUEUE).
                let fromTerminal: UInt8 = info.map { $0.pointee.si_code == 0x80 } == true ? 1 : 0
                var record: (UInt8, UInt8) = (UInt8(truncatingIfNeeded: number), fromTerminal)
                _ = withUnsafeBytes(of: &record) { write(signalPipeWriteEnd, $0.baseAddress, 2) }
            }
            sigaction(number, &action, nil)
        }
    }

    /// Stops listening: the signals are ignored from here on.
    public func cancel() {
        guard let reader else { return }
        for number in signals { signal(number, SIG_IGN) }
        var stop: (UInt8, UInt8) = (0, 0)
        _ = withUnsafeBytes(of: &stop) { write(pipeEnds.write, $0.baseAddress, 2) }
        reader.join()
        self.reader = nil
        close(pipeEnds.read)
        close(pipeEnds.write)
        signalPipeWriteEnd = -1
    }

    deinit { cancel() }
}
