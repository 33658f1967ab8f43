import Tributary

/// The edit of DeepStream's `deepstream-imagedata-multistream-cupy` sample: the red channel
/// becomes `0.5 × R + 0.5`, i.e. `(R + 1) >> 1` on 8-bit values; G, B and A are untouched.
public enum SampleEdit {
    /// The edit as a CuPy-style elementwise kernel, for device frames.
    public static let halveRedKernel = ElementwiseKernel(name: "halve_red", expression: "r = 0.5f * r + 0.5f")

    /// The edit wherever the pixels are: a CPU loop for host frames, `halveRedKernel` on the
    /// null stream (synchronised, as the sample) for device frames.
    public static func halveRed(inPlace pixels: inout FramePixels) throws {
        if case .cuda = pixels.location { try halveRedKernel(&pixels) } else { halveRed(&pixels) }
    }

    /// The edit on every frame of a batch: device frames' kernels all go to the null stream and
    /// are waited for once, at the end (one synchronisation a batch rather than a frame: with
    /// NVDEC busy on the same GPU, each wait on the null stream also waits for decoder work).
    public static func halveRed(_ batch: inout ProbeBatch) throws {
        var devices = Set<Int>()
        for index in 0..<batch.frameCount {
            try batch.withPixels(ofFrame: index) { pixels in
                if case .cuda(let deviceID) = pixels.location {
                    try halveRedKernel(&pixels, synchronize: false)
                    devices.insert(deviceID)
                } else {
                    halveRed(&pixels)
                }
            }
        }
        for deviceID in devices.sorted() {
            try CUDAStream.null(CUDADevice.open(deviceID)).synchronize()
        }
    }

    /// The edit on host pixels.
    public static func halveRed(_ pixels: inout FramePixels) {
        let width = pixels.width, height = pixels.height
        pixels.withUnsafeMutableHostPixels { base, bytesPerRow in
            for y in 0..<height {
                // One 32-bit word per pixel, R in the low byte (memory order R, G, B, A): the loop
                // vectorises.
                let row = (base + y * bytesPerRow).assumingMemoryBound(to: UInt32.self)
                for x in 0..<width {
                    let word = row[x]
                    row[x] = (word & 0xFFFF_FF00) | (((word & 0xFF) &+ 1) >> 1)
                }
            }
        }
    }
}
