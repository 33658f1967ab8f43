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

    /// The check that decides whether a sink may hand NVENC frames in CUDA memory.
    @Test func factoriesSayWhichCapsTheyTake() {
        #expect(GStreamer.factory("x264enc", accepts: "video/x-raw,format=I420"))
        #expect(!GStreamer.factory("x264enc", accepts: "video/x-raw(memory:CUDAMemory),format=RGBA"))
        #expect(!GStreamer.factory("x264enc", accepts: "video/x-raw,format=RGBA"))
        #expect(!GStreamer.factory("no-such-element", accepts: "video/x-raw"))
        if !GStreamer.hasElement("nvcudah264enc") {
            #expect(VideoSink.deviceEncoder(gpu: 0) == nil, "no NVENC here: frames go to the sink in host memory")
        }
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

    /// With as many streams as cores a source's libav decoder gets one thread (fewer frames in
    /// flight); the setting lands on the decoder decodebin adds, before it starts.
    @Test func softwareDecodersGetTheThreadLimit() throws {
        try TestMedia.requireMedia()
        #expect(VideoSource.softwareDecoderThreads(streams: processorCount()) == 1)
        #expect(VideoSource.softwareDecoderThreads(streams: 1) == (processorCount() <= 1 ? 1 : 0))
        let pipeline = try GStreamer.parseLaunch("uridecodebin name=d ! fakesink sync=false")
        defer { gst_element_set_state(pipeline, GST_STATE_NULL); gst_object_unref(pipeline) }
        let decoder = try #require(GStreamer.child(of: pipeline, named: "d"))
        tb_object_set_string(decoder, "uri", try SourceURI(TestMedia.h264).uri)
        gst_object_unref(decoder)
        VideoSource.limitSoftwareDecoderThreads(in: pipeline, to: 1)
        // Connected after the limit, so it runs after it: what the decoder was set to.
        let record: @convention(c) (gpointer?, gpointer?, gpointer?, gpointer?) -> Void = { _, _, element, _ in
            guard let element, String(cString: tb_element_factory_name(tb_element(element))).hasPrefix("avdec_") else { return }
            DecoderSelectionTests.seenThreads.withValue { $0.append(tb_object_get_integer(element, "max-threads")) }
        }
        _ = tb_signal_connect(pipeline, "deep-element-added", unsafeBitCast(record, to: UnsafeMutableRawPointer.self), nil)
        gst_element_set_state(pipeline, GST_STATE_PAUSED)
        _ = gst_element_get_state(pipeline, nil, nil, 10_000_000_000)  // prerolled: the decoder exists
        #expect(Self.seenThreads.withValue { $0 } == [1])
    }
    static let seenThreads = Locked<[Int]>([])
}
