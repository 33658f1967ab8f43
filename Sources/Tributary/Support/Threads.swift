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

/// No transparent huge pages for this process from now on (`PR_SET_THP_DISABLE`; the ones it has
/// stay). x264 asks for them for its frame buffers (`MADV_HUGEPAGE`), and khugepaged then fills
/// those ranges — and the heap that later reuses them — with 2-MB pages as the run goes on: in
/// two 12-minute soaks side by side, 140 → 182 MB of huge pages and RSS +21 MB with them, RSS
/// flat without them at the same frame rate (docs/reliability.md, "Soak"). Process-wide, so the
/// output stage calls it only when it starts an x264 encoder.
public func disableTransparentHugePages() { _ = tb_disable_transparent_huge_pages() }

/// Blocks of 1 MiB and more — frames, tensors, encoder pictures — each mapped on its own and given
/// back to the system when freed (glibc's `M_MMAP_THRESHOLD`, fixed). By default glibc raises that
/// threshold to the largest block freed so far (up to 32 MiB), after which frame-sized blocks come
/// from the heap of the thread that asks — an arena per thread, each keeping the most it ever
/// held: a soak's RSS rose by ≈ 25 MB at each file loop until every arena had its share (+120 MB
/// over a 2-s clip's first five loops), or at a loop 19 minutes in, failing the 30-minute soak;
/// fixed, it stayed flat, 190 MB lower, at the same frame rate (docs/reliability.md, "Soak").
/// Process-wide; done once, by the first pipeline.
public func returnLargeBlocksWhenFreed() { _ = largeBlocksReturned }

private let largeBlocksReturned: Bool = tb_fix_mmap_threshold(1 << 20) == 1

/// Ends the process now with `status` after flushing standard output, without the libraries'
/// exit-time teardown. For the end of a GPU run: the CUDA libraries that ONNX Runtime's CUDA
/// provider loads can crash in their static destructors after a run that went well
/// (onnxruntime#21207, pykeio/ort#609), turning its status into a crash. Call it only once every
/// output is finished (sinks finalised, files closed).
public func exitWithoutLibraryTeardown(_ status: Int32) -> Never {
    flushStandardOutput()
    _exit(status)
}
