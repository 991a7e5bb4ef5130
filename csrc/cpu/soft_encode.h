// Soft-encoding of ground-truth ab onto the 313 bins (design.md section 2): mirrors
// kernels/soft_encode.py. The per-pixel helpers are inline so the fused loss
// (rebalanced_ce.cpp) shares them without a call per pixel.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "fast_exp.h"

namespace colorvid {

// The centres as two planes (structure of arrays) so the distance loop vectorises, plus, when
// every centre lies on a square lattice of step kStep (the 313 bins do), a map from lattice node
// to bin so that the k nearest are usually found among the 5 x 5 nodes around ab.
template <typename T>
struct CentrePlanes {
    static constexpr int kStep = 10;  // the ab grid of design.md section 2
    static constexpr int kRadius = 2; // the fast path's bound, in steps (see k_nearest)
    std::vector<T> a, b;
    std::vector<int32_t> lattice;  // (a_nodes x b_nodes) -> bin index or -1; empty: no lattice
    int64_t a0 = 0, b0 = 0, a_nodes = 0, b_nodes = 0;
    // For the 8-pixel search (soft_encode_avx2.cpp): bit ib of row_mask[ia] says whether node
    // (ia, ib) holds a bin, and nodes_exact says that it may work on nodes instead of bins:
    // every centre is exactly node * kStep in T, and bin indices rise with the node's row-major
    // position (ties by node are then ties by bin index). True for the 313 bins.
    std::vector<uint32_t> row_mask;
    bool nodes_exact = false;

    CentrePlanes(const T* centres, int64_t q) : a(q), b(q) {
        bool on_lattice = q > 0;
        int64_t amin = 0, amax = 0, bmin = 0, bmax = 0;
        for (int64_t i = 0; i < q; ++i) {
            a[i] = centres[2 * i];
            b[i] = centres[2 * i + 1];
            const T ia = a[i] / kStep, ib = b[i] / kStep;
            if (!(std::abs(ia) < 1e4 && std::abs(ib) < 1e4) || ia != std::round(ia) ||
                ib != std::round(ib)) {
                on_lattice = false;
                continue;
            }
            const int64_t na = static_cast<int64_t>(ia), nb = static_cast<int64_t>(ib);
            amin = i == 0 ? na : std::min(amin, na);
            amax = i == 0 ? na : std::max(amax, na);
            bmin = i == 0 ? nb : std::min(bmin, nb);
            bmax = i == 0 ? nb : std::max(bmax, nb);
        }
        if (!on_lattice) return;
        a0 = amin;
        b0 = bmin;
        a_nodes = amax - amin + 1;
        b_nodes = bmax - bmin + 1;
        lattice.assign(a_nodes * b_nodes, -1);
        for (int64_t i = 0; i < q; ++i) {
            const int64_t na = static_cast<int64_t>(std::round(a[i] / kStep)) - a0;
            const int64_t nb = static_cast<int64_t>(std::round(b[i] / kStep)) - b0;
            int32_t& slot = lattice[na * b_nodes + nb];
            if (slot >= 0) {  // two bins on one node: not a lattice, always scan every bin
                lattice.clear();
                return;
            }
            slot = static_cast<int32_t>(i);
        }
        nodes_exact = b_nodes <= 31;
        row_mask.assign(a_nodes, 0);
        int32_t last = -1;
        for (int64_t na = 0; na < a_nodes; ++na)
            for (int64_t nb = 0; nb < b_nodes; ++nb) {
                const int32_t i = lattice[na * b_nodes + nb];
                if (i < 0) continue;
                row_mask[na] |= nb < 32 ? (uint32_t(1) << nb) : 0;
                nodes_exact = nodes_exact && i > last &&
                              a[i] == static_cast<T>((na + a0) * kStep) &&
                              b[i] == static_cast<T>((nb + b0) * kStep);
                last = i;
            }
    }
    int64_t size() const { return static_cast<int64_t>(a.size()); }
};

// Keeps best_d2/best_q (n of k filled) sorted by (distance, bin index): the order of repeated
// torch.argmin in the reference, whatever order the candidates arrive in.
template <typename T>
inline void offer(T d, int64_t i, int k, int& n, T* best_d2, int64_t* best_q) {
    if (n == k && !(d < best_d2[k - 1] || (d == best_d2[k - 1] && i < best_q[k - 1]))) return;
    int pos = n < k ? n++ : k - 1;  // full: the k-th drops out
    while (pos > 0 && (d < best_d2[pos - 1] || (d == best_d2[pos - 1] && i < best_q[pos - 1]))) {
        best_d2[pos] = best_d2[pos - 1];
        best_q[pos] = best_q[pos - 1];
        --pos;
    }
    best_d2[pos] = d;
    best_q[pos] = i;
}

// The k nearest centres of (a, b), nearest first, ties to the lower bin index.
// Fast path: the bins on the 4 x 4 lattice nodes around the lattice cell that holds (a, b)
// (one node beyond the cell on each side). The cell is kStep wide, so every node outside the
// block is at least kRadius kStep = 20 away: if the k-th nearest inside is strictly nearer,
// the block holds the exact answer (for k <= 5 it always is inside the gamut: the fifth
// nearest node of a square lattice is at most sqrt(10) kStep / 2 = 15.8 away). Otherwise (near
// or outside the gamut edge, or k too large) every bin is scanned.
// d2: scratch of c.size(). Measured, one thread, 8 x 56 x 56 pixels of real-photo ab, k = 5,
// best of 15: 34.6 ms scanning all 313 bins, 8.1 ms with a 5 x 5 block around the nearest
// node; the 4 x 4 block around the cell visits 16 nodes instead of 25.
template <typename T>
inline void k_nearest(T a, T b, const CentrePlanes<T>& c, int k, T* d2, T* best_d2,
                      int64_t* best_q) {
    const int64_t q = c.size();
    const T* ca = c.a.data();
    const T* cb = c.b.data();
    int n = 0;
    if (!c.lattice.empty()) {
        const T fa = std::floor(a / c.kStep), fb = std::floor(b / c.kStep);
        const T limit = T(1e4);  // keeps the node arithmetic in range for any finite ab
        if (std::abs(fa) < limit && std::abs(fb) < limit) {
            // The cell's lower-left node; the block is nodes -1 .. +2 from it on each axis.
            const int64_t na = static_cast<int64_t>(fa) - c.a0;
            const int64_t nb = static_cast<int64_t>(fb) - c.b0;
            for (int64_t ia = std::max<int64_t>(0, na - 1);
                 ia <= std::min<int64_t>(c.a_nodes - 1, na + 2); ++ia) {
                for (int64_t ib = std::max<int64_t>(0, nb - 1);
                     ib <= std::min<int64_t>(c.b_nodes - 1, nb + 2); ++ib) {
                    const int32_t i = c.lattice[ia * c.b_nodes + ib];
                    if (i < 0) continue;
                    const T da = a - ca[i], db = b - cb[i];
                    offer(da * da + db * db, i, k, n, best_d2, best_q);
                }
            }
            const T safe = T(c.kRadius) * c.kStep;
            if (n == k && best_d2[k - 1] < safe * safe) return;
            n = 0;
        }
    }
    for (int64_t i = 0; i < q; ++i) {
        const T da = a - ca[i], db = b - cb[i];
        d2[i] = da * da + db * db;
    }
    for (int64_t i = 0; i < q; ++i) offer(d2[i], i, k, n, best_d2, best_q);
}

// Normalised Gaussian weights of the k sorted squared distances:
//   z_i = exp(-(d2_i - d2_0) / (2 sigma^2)) / sum. Shifting by the nearest distance keeps z_0 = 1
// before normalising, so ab far outside the gamut cannot underflow every term to 0 (no 0/0);
// exp_approx's floor (1.2e-38 at -87.3) changes nothing next to z_0 = 1.
template <typename T>
inline void soft_weights(const T* best_d2, int k, T two_sigma2, T* z) {
    T sum = 0;
    for (int i = 0; i < k; ++i) {
        z[i] = exp_approx(-(best_d2[i] - best_d2[0]) / two_sigma2);  // float: no libm call
        sum += z[i];
    }
    for (int i = 0; i < k; ++i) z[i] /= sum;
}

// k_nearest + soft_weights for the 8 pixels a[0..8), b[0..8) at once (soft_encode_avx2.cpp):
// bins into q_out[t * 8 + lane], weights into z_out[t * 8 + lane], identical to the scalar
// helpers. Only where soft_encode8_supported (an AVX2 CPU, centres on the lattice, 1 <= k <= 8);
// d2_scratch: c.size() floats for lanes that fall back to the full scan.
bool soft_encode8_supported(const CentrePlanes<float>& c, int k);
void soft_encode8(const float* a, const float* b, const CentrePlanes<float>& c, int k,
                  float two_sigma2, float* d2_scratch, int64_t* q_out, float* z_out);

// ab: batch x 2 x hw (planes a then b); centres: q x 2; idx, weight: batch x k x hw.
// allow_avx2: use soft_encode8 where supported (false: the scalar helpers; same output).
template <typename T>
void soft_encode_impl(const T* ab, int64_t batch, int64_t hw, const T* centres, int64_t q, int k,
                      T sigma, int64_t* idx, T* weight, int num_threads, bool allow_avx2 = true);

}  // namespace colorvid
