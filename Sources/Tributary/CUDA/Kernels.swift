/// The GPU path's kernels as CUDA C, compiled by NVRTC at start-up (and in CI). Every kernel
/// takes pitched images and runs one thread per output pixel.
public enum CUDAKernels {
    /// NV12 (decoder output, pitched luma plane then interleaved UV plane) → RGBA, bilinear
    /// scaled into a pitched destination (the muxer's batch slot). BT.601 limited range.
    public static let nv12ToRGBA = """
        extern "C" __global__ void nv12_to_rgba(const unsigned char* luma, const unsigned char* chroma, int srcPitch,
                                                int srcWidth, int srcHeight, unsigned char* dst, int dstPitch,
                                                int dstWidth, int dstHeight) {
            int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
            if (x >= dstWidth || y >= dstHeight) return;
            float sx = fmaxf((x + 0.5f) * srcWidth / dstWidth - 0.5f, 0.f);
            float sy = fmaxf((y + 0.5f) * srcHeight / dstHeight - 0.5f, 0.f);
            int x0 = min((int)sx, srcWidth - 1), y0 = min((int)sy, srcHeight - 1);
            int x1 = min(x0 + 1, srcWidth - 1), y1 = min(y0 + 1, srcHeight - 1);
            float fx = sx - x0, fy = sy - y0;
            float Y = (1 - fy) * ((1 - fx) * luma[y0 * srcPitch + x0] + fx * luma[y0 * srcPitch + x1])
                    + fy * ((1 - fx) * luma[y1 * srcPitch + x0] + fx * luma[y1 * srcPitch + x1]);
            int cx = min(x0 / 2, srcWidth / 2 - 1), cy = min(y0 / 2, srcHeight / 2 - 1);
            float U = chroma[cy * srcPitch + 2 * cx] - 128.f, V = chroma[cy * srcPitch + 2 * cx + 1] - 128.f;
            float C = 1.164f * (Y - 16.f);
            unsigned char* p = dst + y * dstPitch + 4 * x;
            p[0] = (unsigned char)fminf(fmaxf(C + 1.596f * V, 0.f), 255.f);
            p[1] = (unsigned char)fminf(fmaxf(C - 0.392f * U - 0.813f * V, 0.f), 255.f);
            p[2] = (unsigned char)fminf(fmaxf(C + 2.017f * U, 0.f), 255.f);
            p[3] = 255;
        }
        """

    /// RGBA frame → the network's NCHW float input: bilinear (half-pixel centres), letterbox
    /// padding, `scale × (x − offset)`, channel order (the CPU `Preprocessor`'s arithmetic).
    public static let preprocess = """
        extern "C" __global__ void letterbox_preprocess(const unsigned char* src, int srcPitch, int srcWidth, int srcHeight,
                                                        float* dst, int netWidth, int netHeight, int scaledWidth,
                                                        int scaledHeight, int padX, int padY, float scale, float o0,
                                                        float o1, float o2, int bgr) {
            int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
            if (x >= netWidth || y >= netHeight) return;
            int plane = netWidth * netHeight, i = y * netWidth + x;
            float v[3] = {0.f, 0.f, 0.f};
            int inside = x >= padX && x < padX + scaledWidth && y >= padY && y < padY + scaledHeight;
            if (inside) {
                float sx = fmaxf((x - padX + 0.5f) * ((float)srcWidth / scaledWidth) - 0.5f, 0.f);
                float sy = fmaxf((y - padY + 0.5f) * ((float)srcHeight / scaledHeight) - 0.5f, 0.f);
                int x0 = min((int)sx, srcWidth - 1), y0 = min((int)sy, srcHeight - 1);
                int x1 = min(x0 + 1, srcWidth - 1), y1 = min(y0 + 1, srcHeight - 1);
                float fx = sx - x0, fy = sy - y0;
                for (int c = 0; c < 3; ++c) {
                    float top = (1 - fx) * src[y0 * srcPitch + 4 * x0 + c] + fx * src[y0 * srcPitch + 4 * x1 + c];
                    float bottom = (1 - fx) * src[y1 * srcPitch + 4 * x0 + c] + fx * src[y1 * srcPitch + 4 * x1 + c];
                    v[c] = (1 - fy) * top + fy * bottom;
                }
            }
            float first = bgr ? v[2] : v[0], last = bgr ? v[0] : v[2];
            dst[i] = scale * (first - o0);
            dst[plane + i] = scale * (v[1] - o1);
            dst[2 * plane + i] = scale * (last - o2);
        }
        """

    /// One source frame scaled (nearest) into its tile of the output frame.
    public static let tile = """
        extern "C" __global__ void tile_frame(const unsigned char* src, int srcPitch, int srcWidth, int srcHeight,
                                              unsigned char* dst, int dstPitch, int tileX, int tileY, int tileWidth,
                                              int tileHeight) {
            int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
            if (x >= tileWidth || y >= tileHeight) return;
            int sx = min((2 * x + 1) * srcWidth / (2 * tileWidth), srcWidth - 1);
            int sy = min((2 * y + 1) * srcHeight / (2 * tileHeight), srcHeight - 1);
            *(unsigned int*)(dst + (tileY + y) * dstPitch + 4 * (tileX + x)) = *(const unsigned int*)(src + sy * srcPitch + 4 * sx);
        }
        """

    /// A CuPy-style elementwise kernel over RGBA pixels: `expression` is CUDA C statements that
    /// read and assign the floats `r`, `g`, `b`, `a` (0…255), e.g. the sample's
    /// `r = 0.5f * r + 0.5f`. Values are rounded down and clamped back to 8 bits, so that
    /// expression gives `(R + 1) >> 1` exactly.
    public static func elementwise(name: String, expression: String) -> String {
        """
        extern "C" __global__ void \(name)(unsigned char* pixels, int pitch, int width, int height) {
            int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
            if (x >= width || y >= height) return;
            unsigned char* p = pixels + y * pitch + 4 * x;
            float r = p[0], g = p[1], b = p[2], a = p[3];
            { \(expression); }
            p[0] = (unsigned char)fminf(fmaxf(r, 0.f), 255.f);
            p[1] = (unsigned char)fminf(fmaxf(g, 0.f), 255.f);
            p[2] = (unsigned char)fminf(fmaxf(b, 0.f), 255.f);
            p[3] = (unsigned char)fminf(fmaxf(a, 0.f), 255.f);
        }
        """
    }

    /// The GPU half of the `yolo` and `yolov8` parsers: one thread per box finds its best class
    /// (first maximum wins, as on the host), its confidence (objectness × score for yolo, the
    /// score for yolov8; one rounded multiplication, so the host's value exactly) and keeps it when
    /// it reaches its class's threshold: 8 words (frame, box, class, confidence, cx, cy, w, h) at
    /// a slot taken from `count`. `count` ends as the number kept even past `capacity`, so the
    /// caller can grow the buffer and run again. Element (frame, box, field) is at
    /// `frame × frameStride + box × boxStride + field × fieldStride`.
    public static let denseDetectionCandidates = """
        extern "C" __global__ void dense_detection_candidates(const float* __restrict__ out, int batch, int boxes, int classes,
                                                              int frameStride, int boxStride, int fieldStride,
                                                              int objectnessField, int firstScoreField,
                                                              const float* __restrict__ thresholds, float* candidates,
                                                              unsigned int* count, unsigned int capacity) {
            int box = blockIdx.x * blockDim.x + threadIdx.x, frame = blockIdx.y;
            if (box >= boxes || frame >= batch) return;
            const float* v = out + (size_t)frame * frameStride + (size_t)box * boxStride;
            float best = v[(size_t)firstScoreField * fieldStride];
            int bestClass = 0;
            for (int k = 1; k < classes; ++k) {
                float s = v[(size_t)(firstScoreField + k) * fieldStride];
                if (s > best) { best = s; bestClass = k; }
            }
            float confidence = objectnessField >= 0 ? __fmul_rn(v[(size_t)objectnessField * fieldStride], best) : best;
            if (!(confidence >= thresholds[bestClass])) return;
            unsigned int slot = atomicAdd(count, 1u);
            if (slot >= capacity) return;
            float* c = candidates + (size_t)slot * 8;
            c[0] = __int_as_float(frame);
            c[1] = __int_as_float(box);
            c[2] = __int_as_float(bestClass);
            c[3] = confidence;
            c[4] = v[0];
            c[5] = v[(size_t)fieldStride];
            c[6] = v[(size_t)2 * fieldStride];
            c[7] = v[(size_t)3 * fieldStride];
        }
        """

    /// Every kernel of the framework's GPU path, by name (CI compiles each one; user kernels such as
    /// the sample's edit are the caller's).
    public static var all: [(name: String, source: String)] {
        [("nv12_to_rgba", nv12ToRGBA), ("letterbox_preprocess", preprocess), ("tile_frame", tile),
         ("osd_fill_rects", osdFillRects), ("osd_draw_glyphs", osdDrawGlyphs),
         ("dense_detection_candidates", denseDetectionCandidates)]
    }
}
