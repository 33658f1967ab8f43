import CGStreamer

/// A GStreamer buffer kept mapped while an `ImageBuffer` uses its memory: frames go from the
/// appsink to the muxer without a copy.
final class GstMappedBuffer: ImageMemoryOwner, @unchecked Sendable {
    private let buffer: UnsafeMutablePointer<GstBuffer>
    private var info = GstMapInfo()
    let data: UnsafeMutableRawPointer
    let size: Int
    /// Mapped for writing: probes may change the pixels in place.
    let isWritable: Bool

    /// Takes over one reference to `buffer`. Maps it for writing when it is writable (we hold the
    /// only reference), else read-only; nil if it cannot be mapped.
    init?(taking buffer: UnsafeMutablePointer<GstBuffer>) {
        self.buffer = buffer
        let writable = gst_mini_object_is_writable(UnsafeMutableRawPointer(buffer).assumingMemoryBound(to: GstMiniObject.self)) != 0
        isWritable = writable && gst_buffer_map(buffer, &info, tb_map_readwrite()) != 0
        if !isWritable && gst_buffer_map(buffer, &info, tb_map_read()) == 0 {
            gst_buffer_unref(buffer)
            return nil
        }
        data = UnsafeMutableRawPointer(info.data)
        size = Int(info.size)
    }

    deinit {
        gst_buffer_unmap(buffer, &info)
        gst_buffer_unref(buffer)
    }
}
