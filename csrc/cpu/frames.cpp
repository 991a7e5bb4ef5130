// Frame conversions of core/frames.py, each fused into one pass per pixel: Lab -> RGB uint8 output
// frames (with the chroma upsampled on the fly when it comes at the model's resolution) and
// RGB uint8 -> L. In torch the same work is ~15 tensor passes over the frame; here it is read the
// inputs once and write the output once.
#include "frames.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "parallel.h"

namespace colorvid {

namespace {
inline float f_inverse(float f) {
    // CIE: t = f^3 above 6/29, else (f - 16/116) / 7.787 (the constants of colour.py).
    return f > 0.2068966f ? f * f * f : (f - 16.0f / 116.0f) / 7.787f;
}

inline uint8_t compand(const uint8_t* lut, float linear) {
    // NaN (a broken model's chroma) goes to 0 like negatives: a NaN index would read anywhere.
    linear = linear > 0.0f ? std::min(linear, 1.0f) : 0.0f;
    return lut[static_cast<int32_t>(linear * 65535.0f + 0.5f)];
}

inline void lab_pixel(float L, float a, float b, const float* m, const uint8_t* lut, uint8_t* o) {
    const float fy = (L + 16.0f) / 116.0f;
    const float fx = fy + a / 500.0f;
    const float fz = std::max(fy - b / 200.0f, 0.0f);
    const float x = f_inverse(fx), y = f_inverse(fy), z = f_inverse(fz);
    o[0] = compand(lut, m[0] * x + m[1] * y + m[2] * z);
    o[1] = compand(lut, m[3] * x + m[4] * y + m[5] * z);
    o[2] = compand(lut, m[6] * x + m[7] * y + m[8] * z);
}

// One axis of bilinear sampling, as ATen's upsample_bilinear2d (align_corners=False, no
// scale_factor): source = max((dst + 0.5) * in / out - 0.5, 0); i0 = floor, i1 = i0 + 1 unless
// at the edge; weight of i1 = source - i0. Float maths, as ATen's float kernel.
struct Taps {
    std::vector<int64_t> i0, i1;
    std::vector<float> w1;
    Taps(int64_t in, int64_t out) : i0(out), i1(out), w1(out) {
        const float scale = static_cast<float>(in) / static_cast<float>(out);
        for (int64_t d = 0; d < out; ++d) {
            float src = std::max(scale * (static_cast<float>(d) + 0.5f) - 0.5f, 0.0f);
            int64_t lo = std::min(static_cast<int64_t>(src), in - 1);
            i0[d] = lo;
            i1[d] = lo + (lo < in - 1 ? 1 : 0);
            w1[d] = src - static_cast<float>(lo);
        }
    }
};
}  // namespace

void lab_to_rgb8_impl(const float* L, const float* a, const float* b, int64_t n, const float* m,
                      const uint8_t* lut, uint8_t* out, int num_threads) {
    parallel_for(n, 16384, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) lab_pixel(L[i], a[i], b[i], m, lut, out + 3 * i);
    }, num_threads);
}

void lab_to_rgb8_upsample_impl(const float* L, int64_t H, int64_t W, const float* a,
                               const float* b, int64_t h, int64_t w, const float* m,
                               const uint8_t* lut, uint8_t* out, int num_threads) {
    if (h == H && w == W) return lab_to_rgb8_impl(L, a, b, H * W, m, lut, out, num_threads);
    const Taps rows(h, H), cols(w, W);
    // Rows are the unit of work: 16 rows of 1280 px are ~20k pixels, the size below which
    // parallel_for keeps one thread (see parallel.h).
    parallel_for(H, std::max<int64_t>(1, 16384 / std::max<int64_t>(W, 1)),
                 [&](int64_t begin, int64_t end) {
        for (int64_t y = begin; y < end; ++y) {
            const float wy1 = rows.w1[y], wy0 = 1.0f - wy1;
            const int64_t r0 = rows.i0[y] * w, r1 = rows.i1[y] * w;
            const float* l_row = L + y * W;
            uint8_t* o_row = out + y * W * 3;
            for (int64_t x = 0; x < W; ++x) {
                const float wx1 = cols.w1[x], wx0 = 1.0f - wx1;
                const int64_t c0 = cols.i0[x], c1 = cols.i1[x];
                const float av = wy0 * (wx0 * a[r0 + c0] + wx1 * a[r0 + c1]) +
                                 wy1 * (wx0 * a[r1 + c0] + wx1 * a[r1 + c1]);
                const float bv = wy0 * (wx0 * b[r0 + c0] + wx1 * b[r0 + c1]) +
                                 wy1 * (wx0 * b[r1 + c0] + wx1 * b[r1 + c1]);
                lab_pixel(l_row[x], av, bv, m, lut, o_row + 3 * x);
            }
        }
    }, num_threads);
}

void rgb8_to_l_impl(const uint8_t* rgb, int64_t n, int channels, const float* y_tables, float* L,
                    int num_threads) {
    // L depends on RGB only through Y = sum_c w_c * linear(c): three look-ups, then L(Y) read
    // from a table of 2^16 steps with linear interpolation. Error of that interpolation:
    // step^2 / 8 * max|L''| = (1/65536)^2 / 8 * 116 * 2/9 * 0.008856^(-5/3) < 2e-6 L units
    // Measured on 8 x 720p RGB frames, 2 busy cores: std::cbrt per pixel 22.6 ms/frame, this
    // table 3.8 ms/frame (torch's look-up path in core/frames.py: 95 ms/frame).
    // Grey input reads one table of the summed weights (R = G = B).
    constexpr int kSteps = 65536;
    static const std::vector<float> l_of_y = [] {
        std::vector<float> t(kSteps + 2);
        for (int i = 0; i <= kSteps + 1; ++i) {
            const double y = static_cast<double>(i) / kSteps;
            const double f = y > 0.008856 ? std::cbrt(y) : 7.787 * y + 16.0 / 116.0;
            t[i] = static_cast<float>(116.0 * f - 16.0);
        }
        return t;
    }();
    const float* lt = l_of_y.data();
    float grey[256];
    for (int v = 0; v < 256; ++v) grey[v] = y_tables[v] + y_tables[256 + v] + y_tables[512 + v];
    const float* t0 = y_tables;
    const float* t1 = y_tables + 256;
    const float* t2 = y_tables + 512;
    parallel_for(n, 16384, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
            const float y = channels == 3
                ? t0[rgb[3 * i]] + t1[rgb[3 * i + 1]] + t2[rgb[3 * i + 2]]
                : grey[rgb[i]];
            const float pos = std::min(std::max(y, 0.0f), 1.0f) * kSteps;
            const int32_t k = static_cast<int32_t>(pos);
            const float frac = pos - static_cast<float>(k);
            L[i] = lt[k] + frac * (lt[k + 1] - lt[k]);
        }
    }, num_threads);
}

}  // namespace colorvid
