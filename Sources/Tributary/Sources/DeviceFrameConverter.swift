import CGStreamer

/// The GPU path's end of a source: takes NVDEC's NV12 frame in CUDA memory (mapped with the CUDA
/// map flag: a device address, no host copy), and converts and scales it with our kernel into a
/// pitched RGBA slot of the muxer's size from a pool. The decoder's buffer goes back to
/// GStreamer as soon as the kernel is done.
final class DeviceFrameConverter: @unchecked Sendable {
    let device: CUDADevice
    private let pool: DeviceImagePool
    private let stream: CUDAStream
    private let kernel: CUDAFunction

    init(device: CUDADevice, width: Int, height: Int) throws {
        self.device = device
        pool = DeviceImagePool(device: device, width: width, height: height)
        stream = try device.makeStream()
        kernel = try device.function(named: "nv12_to_rgba", source: CUDAKernels.nv12ToRGBA)
    }

    /// The caps the source's appsink asks for: NV12 in CUDA memory.
    static let appsinkCaps = "video/x-raw(memory:CUDAMemory),format=NV12"

    /// Converts `buffer` (not consumed) into a new RGBA device image.
    func convert(_ buffer: UnsafeMutablePointer<GstBuffer>, caps: UnsafeMutablePointer<GstCaps>?) throws -> ImageBuffer {
        var sourceWidth = 0, sourceHeight = 0
        var lumaOffset = 0, chromaOffset = 0, pitch = 0
        if let meta = tb_buffer_video_meta(buffer) {
            sourceWidth = Int(meta.pointee.width)
            sourceHeight = Int(meta.pointee.height)
            lumaOffset = Int(meta.pointee.offset.0)
            chromaOffset = Int(meta.pointee.offset.1)
            pitch = Int(meta.pointee.stride.0)
        } else {
            // No meta: the caps' default layout (tight rows, UV plane right after luma).
            var info = GstVideoInfo()
            guard let caps, gst_video_info_from_caps(&info, caps) != 0 else { throw PipelineError.failed(what: "decoder output", message: "no video layout in its caps") }
            sourceWidth = Int(info.width)
            sourceHeight = Int(info.height)
            lumaOffset = Int(info.offset.0)
            chromaOffset = Int(info.offset.1)
            pitch = Int(info.stride.0)
        }
        var map = GstMapInfo()
        guard gst_buffer_map(buffer, &map, tb_map_cuda_read()) != 0 else {
            throw PipelineError.failed(what: "decoder output", message: "not CUDA memory")
        }
        defer { gst_buffer_unmap(buffer, &map) }
        let base = UInt64(UInt(bitPattern: map.data))
        let image = try ImageBuffer.fromPool(pool)
        var arguments = KernelArguments()
        arguments.append(DevicePointer(address: base + UInt64(lumaOffset)))
        arguments.append(DevicePointer(address: base + UInt64(chromaOffset)))
        arguments.append(pitch)
        arguments.append(sourceWidth)
        arguments.append(sourceHeight)
        try arguments.append(image: image, for: "NV12 conversion")
        try kernel.launch2D(width: image.width, height: image.height, stream: stream, arguments: arguments)
        try stream.synchronize()
        return image
    }
}
