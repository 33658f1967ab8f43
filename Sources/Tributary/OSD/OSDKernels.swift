/// The GPU OSD's kernels (`DeviceOSD`). Both take a list built on the host (`OSDDrawList`) whose
/// items own disjoint pixels, so every pixel is written by one item only. grid.y walks the items
/// and grid.x's threads stride over an item's pixels (one thread per pixel, a loop past the
/// grid), so one launch draws the whole batch.
extension CUDAKernels {
    /// Paints opaque rectangles: `rects` holds 5 ints per rect (x0, y0, x1, y1 half-open, colour
    /// as R | G << 8 | B << 16). Pixels become (R, G, B, 255), what the CPU OSD leaves there.
    public static let osdFillRects = """
        extern "C" __global__ void osd_fill_rects(const int* rects, int rectCount, unsigned char* image, int pitch,
                                                  int width, int height) {
            for (int r = blockIdx.y; r < rectCount; r += gridDim.y) {
                const int* rect = rects + 5 * r;
                int x0 = max(rect[0], 0), y0 = max(rect[1], 0), x1 = min(rect[2], width), y1 = min(rect[3], height);
                int w = x1 - x0, h = y1 - y0;
                if (w <= 0 || h <= 0) continue;
                unsigned int colour = (unsigned int)rect[4];
                unsigned char cr = colour & 255, cg = (colour >> 8) & 255, cb = (colour >> 16) & 255;
                for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < w * h; i += gridDim.x * blockDim.x) {
                    unsigned char* p = image + (size_t)(y0 + i / w) * pitch + 4 * (x0 + i % w);
                    p[0] = cr; p[1] = cg; p[2] = cb; p[3] = 255;
                }
            }
        }
        """

    /// Blends label text through the glyph atlas (8-bit coverage, `atlasPitch` bytes a row).
    /// `runs` holds 7 ints per run (first glyph, glyph count, clip x0, y0, x1, y1, colour);
    /// `glyphs` 6 per glyph (image x, y, atlas x, y, width, height). A pixel's coverage is the
    /// saturated sum over its run's glyphs and is blended once with pixman's 8-bit arithmetic
    /// (`mul` rounds x·y/255 like pixman's MUL_UN8), which is how Cairo composites text.
    public static let osdDrawGlyphs = """
        __device__ __forceinline__ unsigned int osd_mul_un8(unsigned int a, unsigned int b) {
            unsigned int t = a * b + 0x80;
            return ((t >> 8) + t) >> 8;
        }

        extern "C" __global__ void osd_draw_glyphs(const int* runs, int runCount, const int* glyphs,
                                                   const unsigned char* atlas, int atlasPitch, unsigned char* image,
                                                   int pitch, int width, int height) {
            for (int r = blockIdx.y; r < runCount; r += gridDim.y) {
                const int* run = runs + 7 * r;
                int x0 = max(run[2], 0), y0 = max(run[3], 0), x1 = min(run[4], width), y1 = min(run[5], height);
                int w = x1 - x0, h = y1 - y0;
                if (w <= 0 || h <= 0) continue;
                const int* first = glyphs + 6 * run[0];
                int glyphCount = run[1];
                unsigned int colour = (unsigned int)run[6];
                for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < w * h; i += gridDim.x * blockDim.x) {
                    int x = x0 + i % w, y = y0 + i / w;
                    unsigned int coverage = 0;
                    for (int g = 0; g < glyphCount; ++g) {
                        const int* glyph = first + 6 * g;
                        int gx = x - glyph[0], gy = y - glyph[1];
                        if (gx >= 0 && gy >= 0 && gx < glyph[4] && gy < glyph[5])
                            coverage += atlas[(glyph[3] + gy) * atlasPitch + glyph[2] + gx];
                    }
                    if (coverage == 0) continue;
                    coverage = min(coverage, 255u);
                    unsigned char* p = image + (size_t)y * pitch + 4 * x;
                    for (int c = 0; c < 3; ++c) {
                        unsigned int text = (colour >> (8 * c)) & 255;
                        p[c] = (unsigned char)min(osd_mul_un8(text, coverage) + osd_mul_un8(p[c], 255 - coverage), 255u);
                    }
                }
            }
        }
        """
}
