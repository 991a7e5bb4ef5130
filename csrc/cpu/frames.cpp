// Frame conversions of core/frames.py, each fused into one pass per pixel: Lab -> RGB uint8 output
// frames (with the chroma upsampled on the fly when it comes at the model's resolution) and
// RGB uint8 -> L. In torch the same work is ~15 tensor passes over the frame; here it is read the
// inputs once and write the output once.
#include "frames.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "parallel.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

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

namespace {
// The two passes of the chroma upsampling over one row, plain loops that the compiler
// vectorises; built twice (baseline and AVX2, chosen with the converter). No FMA in either.
inline void across_row(const float* src, const Taps& cols, int64_t W, float* dst) {
    for (int64_t x = 0; x < W; ++x) {
        const float wx1 = cols.w1[x], wx0 = 1.0f - wx1;
        dst[x] = wx0 * src[cols.i0[x]] + wx1 * src[cols.i1[x]];
    }
}
inline void down_row(const float* upper, const float* lower, float wy0, float wy1, int64_t W,
                     float* dst) {
    for (int64_t x = 0; x < W; ++x) dst[x] = wy0 * upper[x] + wy1 * lower[x];
}
#if defined(__GNUC__) && defined(__x86_64__)
__attribute__((target("avx2"))) void across_row_avx2(const float* src, const Taps& cols,
                                                     int64_t W, float* dst) {
    across_row(src, cols, W, dst);
}
__attribute__((target("avx2"))) void down_row_avx2(const float* upper, const float* lower,
                                                   float wy0, float wy1, int64_t W,
                                                   float* dst) {
    down_row(upper, lower, wy0, wy1, W, dst);
}
#endif

// One row (or any run) of pixels, scalar.
void convert_run_scalar(const float* L, const float* a, const float* b, int64_t n,
                        const float* m, const uint8_t* lut, uint8_t* out) {
    for (int64_t i = 0; i < n; ++i) lab_pixel(L[i], a[i], b[i], m, lut, out + 3 * i);
}

#if defined(__GNUC__) && defined(__x86_64__)
#define COLORVID_FRAMES_AVX2 1
// The same maths 8 pixels at a time. AVX2 without FMA, each operation in the scalar order (the
// divisions too), so every pixel is bit-identical to lab_pixel (tests/core/test_frames.py
// compares the two builds): a fused multiply-add would round differently and move a value
// across a companding step now and then. `lut` is padded by 3 bytes: the byte look-up is a
// 32-bit gather. Measured, one thread, idle machine, 8 x 720p frames from 256 x 455 chroma:
// 17.3 ms a frame with the scalar build, 3.7 ms with this one (and the two resampling passes
// in their AVX2 builds); same-size planes 18.8 -> 3.2 ms.
// Helpers of convert_run_avx2 (a lambda would not inherit the target attribute).
__attribute__((target("avx2"))) inline __m256 f_inverse_avx2(__m256 f) {
    const __m256 cube = _mm256_mul_ps(_mm256_mul_ps(f, f), f);
    const __m256 lin = _mm256_div_ps(_mm256_sub_ps(f, _mm256_set1_ps(16.0f / 116.0f)),
                                     _mm256_set1_ps(7.787f));
    return _mm256_blendv_ps(lin, cube, _mm256_cmp_ps(f, _mm256_set1_ps(0.2068966f), _CMP_GT_OQ));
}

// One output channel: the matrix row, clamped, looked up; 0..255 in each 32-bit lane.
__attribute__((target("avx2"))) inline __m256i channel_avx2(const __m256* row, __m256 x,
                                                            __m256 y, __m256 z,
                                                            const uint8_t* lut) {
    __m256 v = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(row[0], x), _mm256_mul_ps(row[1], y)),
                             _mm256_mul_ps(row[2], z));
    // linear > 0 ? min(linear, 1) : 0, NaN to 0 as the scalar code
    const __m256 positive = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ);
    v = _mm256_and_ps(_mm256_min_ps(v, _mm256_set1_ps(1.0f)), positive);
    const __m256i idx = _mm256_cvttps_epi32(
        _mm256_add_ps(_mm256_mul_ps(v, _mm256_set1_ps(65535.0f)), _mm256_set1_ps(0.5f)));
    return _mm256_and_si256(_mm256_i32gather_epi32(reinterpret_cast<const int*>(lut), idx, 1),
                            _mm256_set1_epi32(0xFF));
}

__attribute__((target("avx2"))) void convert_run_avx2(const float* L, const float* a,
                                                      const float* b, int64_t n,
                                                      const float* m, const uint8_t* lut,
                                                      uint8_t* out) {
    const __m256 zero = _mm256_setzero_ps();
    const __m256 c16 = _mm256_set1_ps(16.0f), c116 = _mm256_set1_ps(116.0f);
    const __m256 c500 = _mm256_set1_ps(500.0f), c200 = _mm256_set1_ps(200.0f);
    __m256 mm[9];
    for (int k = 0; k < 9; ++k) mm[k] = _mm256_set1_ps(m[k]);
    // r | g << 8 | b << 16 per pixel -> the 3 bytes of each, 4 pixels (12 bytes) per 128 bits
    const __m256i pack = _mm256_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1,
                                          0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
    int64_t i = 0;
    // Each block stores 28 bytes for its 24: stop while the 4 extra land on this run's own
    // later pixels (another thread may own what follows the run).
    for (; i + 10 <= n; i += 8) {
        const __m256 fy = _mm256_div_ps(_mm256_add_ps(_mm256_loadu_ps(L + i), c16), c116);
        const __m256 fx = _mm256_add_ps(fy, _mm256_div_ps(_mm256_loadu_ps(a + i), c500));
        const __m256 fz = _mm256_max_ps(
            zero, _mm256_sub_ps(fy, _mm256_div_ps(_mm256_loadu_ps(b + i), c200)));
        const __m256 x = f_inverse_avx2(fx), y = f_inverse_avx2(fy), z = f_inverse_avx2(fz);
        const __m256i rgb = _mm256_or_si256(
            _mm256_or_si256(channel_avx2(mm, x, y, z, lut),
                            _mm256_slli_epi32(channel_avx2(mm + 3, x, y, z, lut), 8)),
            _mm256_slli_epi32(channel_avx2(mm + 6, x, y, z, lut), 16));
        const __m256i packed = _mm256_shuffle_epi8(rgb, pack);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 3 * i), _mm256_castsi256_si128(packed));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 3 * i + 12),
                         _mm256_extracti128_si256(packed, 1));
    }
    convert_run_scalar(L + i, a + i, b + i, n - i, m, lut, out + 3 * i);
}

bool frames_use_avx2() {
    static const bool avx2 = __builtin_cpu_supports("avx2");
    return avx2;
}
#endif

using RunFn = void (*)(const float*, const float*, const float*, int64_t, const float*,
                       const uint8_t*, uint8_t*);

// The run converter for this CPU and the table it reads (the AVX2 one wants 3 bytes of slack).
struct Converter {
    RunFn run = &convert_run_scalar;
    void (*across)(const float*, const Taps&, int64_t, float*) = &across_row;
    void (*down)(const float*, const float*, float, float, int64_t, float*) = &down_row;
    std::vector<uint8_t> padded;
    const uint8_t* table;
    Converter(const uint8_t* lut, bool simd) : table(lut) {
#ifdef COLORVID_FRAMES_AVX2
        if (simd && frames_use_avx2()) {
            padded.assign(lut, lut + 65536);
            padded.resize(65536 + 4, lut[65535]);
            table = padded.data();
            run = &convert_run_avx2;
            across = &across_row_avx2;
            down = &down_row_avx2;
        }
#else
        (void)simd;
#endif
    }
};
}  // namespace

void lab_to_rgb8_impl(const float* L, const float* a, const float* b, int64_t n, const float* m,
                      const uint8_t* lut, uint8_t* out, int num_threads, bool simd) {
    const Converter conv(lut, simd);
    parallel_for(n, 16384, [&](int64_t begin, int64_t end) {
        conv.run(L + begin, a + begin, b + begin, end - begin, m, conv.table, out + 3 * begin);
    }, num_threads);
}

void lab_to_rgb8_upsample_impl(const float* L, int64_t H, int64_t W, const float* a,
                               const float* b, int64_t h, int64_t w, const float* m,
                               const uint8_t* lut, uint8_t* out, int num_threads, bool simd) {
    if (h == H && w == W) return lab_to_rgb8_impl(L, a, b, H * W, m, lut, out, num_threads, simd);
    const Taps rows(h, H), cols(w, W);
    const Converter conv(lut, simd);
    // Rows are the unit of work: 16 rows of 1280 px are ~20k pixels, the size below which
    // parallel_for keeps one thread (see parallel.h).
    parallel_for(H, std::max<int64_t>(1, 16384 / std::max<int64_t>(W, 1)),
                 [&](int64_t begin, int64_t end) {
        // ATen's order: each source row interpolated across (wx0 * left + wx1 * right), then
        // the two rows down (wy0 * upper + wy1 * lower). A source row's horizontal pass is kept
        // while consecutive output rows read it (about H / h of them when upsampling).
        std::vector<float> across(4 * W), full(2 * W);
        int64_t held[2] = {-1, -1};  // the source row in across[0..1], [2..3] (a and b each)
        auto horizontal = [&](int64_t r) -> const float* {
            for (int slot = 0; slot < 2; ++slot)
                if (held[slot] == r) return across.data() + slot * 2 * W;
            const int slot = held[0] == -1 || (held[1] != -1 && held[0] < held[1]) ? 0 : 1;
            float* ha = across.data() + slot * 2 * W;
            float* hb = ha + W;
            conv.across(a + r * w, cols, W, ha);
            conv.across(b + r * w, cols, W, hb);
            held[slot] = r;
            return ha;
        };
        for (int64_t y = begin; y < end; ++y) {
            const float wy1 = rows.w1[y], wy0 = 1.0f - wy1;
            const float* upper = horizontal(rows.i0[y]);
            const float* lower = horizontal(rows.i1[y]);
            float* fa = full.data();
            float* fb = fa + W;
            conv.down(upper, lower, wy0, wy1, W, fa);
            conv.down(upper + W, lower + W, wy0, wy1, W, fb);
            conv.run(L + y * W, fa, fb, W, m, conv.table, out + y * W * 3);
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
