/// The GPU path's tiler: each device frame scaled (nearest, as the CPU `Tiler`) into its tile of a
/// device output frame by one kernel launch per frame; uncovered tiles and margins are filled
/// black. Every output pixel is written once.
package final class DeviceTiler: @unchecked Sendable {
    /// The grid; it follows the sources present (`follow(sourceIDs:)`), at the same output size.
    package private(set) var layout: TileLayout
    package let device: CUDADevice
    package let stream: CUDAStream
    private let kernel: CUDAFunction
    /// The tiled frame (pitched RGBA, the tiler's size), reused for every batch: the output stage
    /// handles one batch at a time.
    package let output: DeviceMemory

    package init(device: CUDADevice, layout: TileLayout) throws {
        self.device = device
        self.layout = layout
        stream = try device.makeStream()
        kernel = try device.function(named: "tile_frame", source: CUDAKernels.tile)
        output = try device.allocatePitched(widthBytes: layout.width * 4, height: layout.height)
    }

    /// Lays the grid out for these sources; the output frame keeps its size.
    package func follow(sourceIDs: [Int]) {
        layout = layout.following(sourceIDs: sourceIDs)
    }

    /// Composites `batch` into `output` (queued on `stream`; not waited for).
    package func composite(_ batch: FrameBatch) throws {
        try composite(batch, into: output.address, pitch: output.pitch)
    }

    /// Composites `batch` into the pitched RGBA frame of the tiler's size at `target` (a sink's
    /// CUDA buffer, say), queued on `stream`.
    package func composite(_ batch: FrameBatch, into target: DevicePointer, pitch: Int) throws {
        for frame in batch.frames {
            let tile = layout.tile(of: frame.sourceID)
            var arguments = KernelArguments()
            try arguments.append(image: frame.image, for: "GPU tiler")
            arguments.append(target)
            arguments.append(pitch)
            arguments.append(tile.x)
            arguments.append(tile.y)
            arguments.append(tile.width)
            arguments.append(tile.height)
            try kernel.launch2D(width: tile.width, height: tile.height, stream: stream, arguments: arguments)
        }
        for region in layout.uncoveredRegions(sourcesPresent: batch.frames.map(\.sourceID)) {
            try device.fill(DevicePointer(address: target.address + UInt64(region.y * pitch + region.x * 4)),
                            pitch: pitch, width: region.width, height: region.height, colour: .black, stream: stream)
        }
    }

    /// Waits for the tiled frame and copies it into host memory (the sinks' buffer).
    package func download(into target: MutableImageView) throws {
        try download(from: output.address, pitch: output.pitch, into: target)
    }

    /// Waits for a tiled frame composited at `source` (pitched RGBA, the tiler's size) and copies
    /// it into host memory.
    package func download(from source: DevicePointer, pitch: Int, into target: MutableImageView) throws {
        try device.copy2D(from: .device(source), sourcePitch: pitch, to: .host(target.base),
                          targetPitch: target.bytesPerRow, widthBytes: layout.width * 4, height: layout.height, stream: stream)
    }
}
