#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A child process (posix_spawn), for running one GPU's share of the work in its own process:
/// `imagedata-multistream --process-per-gpu` and the benchmark's `per-gpu` rows. Its standard
/// input and output are pipes to this process (`readLine`, `send`) or this process's own.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    private let toChild: Int32?
    private let fromChild: Int32?
    private var pending: [UInt8] = []

    /// The path of the running executable.
    public static func currentExecutable() throws -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { throw PipelineError.failed(what: "/proc/self/exe", message: "cannot read the link") }
        return String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Starts `executable` with `arguments`; with `pipes`, its standard input and output are
    /// pipes to this process, otherwise it shares ours (standard error is always shared). With
    /// `newProcessGroup` the terminal's Ctrl-C does not reach it (pass signals on with `signal`).
    public init(executable: String, arguments: [String], pipes: Bool, newProcessGroup: Bool = false) throws {
        var input: [Int32] = [-1, -1], output: [Int32] = [-1, -1]
        if pipes {
            guard pipe(&input) == 0 else { throw PipelineError.failed(what: "pipe", message: String(cString: strerror(errno))) }
            guard pipe(&output) == 0 else {
                close(input[0]); close(input[1])
                throw PipelineError.failed(what: "pipe", message: String(cString: strerror(errno)))
            }
            // Close-on-exec, so that no child inherits another child's ends (dup2 clears it for 0 and 1).
            for fd in input + output { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if pipes {
            posix_spawn_file_actions_adddup2(&actions, input[0], 0)
            posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Signals as a fresh process has them: default handling, none blocked (ignored ones
        // and the mask would otherwise carry over, and a passed-on SIGTERM go unheard).
        var all = sigset_t(), none = sigset_t()
        sigfillset(&all)
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        var flags = Int32(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)
        if newProcessGroup {
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
            posix_spawnattr_setpgroup(&attributes, 0)
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var child = pid_t()
        let result = posix_spawn(&child, executable, &actions, &attributes, argv, environ)
        if pipes {
            close(input[0])
            close(output[1])
        }
        guard result == 0 else {
            if pipes { close(input[1]); close(output[0]) }
            throw PipelineError.failed(what: executable, message: "cannot start: \(String(cString: strerror(result)))")
        }
        pid = child
        toChild = pipes ? input[1] : nil
        fromChild = pipes ? output[0] : nil
    }

    deinit {
        if let toChild { close(toChild) }
        if let fromChild { close(fromChild) }
    }

    /// The child's next line of output, nil at its end (or without pipes).
    public func readLine() -> String? {
        guard let fromChild else { return nil }
        while true {
            if let newline = pending.firstIndex(of: 10) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { read(fromChild, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return nil }
            pending += chunk.prefix(count)
        }
    }

    /// Writes `line` and a newline to the child's input (nothing without pipes).
    public func send(_ line: String) {
        guard let toChild else { return }
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(toChild, $0.baseAddress, $0.count) }
    }

    /// Sends `signal` to the child.
    public func signal(_ signal: Int32) { _ = kill(pid, signal) }

    /// Waits for the child to end; its exit status, 128 + the signal if a signal ended it.
    public func wait() -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }
}
