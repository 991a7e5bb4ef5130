// Fused class-rebalanced cross-entropy on the CPU: mirrors kernels/rebalanced_ce.py.
//
// Per pixel with logits x (q channels), the k nearest bins j_i, weights z_i and v = w[j_0]:
//   L = v * (m + log sum_c exp(x_c - m) - sum_i z_i x_{j_i}),  m = max_c x_c
//   dL/dx_c = v * (softmax(x)_c - Z_c),  Z_c = sum_i z_i [j_i == c]
//
// Logits are (B, q, H, W): a pixel's channels are hw apart, so the kernel works on a tile of
// neighbouring pixels and walks the channels row by row, the inner loop running along contiguous
// pixels (vectorised). Per tile: (1) soft-encode each pixel, (2) max and finiteness, (3) exp and
// its sum, writing exp into the gradient, (4) loss, (5) scale the gradient and subtract Z at the
// k target bins. Passes 2-5 reread a tile that stays in L2, so memory sees the logits read once
// and the gradient written once.
#include "rebalanced_ce.h"

// GCC will not if-convert the float clamps in exp_approx (so will not vectorise the exp loop)
// while it must preserve floating-point traps, which nothing here uses; NaN still propagates.
// (-fopt-info-vec: the exp loop went from "not vectorized: control flow in loop" to 4/8-wide.)
// Clang if-converts them without this.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "parallel.h"
#include "soft_encode.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace colorvid {
namespace {

// Pixels per tile: 512 bytes of each channel row (128 float32, 64 float64). The logits tile
// (313 x 512 B = 160 KB) and its gradient tile stay in a 512 KB L2 between the passes. Measured,
// one thread, (8, 313, 56, 56), k = 5, best of 15 (ms fwd+grad): 32 px 50.4, 64 px 33.7,
// 128 px 27.9, 256 px 24.5, 512 px 28.8 (128 and 256 are within this shared machine's noise).
template <typename T>
constexpr int64_t tile_pixels() {
    return 512 / static_cast<int64_t>(sizeof(T));
}

// exp for float32 without a libm call, so the loop over pixels vectorises (4 or 8 wide).
// exp(x) = 2^n exp(r), n = round(x / ln 2), r = x - n ln 2 with ln 2 split in two (Cody-Waite),
// exp(r) by the degree-6 Cephes polynomial: relative error ~1.5e-7 (about 1 ulp).
// Inputs here are x - max <= 0; clamping at -87.3 keeps 2^n a normal float (exp = 1.2e-38
// instead of 0: invisible next to the sum, which is >= 1).
inline float exp_approx(float x) {
    x = x < -87.3f ? -87.3f : x;  // written as selects (not std::min) so they vectorise
    x = x > 88.0f ? 88.0f : x;
    const float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
    const float t = x * 1.44269504088896341f + kRound;
    const float n = t - kRound;
    const float r = x - n * 0.693359375f - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}
// float64 is the accuracy path (gradcheck): the exact libm exp.
inline double exp_approx(double x) { return std::exp(x); }

// Inlined into each entry point below, so each is compiled for its own instruction set.
#if defined(__GNUC__)
#define COLORVID_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define COLORVID_ALWAYS_INLINE inline
#endif

template <typename T, bool kGrad>
COLORVID_ALWAYS_INLINE void ce_tile(const T* x, const T* ab_a, const T* ab_b, int64_t np,
                                    int64_t q, int64_t hw, const CentrePlanes<T>& planes,
                                    const T* class_weights, int k, T two_sigma2, T scale, T* loss,
                                    T* g, std::vector<T>& scratch,
                                    std::vector<int64_t>& jscratch) {
    constexpr int64_t kTile = tile_pixels<T>();
    // scratch layout: m, s, fin, v (kTile each), z (kTile * k), d2 (q), best_d2 (k)
    T* m = scratch.data();
    T* s = m + kTile;
    T* fin = s + kTile;
    T* v = fin + kTile;
    T* z = v + kTile;
    T* d2 = z + kTile * k;
    T* best_d2 = d2 + q;
    int64_t* j = jscratch.data();  // kTile * k

    // (1) soft-encode each pixel of the tile.
    for (int64_t i = 0; i < np; ++i) {
        k_nearest(ab_a[i], ab_b[i], planes, k, d2, best_d2, j + i * k);
        soft_weights(best_d2, k, two_sigma2, z + i * k);
        v[i] = class_weights ? class_weights[j[i * k]] : T(1);
    }
    // (2) max over channels; fin accumulates x - x, which is 0 unless x is NaN or infinite.
    for (int64_t i = 0; i < np; ++i) {
        m[i] = -std::numeric_limits<T>::infinity();
        fin[i] = 0;
        s[i] = 0;
    }
    for (int64_t c = 0; c < q; ++c) {
        const T* row = x + c * hw;
        for (int64_t i = 0; i < np; ++i) {
            m[i] = row[i] > m[i] ? row[i] : m[i];
            fin[i] += row[i] - row[i];
        }
    }
    // (3) sum of exp(x - m); with a gradient, exp is kept in g and scaled in (5).
    for (int64_t c = 0; c < q; ++c) {
        const T* row = x + c * hw;
        T* grow = kGrad ? g + c * hw : nullptr;
        for (int64_t i = 0; i < np; ++i) {
            const T e = exp_approx(row[i] - m[i]);
            s[i] += e;
            if constexpr (kGrad) grow[i] = e;
        }
    }
    // (4) loss = v * (lse - sum_i z_i x_{j_i}); a non-finite logit makes it NaN through fin.
    for (int64_t i = 0; i < np; ++i) {
        T zx = 0;
        for (int t = 0; t < k; ++t) zx += z[i * k + t] * x[j[i * k + t] * hw + i];
        loss[i] = v[i] * (m[i] + std::log(s[i]) - zx) + fin[i];
    }
    if constexpr (kGrad) {
        // (5) g = scale * v * (e / s - Z): first the softmax part for every channel...
        for (int64_t i = 0; i < np; ++i) s[i] = scale * v[i] / s[i];
        for (int64_t c = 0; c < q; ++c) {
            T* grow = g + c * hw;
            for (int64_t i = 0; i < np; ++i) grow[i] *= s[i];
        }
        // ...then the target at its k bins (distinct bins, so no accumulation order issue).
        for (int64_t i = 0; i < np; ++i) {
            const T sv = scale * v[i];
            for (int t = 0; t < k; ++t) g[j[i * k + t] * hw + i] -= sv * z[i * k + t];
        }
    }
}

struct Problem {
    int64_t q, hw, tiles_per_image;
    int k;
};

// Tiles [begin, end) of the flattened (image, tile) range.
template <typename T, bool kGrad>
COLORVID_ALWAYS_INLINE void run_tiles(const T* logits, const T* ab, const Problem& pr,
                                      const CentrePlanes<T>& planes, const T* class_weights,
                                      T two_sigma2, T scale, T* loss, T* grad, int64_t begin,
                                      int64_t end) {
    constexpr int64_t kTile = tile_pixels<T>();
    const int64_t q = pr.q, hw = pr.hw;
    std::vector<T> scratch(4 * kTile + kTile * pr.k + q + pr.k);
    std::vector<int64_t> jscratch(kTile * pr.k);
    for (int64_t t = begin; t < end; ++t) {
        const int64_t bi = t / pr.tiles_per_image, p0 = (t % pr.tiles_per_image) * kTile;
        const int64_t np = std::min(kTile, hw - p0);
        const T* a = ab + bi * 2 * hw + p0;
        ce_tile<T, kGrad>(logits + bi * q * hw + p0, a, a + hw, np, q, hw, planes, class_weights,
                          pr.k, two_sigma2, scale, loss + bi * hw + p0,
                          kGrad ? grad + bi * q * hw + p0 : nullptr, scratch, jscratch);
    }
}

template <typename T, bool kGrad>
void run_tiles_baseline(const T* logits, const T* ab, const Problem& pr,
                        const CentrePlanes<T>& planes, const T* class_weights, T two_sigma2,
                        T scale, T* loss, T* grad, int64_t begin, int64_t end) {
    run_tiles<T, kGrad>(logits, ab, pr, planes, class_weights, two_sigma2, scale, loss, grad,
                        begin, end);
}

#if defined(__GNUC__) && defined(__x86_64__)
#define COLORVID_HAVE_AVX2 1
// The same code compiled for AVX2 (8 floats per instruction instead of SSE2's 4), chosen at run
// time. No FMA: a fused da*da + db*db would round differently from the torch reference and
// could reorder bins at equal distance. Measured, one thread, (8, 313, 56, 56), k = 5, real
// ab, best of 15: fwd+grad 58.1 ms (SSE2) -> 31.2 ms (AVX2).
template <typename T, bool kGrad>
__attribute__((target("avx2"))) void run_tiles_avx2(const T* logits, const T* ab,
                                                    const Problem& pr,
                                                    const CentrePlanes<T>& planes,
                                                    const T* class_weights, T two_sigma2, T scale,
                                                    T* loss, T* grad, int64_t begin, int64_t end) {
    run_tiles<T, kGrad>(logits, ab, pr, planes, class_weights, two_sigma2, scale, loss, grad,
                        begin, end);
}
#endif

// Asks Linux for 2 MB pages on the (fresh, untouched) gradient buffer: torch's CPU allocator
// hands out new mappings, and faulting them in 4 KB at a time dominated large calls. Measured,
// fwd+grad at (32, 313, 64, 64) into a fresh buffer: 145 ms with 4 KB pages, 70 ms with this
// (44 ms into a reused buffer). Only the 2 MB-aligned interior is advised; THP off: no effect.
void advise_huge_pages(void* data, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    constexpr uintptr_t kHuge = uintptr_t(1) << 21;
    const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + kHuge - 1) & ~(kHuge - 1);
    const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) & ~(kHuge - 1);
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
    (void)data;
    (void)bytes;
#endif
}

}  // namespace

bool rebalanced_ce_uses_avx2() {
#ifdef COLORVID_HAVE_AVX2
    static const bool avx2 = __builtin_cpu_supports("avx2");
    return avx2;
#else
    return false;
#endif
}

template <typename T>
void rebalanced_ce_impl(const T* logits, const T* ab, int64_t batch, int64_t q, int64_t hw,
                        const T* centres, const T* class_weights, int k, T sigma, T scale, T* loss,
                        T* grad, int num_threads, bool allow_avx2) {
    const CentrePlanes<T> planes(centres, q);
    const T two_sigma2 = T(2) * sigma * sigma;
    constexpr int64_t kTile = tile_pixels<T>();
    const Problem pr{q, hw, (hw + kTile - 1) / kTile, k};
    if (grad) advise_huge_pages(grad, static_cast<size_t>(batch * q * hw) * sizeof(T));
    auto* run = grad ? &run_tiles_baseline<T, true> : &run_tiles_baseline<T, false>;
#ifdef COLORVID_HAVE_AVX2
    if (allow_avx2 && rebalanced_ce_uses_avx2())
        run = grad ? &run_tiles_avx2<T, true> : &run_tiles_avx2<T, false>;
#endif
    // Workers take tiles from a shared counter, a few at a time, rather than one fixed share
    // each: on a machine shared with other jobs a descheduled worker's share would otherwise
    // stall the whole call while the other workers sit idle.
    const int64_t tiles = batch * pr.tiles_per_image;
    std::atomic<int64_t> next{0};
    const int64_t grab = 4;  // tiles per grab: ~0.1 ms of work, far above an atomic's cost
    const int workers = static_cast<int>(std::min<int64_t>(
        num_threads > 0 ? num_threads : default_num_threads(), (tiles + grab - 1) / grab));
    parallel_for(std::max(workers, 1), 1, [&](int64_t, int64_t) {
        for (int64_t begin; (begin = next.fetch_add(grab)) < tiles;)
            run(logits, ab, pr, planes, class_weights, two_sigma2, scale, loss, grad, begin,
                std::min(tiles, begin + grab));
    }, workers);
}

template void rebalanced_ce_impl<float>(const float*, const float*, int64_t, int64_t, int64_t,
                                        const float*, const float*, int, float, float, float*,
                                        float*, int, bool);
template void rebalanced_ce_impl<double>(const double*, const double*, int64_t, int64_t, int64_t,
                                         const double*, const double*, int, double, double,
                                         double*, double*, int, bool);

}  // namespace colorvid
