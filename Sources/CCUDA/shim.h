// Thin shim over the CUDA driver API for Swift: the function table comes from Debian's
// libffmpeg-nvenc-dev loader (dlopen of libcuda.so.1 at run time, so nothing links CUDA); the
// few entry points that table lacks are looked up here. No logic lives here.
#ifndef TRIBUTARY_CCUDA_SHIM_H
#define TRIBUTARY_CCUDA_SHIM_H

// The loader prints to stderr on a machine without CUDA; we report that ourselves.
#define FFNV_LOG_FUNC(logctx, msg, ...)
#define FFNV_DEBUG_LOG_FUNC(logctx, msg, ...)
#include <ffnvcodec/dynlink_loader.h>
#include <dlfcn.h>
#include <stddef.h>

/// Entry points the ffnvcodec table does not carry.
typedef struct TBCudaExtra {
    CUresult (*ctxSetCurrent)(CUcontext);
    CUresult (*ctxSynchronize)(void);
    CUresult (*memGetInfo)(size_t *, size_t *);
    CUresult (*pointerGetAttribute)(void *, int, CUdeviceptr);
    CUresult (*memsetD32Async)(CUdeviceptr, unsigned int, size_t, CUstream);
    CUresult (*memsetD2D32Async)(CUdeviceptr, size_t, unsigned int, size_t, size_t, CUstream);
    CUresult (*driverGetVersion)(int *);
} TBCudaExtra;

/// Loads libcuda.so.1's table; NULL when there is no driver.
static inline CudaFunctions *tb_cuda_load(void) {
    CudaFunctions *functions = NULL;
    if (cuda_load_functions(&functions, NULL) < 0) return NULL;
    return functions;
}

/// The extra entry points (0 when all were found).
static inline int tb_cuda_load_extra(TBCudaExtra *extra) {
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return -1;
    extra->ctxSetCurrent = (CUresult (*)(CUcontext))dlsym(lib, "cuCtxSetCurrent");
    extra->ctxSynchronize = (CUresult (*)(void))dlsym(lib, "cuCtxSynchronize");
    extra->memGetInfo = (CUresult (*)(size_t *, size_t *))dlsym(lib, "cuMemGetInfo_v2");
    extra->pointerGetAttribute = (CUresult (*)(void *, int, CUdeviceptr))dlsym(lib, "cuPointerGetAttribute");
    extra->memsetD32Async = (CUresult (*)(CUdeviceptr, unsigned int, size_t, CUstream))dlsym(lib, "cuMemsetD32Async");
    extra->memsetD2D32Async = (CUresult (*)(CUdeviceptr, size_t, unsigned int, size_t, size_t, CUstream))dlsym(lib, "cuMemsetD2D32Async");
    extra->driverGetVersion = (CUresult (*)(int *))dlsym(lib, "cuDriverGetVersion");
    if (!extra->ctxSetCurrent || !extra->ctxSynchronize || !extra->memGetInfo || !extra->pointerGetAttribute
        || !extra->memsetD32Async || !extra->memsetD2D32Async || !extra->driverGetVersion) return -2;
    return 0;
}

/// cuLaunchKernel with the kernel's parameters as an array of pointers.
static inline CUresult tb_cuda_launch(CudaFunctions *f, CUfunction function, unsigned gx, unsigned gy, unsigned gz,
                                      unsigned bx, unsigned by, unsigned bz, unsigned sharedBytes, CUstream stream,
                                      void **parameters) {
    return f->cuLaunchKernel(function, gx, gy, gz, bx, by, bz, sharedBytes, stream, parameters, NULL);
}

/// A 2-D copy between host and device memory (either direction) or device and device.
static inline CUresult tb_cuda_copy_2d(CudaFunctions *f, int toHost, int fromHost, CUdeviceptr deviceSource,
                                       const void *hostSource, size_t sourcePitch, CUdeviceptr deviceTarget,
                                       void *hostTarget, size_t targetPitch, size_t widthBytes, size_t height,
                                       CUstream stream) {
    CUDA_MEMCPY2D copy = {0};
    if (fromHost) { copy.srcMemoryType = CU_MEMORYTYPE_HOST; copy.srcHost = hostSource; }
    else { copy.srcMemoryType = CU_MEMORYTYPE_DEVICE; copy.srcDevice = deviceSource; }
    copy.srcPitch = sourcePitch;
    if (toHost) { copy.dstMemoryType = CU_MEMORYTYPE_HOST; copy.dstHost = hostTarget; }
    else { copy.dstMemoryType = CU_MEMORYTYPE_DEVICE; copy.dstDevice = deviceTarget; }
    copy.dstPitch = targetPitch;
    copy.WidthInBytes = widthBytes;
    copy.Height = height;
    return f->cuMemcpy2DAsync(&copy, stream);
}

#endif
