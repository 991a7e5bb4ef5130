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
#pragma GCC optimize("no-trapping-math", "fp-contract=off")
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "fast_exp.h"
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

// Inlined into each entry point below, so each is compiled for its own instruction set.
#if defined(__GNUC__)
#define COLORVID_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define COLORVID_ALWAYS_INLINE inline
#endif

#if defined(__GNUC__) && defined(__x86_64__)
// g[c * hw + i] = e[c * 128 + i] * sv[i] for the 313 rows of a whole float tile, with
// non-temporal stores (g 32-byte aligned, hw a multiple of 8). Not inlined: it is compiled for
// AVX2 and called only from the AVX2 build of the kernel.
__attribute__((target("avx2"), noinline)) void stream_scaled_rows_avx2(const float* e,
                                                                      const float* sv, int64_t q,
                                                                      int64_t hw, float* g) {
    constexpr int64_t kTile = tile_pixels<float>();
    for (int64_t c = 0; c < q; ++c) {
        const float* erow = e + c * kTile;
        float* grow = g + c * hw;
        for (int64_t i = 0; i < kTile; i += 8)
            _mm256_stream_ps(grow + i, _mm256_mul_ps(_mm256_loadu_ps(erow + i),
                                                     _mm256_loadu_ps(sv + i)));
    }
}
#else
// Declared for the template above to name; without the x86 AVX2 build (run_tiles_avx2 below is
// x86-only) the streaming path is never instantiated, so this is never called.
void stream_scaled_rows_avx2(const float*, const float*, int64_t, int64_t, float*);
#endif

template <typename T, bool kGrad, bool kFma>
COLORVID_ALWAYS_INLINE void ce_tile(const T* x, const T* ab_a, const T* ab_b, int64_t np,
                                    int64_t q, int64_t hw, const CentrePlanes<T>& planes,
                                    const T* class_weights, int k, T two_sigma2, T scale, T* loss,
                                    T* g, std::vector<T>& scratch,
                                    std::vector<int64_t>& jscratch) {
    constexpr int64_t kTile = tile_pixels<T>();
    // scratch layout: m, s, fin, v (kTile each), z (kTile * k), d2 (q), best_d2 (k), then with
    // a gradient e (q * kTile: the tile's exponentials, kept in L2 until (5) writes g once)
    T* m = scratch.data();
    T* s = m + kTile;
    T* fin = s + kTile;
    T* v = fin + kTile;
    T* z = v + kTile;
    T* d2 = z + kTile * k;
    T* best_d2 = d2 + q;
    T* e_tile = best_d2 + k;
    int64_t* j = jscratch.data();  // kTile * k

    // (1) soft-encode each pixel of the tile: in the AVX2 build 8 pixels at once
    // (soft_encode_avx2.cpp, the same bins and weights as the scalar helpers).
    int64_t first_scalar = 0;
    if constexpr (kFma && std::is_same_v<T, float>) {
        if (soft_encode8_supported(planes, k)) {
            int64_t q8[64];
            float z8[64];
            for (; first_scalar + 8 <= np; first_scalar += 8) {
                const int64_t i0 = first_scalar;
                soft_encode8(ab_a + i0, ab_b + i0, planes, k, two_sigma2, d2, q8, z8);
                for (int l = 0; l < 8; ++l) {
                    for (int t = 0; t < k; ++t) {
                        j[(i0 + l) * k + t] = q8[t * 8 + l];
                        z[(i0 + l) * k + t] = z8[t * 8 + l];
                    }
                    v[i0 + l] = class_weights ? class_weights[j[(i0 + l) * k]] : T(1);
                }
            }
        }
    }
    for (int64_t i = first_scalar; i < np; ++i) {
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
    // (3) sum of exp(x - m); with a gradient, exp is kept in the tile scratch for (5), so the
    // gradient is written once (writing it here and scaling it in place in (5) stored every
    // value twice).
    for (int64_t c = 0; c < q; ++c) {
        const T* row = x + c * hw;
        T* erow = kGrad ? e_tile + c * kTile : nullptr;
        for (int64_t i = 0; i < np; ++i) {
            const T e = exp_approx<kFma>(row[i] - m[i]);
            s[i] += e;
            if constexpr (kGrad) erow[i] = e;
        }
    }
    // (4) loss = v * (lse - sum_i z_i x_{j_i}); a non-finite logit makes it NaN through fin.
    for (int64_t i = 0; i < np; ++i) {
        T zx = 0;
        for (int t = 0; t < k; ++t) zx += z[i * k + t] * x[j[i * k + t] * hw + i];
        loss[i] = v[i] * (m[i] + std::log(s[i]) - zx) + fin[i];
    }
    if constexpr (kGrad) {
        // (5) g = scale * v * (e / s - Z).
        if constexpr (kFma && std::is_same_v<T, float>) {
            if (np == kTile && reinterpret_cast<uintptr_t>(g) % 32 == 0 && hw % 8 == 0) {
                // AVX2 build, whole aligned tile: subtract the target in the scratch
                // (e - Z s, so that (e - Z s) * scale v / s = g), then write g once with
                // streaming stores, which skip reading the gradient's lines before writing
                // them. Measured, (8, 313, 56, 56), 2 threads, the kernel alone (best of 45):
                // 11.7 ms with plain stores (forward alone 7.5), 8.0 ms with these.
                for (int64_t i = 0; i < np; ++i)
                    for (int t = 0; t < k; ++t) e_tile[j[i * k + t] * kTile + i] -= z[i * k + t] * s[i];
                for (int64_t i = 0; i < np; ++i) s[i] = scale * v[i] / s[i];
                stream_scaled_rows_avx2(e_tile, s, q, hw, g);
                return;
            }
        }
        // ...else the softmax part for every channel, then the target at its k bins.
        for (int64_t i = 0; i < np; ++i) s[i] = scale * v[i] / s[i];
        for (int64_t c = 0; c < q; ++c) {
            T* grow = g + c * hw;
            const T* erow = e_tile + c * kTile;
            for (int64_t i = 0; i < np; ++i) grow[i] = erow[i] * s[i];
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
template <typename T, bool kGrad, bool kFma>
COLORVID_ALWAYS_INLINE void run_tiles(const T* logits, const T* ab, const Problem& pr,
                                      const CentrePlanes<T>& planes, const T* class_weights,
                                      T two_sigma2, T scale, T* loss, T* grad, int64_t begin,
                                      int64_t end) {
    constexpr int64_t kTile = tile_pixels<T>();
    const int64_t q = pr.q, hw = pr.hw;
    std::vector<T> scratch(4 * kTile + kTile * pr.k + q + pr.k + (kGrad ? q * kTile : 0));
    std::vector<int64_t> jscratch(kTile * pr.k);
    for (int64_t t = begin; t < end; ++t) {
        const int64_t bi = t / pr.tiles_per_image, p0 = (t % pr.tiles_per_image) * kTile;
        const int64_t np = std::min(kTile, hw - p0);
        const T* a = ab + bi * 2 * hw + p0;
        ce_tile<T, kGrad, kFma>(logits + bi * q * hw + p0, a, a + hw, np, q, hw, planes, class_weights,
                          pr.k, two_sigma2, scale, loss + bi * hw + p0,
                          kGrad ? grad + bi * q * hw + p0 : nullptr, scratch, jscratch);
    }
}

template <typename T, bool kGrad>
void run_tiles_baseline(const T* logits, const T* ab, const Problem& pr,
                        const CentrePlanes<T>& planes, const T* class_weights, T two_sigma2,
                        T scale, T* loss, T* grad, int64_t begin, int64_t end) {
    run_tiles<T, kGrad, false>(logits, ab, pr, planes, class_weights, two_sigma2, scale, loss,
                               grad, begin, end);
}

#if defined(__GNUC__) && defined(__x86_64__)
#define COLORVID_HAVE_AVX2 1
// The same code compiled for AVX2 + FMA (8 floats per instruction instead of SSE2's 4), chosen
// at run time. FMA only where written (the exp polynomial): contraction is off in this file
// (pragma above), since a fused da*da + db*db would round differently from the torch
// reference and could reorder bins at equal distance. Measured, one thread, (8, 313, 56, 56),
// k = 5, real ab, best of 15: fwd+grad 58.1 ms (SSE2) -> 31.2 ms (AVX2).
template <typename T, bool kGrad>
__attribute__((target("avx2,fma"))) void run_tiles_avx2(const T* logits, const T* ab,
                                                    const Problem& pr,
                                                    const CentrePlanes<T>& planes,
                                                    const T* class_weights, T two_sigma2, T scale,
                                                    T* loss, T* grad, int64_t begin, int64_t end) {
    run_tiles<T, kGrad, true>(logits, ab, pr, planes, class_weights, two_sigma2, scale, loss,
                              grad, begin, end);
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
    static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
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
#if defined(__x86_64__)
        _mm_sfence();  // the streaming stores are visible before the worker is joined
#endif
    }, workers);
}

template void rebalanced_ce_impl<float>(const float*, const float*, int64_t, int64_t, int64_t,
                                        const float*, const float*, int, float, float, float*,
                                        float*, int, bool);
template void rebalanced_ce_impl<double>(const double*, const double*, int64_t, int64_t, int64_t,
                                         const double*, const double*, int, double, double,
                                         double*, double*, int, bool);

}  // namespace colorvid
