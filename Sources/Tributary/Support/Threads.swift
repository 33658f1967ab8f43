import CGStreamer
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A joinable OS thread. Stages that block (appsink pulls, the muxer's waits) get their own thread
/// rather than a Dispatch worker, so blocking never starves a shared pool.
public final class WorkerThread: @unchecked Sendable {
    private var thread = pthread_t()
    private var joined = false

    private final class Box { let body: () -> Void; init(_ body: @escaping () -> Void) { self.body = body } }

    public init(name: String, _ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        let result = pthread_create(&thread, nil, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.body()
            return nil
        }, box)
        precondition(result == 0, "pthread_create failed: \(result)")
    }

    public func join() {
        guard !joined else { return }
        joined = true
        pthread_join(thread, nil)
    }
}

/// Writes a line to standard error without Foundation.
public func printError(_ message: String) {
    var line = message
    line.append("\n")
    line.utf8CString.withUnsafeBufferPointer { _ = write(2, $0.baseAddress, $0.count - 1) }
}

/// Flushes standard output; lines must show up promptly when piped.
public func flushStandardOutput() { fflush(nil) }  // nil flushes every stream, stdout included

/// Makes standard output line-buffered, so that each line goes out in one write: for processes
/// that share one standard output (`--process-per-gpu`), whose lines must not interleave.
public func lineBufferStandardOutput() { tb_line_buffer_stdout() }

/// Ends the process now with `status` after flushing standard output, without the libraries'
/// exit-time teardown. For the end of a GPU run: the CUDA libraries that ONNX Runtime's CUDA
/// provider loads can crash in their static destructors after a run that went well
/// (onnxruntime#21207, pykeio/ort#609), turning its status into a crash. Call it only once every
/// output is finished (sinks finalised, files closed).
public func exitWithoutLibraryTeardown(_ status: Int32) -> Never {
    flushStandardOutput()
    _exit(status)
}
