import CGStreamer

/// Our CUDA contexts as GStreamer's libgstcuda sees them, so that NVDEC decoders and CUDA buffer
/// pools allocate in the context our kernels and ONNX Runtime use (no copy between contexts).
/// The CUDA layer itself knows nothing of GStreamer: this is the one place the two meet.
extension CUDADevice {
    /// Sets this device's context on a GStreamer element (a source pipeline), so its NVDEC
    /// decoder allocates in our context. False when libgstcuda is not there.
    @discardableResult
    func shareContext(with element: UnsafeMutablePointer<GstElement>) -> Bool {
        guard let gstContext else { return false }
        gst_element_set_context(element, gstContext)
        return true
    }

    /// A GStreamer buffer pool of CUDA memory in this device's context (libgstcuda's
    /// `GstCudaBufferPool`), for frames handed to elements that take CUDA memory (NVENC) without
    /// a copy; nil without libgstcuda. Not yet configured.
    func makeGStreamerBufferPool() -> UnsafeMutablePointer<GstBufferPool>? {
        gstContext.flatMap { tb_gst_cuda_buffer_pool_new($0) }
    }

    /// libgstcuda's wrap of this device's context, made once per device (devices live for the
    /// process); nil without libgstcuda.
    private var gstContext: OpaquePointer? {
        wrappedContexts.withValue { contexts in
            if let made = contexts[ordinal] { return made }
            let made = tb_gst_cuda_context_wrap(UnsafeMutableRawPointer(context), Int32(ordinal))
            contexts[ordinal] = made
            return made
        }
    }
}

/// libgstcuda's contexts by device ordinal (nil: libgstcuda could not wrap it).
private let wrappedContexts = Locked<[Int: OpaquePointer?]>([:])
