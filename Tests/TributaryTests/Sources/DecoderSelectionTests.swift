import CGStreamer
import Testing
@testable import Tributary

/// The pieces that pick each GPU's own NVDEC decoder (and NVENC encoder) out of nvcodec's
/// per-GPU factories, on what this machine has.
struct DecoderSelectionTests {
    @Test func readsIntegerPropertiesOfAnyIntegerType() throws {
        GStreamer.initialize()
        let queue = try #require(gst_element_factory_make("queue", nil))
        gst_object_ref_sink(queue)
        defer { gst_object_unref(queue) }
        tb_object_set_uint(queue, "max-size-buffers", 7)        // guint
        tb_object_set_uint64(queue, "max-size-time", 5_000)     // guint64
        #expect(tb_object_get_integer(queue, "max-size-buffers") == 7)
        #expect(tb_object_get_integer(queue, "max-size-time") == 5_000)
        #expect(tb_object_get_integer(queue, "cuda-device-id") == -1, "no such property")
    }

    @Test func onlyNVIDIAFactoriesHaveADevice() {
        #expect(GStreamer.cudaDeviceID(ofFactory: "queue") == nil)
        #expect(GStreamer.cudaDeviceID(ofFactory: "no-such-element") == nil)
        // nvcodec registers its factories only where a GPU answers: none here, so none is found,
        // for any GPU, and the sinks fall back to x264.
        if !GStreamer.hasElement("nvh264enc") {
            #expect(GStreamer.nvidiaFactory("nvh264enc", device: 0) == nil)
            #expect(VideoSink.h264Encoder(bitrate: 4000, keyInterval: 30, lowLatency: false, gpu: 1).hasPrefix("x264enc"))
        }
        #expect(GStreamer.nvidiaFactory("queue", device: 0) == nil, "not a decoder or encoder name")
    }
}
