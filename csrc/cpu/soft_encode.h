// Soft-encoding of ground-truth ab onto the 313 bins (design.md section 2): mirrors
// kernels/soft_encode.py. The per-pixel helpers are inline so the fused loss
// (rebalanced_ce.cpp) shares them without a call per pixel.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace colorvid {

// The centres as two planes (structure of arrays) so the distance loop vectorises.
template <typename T>
struct CentrePlanes {
    std::vector<T> a, b;
    CentrePlanes(const T* centres, int64_t q) : a(q), b(q) {
        for (int64_t i = 0; i < q; ++i) {
            a[i] = centres[2 * i];
            b[i] = centres[2 * i + 1];
        }
    }
    int64_t size() const { return static_cast<int64_t>(a.size()); }
};

// The k nearest centres of (a, b), nearest first; equal distances keep the lower bin index first
// (the order of repeated torch.argmin, which the reference uses). d2: scratch of c.size().
template <typename T>
inline void k_nearest(T a, T b, const CentrePlanes<T>& c, int k, T* d2, T* best_d2,
                      int64_t* best_q) {
    const int64_t q = c.size();
    const T* ca = c.a.data();
    const T* cb = c.b.data();
    for (int64_t i = 0; i < q; ++i) {
        const T da = a - ca[i], db = b - cb[i];
        d2[i] = da * da + db * db;
    }
    int n = 0;
    for (int64_t i = 0; i < q; ++i) {
        const T d = d2[i];
        if (n == k && !(d < best_d2[k - 1])) continue;  // not nearer than the current k-th
        int pos = n < k ? n++ : k - 1;                   // full: the k-th drops out
        while (pos > 0 && d < best_d2[pos - 1]) {        // strict: ties stay behind older ones
            best_d2[pos] = best_d2[pos - 1];
            best_q[pos] = best_q[pos - 1];
            --pos;
        }
        best_d2[pos] = d;
        best_q[pos] = i;
    }
}

// Normalised Gaussian weights of the k sorted squared distances:
//   z_i = exp(-(d2_i - d2_0) / (2 sigma^2)) / sum. Shifting by the nearest distance keeps z_0 = 1
// before normalising, so ab far outside the gamut cannot underflow every term to 0 (no 0/0).
template <typename T>
inline void soft_weights(const T* best_d2, int k, T two_sigma2, T* z) {
    T sum = 0;
    for (int i = 0; i < k; ++i) {
        z[i] = std::exp(-(best_d2[i] - best_d2[0]) / two_sigma2);
        sum += z[i];
    }
    for (int i = 0; i < k; ++i) z[i] /= sum;
}

// ab: batch x 2 x hw (planes a then b); centres: q x 2; idx, weight: batch x k x hw.
template <typename T>
void soft_encode_impl(const T* ab, int64_t batch, int64_t hw, const T* centres, int64_t q, int k,
                      T sigma, int64_t* idx, T* weight, int num_threads);

}  // namespace colorvid
