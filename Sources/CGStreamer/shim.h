// Thin shim over GStreamer for Swift: only what Swift cannot call directly — variadic functions,
// function-like macros and GObject casts. No logic lives here.
#ifndef TRIBUTARY_CGSTREAMER_SHIM_H
#define TRIBUTARY_CGSTREAMER_SHIM_H

#include <gst/gst.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/video/video.h>
#include <gst/pbutils/pbutils.h>
#include <gst/rtsp-server/rtsp-server.h>
#include <dlfcn.h>
#include <stdio.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#ifdef __GLIBC__
#include <malloc.h>
#endif

// MARK: Typed setters for the variadic g_object_set.
static inline void tb_object_set_int(gpointer object, const char *name, gint value) { g_object_set(object, name, value, NULL); }
static inline void tb_object_set_uint(gpointer object, const char *name, guint value) { g_object_set(object, name, value, NULL); }
static inline void tb_object_set_int64(gpointer object, const char *name, gint64 value) { g_object_set(object, name, value, NULL); }
static inline void tb_object_set_uint64(gpointer object, const char *name, guint64 value) { g_object_set(object, name, value, NULL); }
static inline void tb_object_set_bool(gpointer object, const char *name, gboolean value) { g_object_set(object, name, value, NULL); }
static inline void tb_object_set_string(gpointer object, const char *name, const char *value) { g_object_set(object, name, value, NULL); }
static inline void tb_object_set_caps(gpointer object, const char *name, GstCaps *value) { g_object_set(object, name, value, NULL); }
static inline void tb_object_set_enum_string(gpointer object, const char *name, const char *value) { gst_util_set_object_arg(G_OBJECT(object), name, value); }

// MARK: Signals (g_signal_connect is a macro).
static inline gulong tb_signal_connect(gpointer instance, const char *signal, void *callback, gpointer data) {
    return g_signal_connect_data(instance, signal, G_CALLBACK(callback), data, NULL, (GConnectFlags)0);
}

// MARK: Names (gst_element_set_name is a macro).
static inline gboolean tb_set_name(gpointer object, const char *name) { return gst_object_set_name(GST_OBJECT(object), name); }

// MARK: Casts and type checks (macros).
static inline GstElement *tb_element(gpointer object) { return GST_ELEMENT(object); }
static inline GstBin *tb_bin(gpointer object) { return GST_BIN(object); }
static inline GstAppSink *tb_app_sink(gpointer object) { return GST_APP_SINK(object); }
static inline GstAppSrc *tb_app_src(gpointer object) { return GST_APP_SRC(object); }
static inline GstObject *tb_object(gpointer object) { return GST_OBJECT(object); }
static inline const char *tb_object_name(gpointer object) { return object ? GST_OBJECT_NAME(object) : "(null)"; }
static inline const char *tb_element_factory_name(GstElement *element) {
    GstElementFactory *f = gst_element_get_factory(element);
    return f ? GST_OBJECT_NAME(f) : "";
}
static inline gboolean tb_object_has_property(gpointer object, const char *name) {
    return g_object_class_find_property(G_OBJECT_GET_CLASS(object), name) != NULL;
}
/// An integer property of any integer type (int, uint, …) as gint64; -1 when there is none.
static inline gint64 tb_object_get_integer(gpointer object, const char *name) {
    GParamSpec *spec = g_object_class_find_property(G_OBJECT_GET_CLASS(object), name);
    if (!spec) return -1;
    GValue raw = G_VALUE_INIT, wide = G_VALUE_INIT;
    g_value_init(&raw, spec->value_type);
    g_value_init(&wide, G_TYPE_INT64);
    g_object_get_property(G_OBJECT(object), name, &raw);
    gint64 result = g_value_transform(&raw, &wide) ? g_value_get_int64(&wide) : -1;
    g_value_unset(&raw);
    g_value_unset(&wide);
    return result;
}

// MARK: Buffers, messages, events.
static inline GstClockTime tb_buffer_pts(GstBuffer *buffer) { return GST_BUFFER_PTS(buffer); }
static inline void tb_buffer_set_pts(GstBuffer *buffer, GstClockTime pts) { GST_BUFFER_PTS(buffer) = pts; }
static inline void tb_buffer_set_duration(GstBuffer *buffer, GstClockTime duration) { GST_BUFFER_DURATION(buffer) = duration; }
static inline GstClockTime tb_buffer_duration(GstBuffer *buffer) { return GST_BUFFER_DURATION(buffer); }
static inline GstClockTime tb_clock_time_none(void) { return GST_CLOCK_TIME_NONE; }
static inline GstMessageType tb_message_type(GstMessage *message) { return GST_MESSAGE_TYPE(message); }
static inline GstObject *tb_message_source(GstMessage *message) { return GST_MESSAGE_SRC(message); }
static inline GstMapFlags tb_map_read(void) { return GST_MAP_READ; }
static inline GstMapFlags tb_map_write(void) { return GST_MAP_WRITE; }
static inline GstMapFlags tb_map_readwrite(void) { return GST_MAP_READWRITE; }
static inline GstMessageType tb_message_types_of_interest(void) {
    return (GstMessageType)(GST_MESSAGE_ERROR | GST_MESSAGE_WARNING | GST_MESSAGE_EOS);
}

// MARK: C runtime (stdout is a global Swift 6 will not read).
/// Line-buffered standard output: each line goes out in one write.
static inline void tb_line_buffer_stdout(void) { setvbuf(stdout, NULL, _IOLBF, 0); }
/// glibc's M_MMAP_THRESHOLD, fixed at `bytes` (glibc no longer moves it itself): 1 when set, 0
/// where it cannot be (another C library).
static inline int tb_fix_mmap_threshold(int bytes) {
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD)
    return mallopt(M_MMAP_THRESHOLD, bytes);
#else
    (void)bytes;
    return 0;
#endif
}
/// No transparent huge pages for this process from now on (prctl is variadic): 0, or -1 where the
/// kernel refuses (not Linux: -1).
static inline int tb_disable_transparent_huge_pages(void) {
#if defined(__linux__) && defined(PR_SET_THP_DISABLE)
    return prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
#else
    return -1;
#endif
}

// MARK: Errors.
static inline const char *tb_error_message(GError *error) { return error ? error->message : "(no message)"; }


// MARK: CUDA memory (the GPU path). libgstcuda's headers need the CUDA toolkit's cuda.h, and the
// library is only on NVIDIA machines' plugin sets, so the two calls we need are looked up at run time.

/// The buffer's GstVideoMeta (gst_buffer_get_video_meta is a macro).
static inline GstVideoMeta *tb_buffer_video_meta(GstBuffer *buffer) { return gst_buffer_get_video_meta(buffer); }

/// GST_MAP_READ | GST_MAP_CUDA: mapping CUDA memory this way gives the device address.
static inline GstMapFlags tb_map_cuda_read(void) { return (GstMapFlags)(GST_MAP_READ | (GST_MAP_FLAG_LAST << 1)); }

/// GST_MAP_WRITE | GST_MAP_CUDA: a device address to write; unmapping marks the device copy as the
/// current one.
static inline GstMapFlags tb_map_cuda_write(void) { return (GstMapFlags)(GST_MAP_WRITE | (GST_MAP_FLAG_LAST << 1)); }

/// A GstCudaBufferPool allocating CUDA memory in the CUDA context that `context` (a
/// "gst.cuda.context") holds: frames handed to GStreamer elements that take CUDA memory (NVENC)
/// without a copy. NULL when libgstcuda is missing.
static inline GstBufferPool *tb_gst_cuda_buffer_pool_new(GstContext *context) {
    void *lib = dlopen("libgstcuda-1.0.so.0", RTLD_NOW | RTLD_GLOBAL);
    if (!lib) return NULL;
    GstBufferPool *(*make)(GstObject *) = (GstBufferPool *(*)(GstObject *))dlsym(lib, "gst_cuda_buffer_pool_new");
    if (!make) return NULL;
    // The GstCudaContext sits in the context's structure under its type name (1.22 has no getter).
    const GValue *value = gst_structure_get_value(gst_context_get_structure(context), "gst.cuda.context");
    if (!value || !G_VALUE_HOLDS_OBJECT(value) || !g_value_get_object(value)) return NULL;
    return make((GstObject *)g_value_get_object(value));
}

/// A "gst.cuda.context" GstContext wrapping an existing CUcontext (ours, the device's primary
/// context), so every decoder works in the context our kernels and ONNX Runtime use. NULL when
/// libgstcuda is missing or cannot load the driver.
static inline GstContext *tb_gst_cuda_context_wrap(void *cuContext, int device) {
    void *lib = dlopen("libgstcuda-1.0.so.0", RTLD_NOW | RTLD_GLOBAL);
    if (!lib) return NULL;
    gboolean (*load)(void) = (gboolean (*)(void))dlsym(lib, "gst_cuda_load_library");
    GstObject *(*wrap)(void *, int) = (GstObject *(*)(void *, int))dlsym(lib, "gst_cuda_context_new_wrapped");
    GstContext *(*make)(GstObject *) = (GstContext *(*)(GstObject *))dlsym(lib, "gst_context_new_cuda_context");
    if (!load || !wrap || !make || !load()) return NULL;
    GstObject *cudaContext = wrap(cuContext, device);
    if (!cudaContext) return NULL;
    GstContext *context = make(cudaContext);
    gst_object_unref(cudaContext);
    return context;
}

#endif
