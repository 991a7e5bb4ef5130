// Fused class-rebalanced cross-entropy on the CPU: mirrors kernels/rebalanced_ce.py.
//
// Per pixel with logits x (q channels), the k nearest bins j_i, weights z_i and v = w[j_0]:
//   L = v * (m + log sum_c exp(x_c - m) - sum_i z_i x_{j_i}),  m = max_c x_c
//   dL/dx_c = v * (softmax(x)_c - Z_c),  Z_c = sum_i z_i [j_i == c]
//
// Logits are (B, q, H, W): a pixel's channels are hw apart, so the kernel works on a tile of
// kTile neighbouring pixels and walks the channels row by row, the inner loop running along
// contiguous pixels (vectorised). Per tile: (1) soft-encode each pixel, (2) max and finiteness,
// (3) exp and its sum, writing exp into the gradient, (4) loss, (5) scale the gradient and
// subtract Z at the k target bins. Passes 2-5 reread a tile of q * kTile values that stays in L2,
// so memory sees the logits read once and the gradient written once.
#include "rebalanced_ce.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "parallel.h"
#include "soft_encode.h"

namespace colorvid {
namespace {

// Pixels per tile: MEASURE_ME.
constexpr int64_t kTile = 128;

// exp for float32 without a libm call, so the loop over pixels vectorises (SSE2 4-wide).
// exp(x) = 2^n exp(r), n = round(x / ln 2), r = x - n ln 2 with ln 2 split in two (Cody-Waite),
// exp(r) by the degree-6 Cephes polynomial: relative error ~1.5e-7 (about 1 ulp).
// Inputs here are x - max <= 0; clamping at -87.3 keeps 2^n a normal float (exp = 1.2e-38
// instead of 0: invisible next to the sum, which is >= 1).
inline float exp_approx(float x) {
    x = std::min(std::max(x, -87.3f), 88.0f);
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

template <typename T, bool kGrad>
void ce_tile(const T* x, const T* ab_a, const T* ab_b, int64_t np, int64_t q, int64_t hw,
             const CentrePlanes<T>& planes, const T* class_weights, int k, T two_sigma2, T scale,
             T* loss, T* g, std::vector<T>& scratch, std::vector<int64_t>& jscratch) {
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

}  // namespace

template <typename T>
void rebalanced_ce_impl(const T* logits, const T* ab, int64_t batch, int64_t q, int64_t hw,
                        const T* centres, const T* class_weights, int k, T sigma, T scale, T* loss,
                        T* grad, int num_threads) {
    const CentrePlanes<T> planes(centres, q);
    const T two_sigma2 = T(2) * sigma * sigma;
    const int64_t tiles_per_image = (hw + kTile - 1) / kTile;
    // One tile (~40 us at 313 x 128) is worth a thread: split down to single tiles.
    parallel_for(batch * tiles_per_image, 1, [&](int64_t begin, int64_t end) {
        std::vector<T> scratch(4 * kTile + kTile * k + q + k);
        std::vector<int64_t> jscratch(kTile * k);
        for (int64_t t = begin; t < end; ++t) {
            const int64_t bi = t / tiles_per_image, p0 = (t % tiles_per_image) * kTile;
            const int64_t np = std::min(kTile, hw - p0);
            const T* x = logits + bi * q * hw + p0;
            const T* a = ab + bi * 2 * hw + p0;
            T* l = loss + bi * hw + p0;
            if (grad) {
                ce_tile<T, true>(x, a, a + hw, np, q, hw, planes, class_weights, k, two_sigma2,
                                 scale, l, grad + bi * q * hw + p0, scratch, jscratch);
            } else {
                ce_tile<T, false>(x, a, a + hw, np, q, hw, planes, class_weights, k, two_sigma2,
                                  scale, l, nullptr, scratch, jscratch);
            }
        }
    }, num_threads);
}

template void rebalanced_ce_impl<float>(const float*, const float*, int64_t, int64_t, int64_t,
                                        const float*, const float*, int, float, float, float*,
                                        float*, int);
template void rebalanced_ce_impl<double>(const double*, const double*, int64_t, int64_t, int64_t,
                                         const double*, const double*, int, double, double,
                                         double*, double*, int);

}  // namespace colorvid
