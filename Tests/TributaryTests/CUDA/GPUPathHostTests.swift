import Foundation
import Testing
@testable import Tributary
import TributarySample

/// What of the GPU path runs without a GPU: kernels compiled to machine code and cached, the
/// sharding of inputs over GPUs, and clear failures when CUDA is asked for and absent. The
/// kernels themselves run in `tributary-benchmark --gpu-check` on the GPU machine.
@Suite(.serialized) struct GPUPathHostTests {
    @Test func kernelsCompileToMachineCodeForHopperAndAreCachedOnDisk() throws {
        _ = try #require(KernelCompileTests.nvrtc, "NVRTC missing: run scripts/setup.sh")
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        setenv("TRIBUTARY_KERNEL_CACHE", folder.path + "/nested/kernels", 1)
        setenv("TRIBUTARY_NVRTC_LIBRARY", KernelCompileTests.nvrtcPath, 1)
        defer { unsetenv("TRIBUTARY_KERNEL_CACHE") }
        let first = try KernelCache.cubin(source: CUDAKernels.nv12ToRGBA, name: "nv12_to_rgba", architecture: "sm_90")
        // An ELF file for the GPU.
        #expect(Array(first.prefix(4)) == [0x7F, 0x45, 0x4C, 0x46])
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path + "/nested/kernels")
        #expect(files.count == 1 && files[0].hasPrefix("nv12_to_rgba-sm_90-") && files[0].hasSuffix(".cubin"))
        // The second call reads the file: planting other bytes there shows it was read, not compiled.
        let path = folder.path + "/nested/kernels/" + files[0]
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path))
        #expect(try KernelCache.cubin(source: CUDAKernels.nv12ToRGBA, name: "nv12_to_rgba", architecture: "sm_90") == [1, 2, 3])
        // Another source is another file.
        _ = try KernelCache.cubin(source: CUDAKernels.tile, name: "tile_frame", architecture: "sm_90")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path + "/nested/kernels").count == 2)
    }

    @Test func theCacheKeyIsStableAcrossProcesses() {
        // FNV-1a of "a": a published test vector, so the key does not depend on a per-process seed.
        #expect(KernelCache.fnv1a("a") == 0xaf63_dc4c_8601_ec8c)
    }

    @Test(arguments: [(1, 1), (4, 2), (5, 2), (8, 3), (2, 4)])
    func sourcesSpreadEvenlyOverGPUs(sources: Int, gpus: Int) {
        let plan = ShardPlan(sourceCount: sources, devices: (0..<gpus).map { .cuda(gpuID: $0) })
        let sizes = plan.shards.map(\.sources.count)
        #expect(plan.shards.count == min(sources, gpus))
        #expect(sizes.reduce(0, +) == sources)
        #expect((sizes.max() ?? 0) - (sizes.min() ?? 0) <= 1)
        // Every input exactly once, in order.
        #expect(plan.shards.flatMap(\.sources) == Array(0..<sources))
        #expect(plan.shards.map(\.device) == (0..<min(sources, gpus)).map { .cuda(gpuID: $0) })
    }

    @Test func eachShardWritesItsOwnFile() {
        let plan = ShardPlan(sourceCount: 4, devices: [.cuda(gpuID: 0), .cuda(gpuID: 1)])
        #expect(plan.outputPath("out/run.mp4", shard: plan.shards[1]) == "out/run-gpu1.mp4")
        #expect(plan.outputPath("run", shard: plan.shards[0]) == "run-gpu0")
        let single = ShardPlan(sourceCount: 4, devices: [.cuda(gpuID: 3)])
        #expect(single.outputPath("run.mp4", shard: single.shards[0]) == "run.mp4")
        // Host shards are named by their place in the plan.
        let host = ShardPlan(sourceCount: 3, devices: [.cpu, .cpu])
        #expect(host.shards.map(\.sources) == [[0, 1], [2]])
        #expect(host.outputPath("run.mp4", shard: host.shards[1]) == "run-cpu1.mp4")
        #expect(host.shards.map(\.label) == ["CPU 0", "CPU 1"])
    }

    @Test func devicesAreReadAsTheirListNamesThem() {
        #expect(["cpu", "cuda", "cuda:2"].map { ComputeDevice(parsing: $0) } == [.cpu, .cuda(gpuID: 0), .cuda(gpuID: 2)])
        for bad in ["gpu", "cuda:", "cuda:-1", "cuda:x", "CPU", ""] { #expect(ComputeDevice(parsing: bad) == nil, "\(bad)") }
    }

    @Test func withoutADriverThereAreNoGPUsAndOpeningOneSaysWhy() {
        guard CUDADevice.count() == 0 else { return }  // a GPU machine: nothing to check here
        #expect(throws: CUDAError.self) { _ = try CUDADevice.open(0) }
        // nvcodec registers no decoder without NVDEC, so --device auto stays on the CPU path.
        #expect(!VideoSource.hardwareDecoderAvailable)
    }

    @Test func aDeviceKernelOnHostPixelsIsAnErrorNotACrash() {
        let image = ImageBuffer.allocateHost(width: 4, height: 2)
        image.withPixels { #expect($0.cudaStream == nil && $0.location == .host) }
        #expect(throws: CUDAError.self) {
            try image.withPixels { try SampleEdit.halveRedKernel(&$0) }
        }
    }

    /// The machine lacks what was asked for (as a missing encoder): a failure of the environment,
    /// exit 1, not a usage error.
    @Test func askingForCUDAWithoutAGPUExitsWithAnEnvironmentFailure() throws {
        guard CUDADevice.count() == 0 else { return }
        try TestMedia.requireMedia()
        for flags in [["--device", "cuda"], ["--devices", "cuda:0,cuda:1"]] {
            let result = try runProcess(TestMedia.appBinary, ["-i", TestMedia.h264, "--no-display"] + flags, timeout: 20)
            #expect(result.status == 1, "\(flags)")
            #expect(result.standardError.contains("\(flags.joined(separator: " ")): no NVIDIA GPU"), "\(flags): \(result.standardError)")
        }
    }
}

/// The README's GPU probe example: its kernel compiles for Hopper, and on host frames (this
/// machine) the call is an error the probe can handle, never a crash.
@Suite struct ReadmeGPUExampleTests {
    @Test func theReadmeKernelCompilesAndRefusesHostPixels() throws {
        let brighten = ElementwiseKernel(name: "brighten", expression: "r = r * 1.2f; g = g * 1.2f; b = b * 1.2f")
        if let nvrtc = KernelCompileTests.nvrtc {
            let ptx = try nvrtc.compile(brighten.source, name: "brighten.cu", architecture: "compute_90")
            #expect(ptx.contains(".entry brighten"))
        }
        let frame = ImageBuffer.allocateHost(width: 8, height: 2)
        var caught: Error?
        do { try frame.withPixels { try brighten(&$0) } } catch { caught = error }
        #expect("\(caught.map { "\($0)" } ?? "")".contains("host memory"))
    }
}
