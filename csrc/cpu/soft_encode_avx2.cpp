// The k nearest bins and their soft-encoding weights for 8 pixels at once (float32, AVX2): the
// same answer as k_nearest + soft_weights (soft_encode.h) pixel by pixel, bit for bit.
//
// Each SIMD lane is one pixel. All lanes visit the 4 x 4 lattice block around their own cell in
// the same order; a lane keeps its k best (distance, node) pairs sorted in k registers, inserted
// without branches (compare, blend), with ties to the lower node, which is the lower bin index
// as offer() has it (CentrePlanes::nodes_exact). The nodes' coordinates are computed, not
// looked up, and one bit mask per lattice row says which hold a bin: one gather per row and k
// at the end instead of three per candidate (a first version gathering each candidate's bin
// and centre ran at 69 ns a pixel on this AMD EPYC, one thread; its gathers dominated). A lane
// whose block does not provably hold the answer (near or outside the gamut edge, ab not
// finite) is redone by the scalar k_nearest. The scalar version spent most of its time on
// mispredicted branches of the insertion (data-dependent, 16 candidates a pixel).
// No FMA anywhere here (target avx2 only, contraction off): the distances must round as the
// reference's, or bins at equal distance could swap.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "fp-contract=off")
#endif

#include "soft_encode.h"

#include <climits>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace colorvid {

#if defined(__GNUC__) && defined(__x86_64__)
namespace {

template <int K>
__attribute__((target("avx2"))) void soft8_avx2(const float* a, const float* b,
                                                const CentrePlanes<float>& c, float two_sigma2,
                                                float* d2_scratch, int64_t* q_out,
                                                float* z_out) {
    const __m256 va = _mm256_loadu_ps(a), vb = _mm256_loadu_ps(b);
    const __m256 step = _mm256_set1_ps(static_cast<float>(c.kStep));
    const __m256 sign = _mm256_set1_ps(-0.0f), limit = _mm256_set1_ps(1e4f);
    __m256 fa = _mm256_floor_ps(_mm256_div_ps(va, step));
    __m256 fb = _mm256_floor_ps(_mm256_div_ps(vb, step));
    const __m256 in_range = _mm256_and_ps(
        _mm256_cmp_ps(_mm256_andnot_ps(sign, fa), limit, _CMP_LT_OQ),
        _mm256_cmp_ps(_mm256_andnot_ps(sign, fb), limit, _CMP_LT_OQ));
    fa = _mm256_and_ps(fa, in_range);  // out-of-range lanes: node arithmetic on 0, discarded
    fb = _mm256_and_ps(fb, in_range);
    const __m256i na = _mm256_sub_epi32(_mm256_cvttps_epi32(fa),
                                        _mm256_set1_epi32(static_cast<int>(c.a0)));
    const __m256i nb = _mm256_sub_epi32(_mm256_cvttps_epi32(fb),
                                        _mm256_set1_epi32(static_cast<int>(c.b0)));
    const __m256i a_nodes = _mm256_set1_epi32(static_cast<int>(c.a_nodes));
    const __m256i b_nodes = _mm256_set1_epi32(static_cast<int>(c.b_nodes));
    const __m256i minus1 = _mm256_set1_epi32(-1), none = _mm256_set1_epi32(INT_MAX);
    const __m256 inf = _mm256_set1_ps(std::numeric_limits<float>::infinity());
    const __m256i lanes_ok = _mm256_castps_si256(in_range);

    __m256 bd[K];
    __m256i bq[K];
    for (int p = 0; p < K; ++p) {
        bd[p] = inf;
        bq[p] = none;
    }
    const __m256i step_i = _mm256_set1_epi32(c.kStep);
    const __m256i a0 = _mm256_set1_epi32(static_cast<int>(c.a0));
    const __m256i b0 = _mm256_set1_epi32(static_cast<int>(c.b0));
    const __m256i one = _mm256_set1_epi32(1);
    for (int oa = -1; oa <= 2; ++oa) {
        const __m256i ia = _mm256_add_epi32(na, _mm256_set1_epi32(oa));
        const __m256i a_ok = _mm256_and_si256(
            _mm256_and_si256(_mm256_cmpgt_epi32(ia, minus1), _mm256_cmpgt_epi32(a_nodes, ia)),
            lanes_ok);
        // which nodes of this lattice row hold a bin (0 for rows outside): one gather a row
        const __m256i row_bits = _mm256_mask_i32gather_epi32(
            _mm256_setzero_si256(), reinterpret_cast<const int*>(c.row_mask.data()),
            _mm256_and_si256(ia, a_ok), a_ok, 4);
        // the node's a, exactly the centre's (nodes_exact)
        const __m256 ca = _mm256_cvtepi32_ps(_mm256_mullo_epi32(_mm256_add_epi32(ia, a0), step_i));
        const __m256 da = _mm256_sub_ps(va, ca);
        const __m256 da2 = _mm256_mul_ps(da, da);
        const __m256i row = _mm256_mullo_epi32(ia, b_nodes);
        for (int ob = -1; ob <= 2; ++ob) {
            const __m256i ib = _mm256_add_epi32(nb, _mm256_set1_epi32(ob));
            // shifts by a count outside 0..31 (ib < 0 or >= 32) give 0: no bin
            const __m256i have = _mm256_cmpeq_epi32(
                _mm256_and_si256(_mm256_srlv_epi32(row_bits, ib), one), one);
            const __m256 have_ps = _mm256_castsi256_ps(have);
            const __m256 cb = _mm256_cvtepi32_ps(
                _mm256_mullo_epi32(_mm256_add_epi32(ib, b0), step_i));
            const __m256 db = _mm256_sub_ps(vb, cb);
            __m256 d = _mm256_add_ps(da2, _mm256_mul_ps(db, db));
            d = _mm256_blendv_ps(inf, d, have_ps);
            // the node's row-major position: ordered as the bin indices (nodes_exact)
            const __m256i bin = _mm256_blendv_epi8(none, _mm256_add_epi32(row, ib), have);
            // (d, bin) before slot p in the (distance, bin index) order
            __m256 before[K];
            for (int p = 0; p < K; ++p) {
                const __m256 tie = _mm256_and_ps(
                    _mm256_cmp_ps(d, bd[p], _CMP_EQ_OQ),
                    _mm256_castsi256_ps(_mm256_cmpgt_epi32(bq[p], bin)));
                before[p] = _mm256_or_ps(_mm256_cmp_ps(d, bd[p], _CMP_LT_OQ), tie);
            }
            for (int p = K - 1; p > 0; --p) {
                const __m256i bef = _mm256_castps_si256(before[p]);
                const __m256i prev = _mm256_castps_si256(before[p - 1]);
                bd[p] = _mm256_blendv_ps(_mm256_blendv_ps(bd[p], d, before[p]), bd[p - 1],
                                         before[p - 1]);
                bq[p] = _mm256_blendv_epi8(_mm256_blendv_epi8(bq[p], bin, bef), bq[p - 1], prev);
            }
            bd[0] = _mm256_blendv_ps(bd[0], d, before[0]);
            bq[0] = _mm256_blendv_epi8(bq[0], bin, _mm256_castps_si256(before[0]));
        }
    }
    // Exact where the k-th is nearer than any node outside the block (k_nearest's test).
    const float safe = static_cast<float>(c.kRadius * c.kStep);
    const __m256 exact = _mm256_and_ps(
        in_range, _mm256_cmp_ps(bd[K - 1], _mm256_set1_ps(safe * safe), _CMP_LT_OQ));
    const int exact_mask = _mm256_movemask_ps(exact);
    alignas(32) float d_lanes[K][8];
    alignas(32) int32_t q_lanes[K][8];
    const __m256i exact_i = _mm256_castps_si256(exact);
    for (int p = 0; p < K; ++p) {  // node position -> bin, in the lanes that keep the answer
        _mm256_store_ps(d_lanes[p], bd[p]);
        const __m256i bins = _mm256_mask_i32gather_epi32(
            minus1, c.lattice.data(), _mm256_and_si256(bq[p], exact_i), exact_i, 4);
        _mm256_store_si256(reinterpret_cast<__m256i*>(q_lanes[p]), bins);
    }
    for (int l = 0; l < 8; ++l) {
        if (exact_mask & (1 << l)) {
            for (int p = 0; p < K; ++p) q_out[p * 8 + l] = q_lanes[p][l];
            continue;
        }
        float best_d2[K];
        int64_t best_q[K];
        k_nearest(a[l], b[l], c, K, d2_scratch, best_d2, best_q);
        for (int p = 0; p < K; ++p) {
            d_lanes[p][l] = best_d2[p];
            q_out[p * 8 + l] = best_q[p];
        }
    }
    // soft_weights, lane by lane in the scalar order (the loop over lanes vectorises)
    float sum[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int p = 0; p < K; ++p)
        for (int l = 0; l < 8; ++l) {
            const float z = exp_approx(-(d_lanes[p][l] - d_lanes[0][l]) / two_sigma2);
            z_out[p * 8 + l] = z;
            sum[l] += z;
        }
    for (int p = 0; p < K; ++p)
        for (int l = 0; l < 8; ++l) z_out[p * 8 + l] /= sum[l];
}

}  // namespace

bool soft_encode8_supported(const CentrePlanes<float>& c, int k) {
    static const bool avx2 = __builtin_cpu_supports("avx2");
    return avx2 && c.nodes_exact && !c.lattice.empty() && k >= 1 && k <= 8;
}

void soft_encode8(const float* a, const float* b, const CentrePlanes<float>& c, int k,
                  float two_sigma2, float* d2_scratch, int64_t* q_out, float* z_out) {
    switch (k) {
        case 1: return soft8_avx2<1>(a, b, c, two_sigma2, d2_scratch, q_out, z_out);
        case 2: return soft8_avx2<2>(a, b, c, two_sigma2, d2_scratch, q_out, z_out);
        case 3: return soft8_avx2<3>(a, b, c, two_sigma2, d2_scratch, q_out, z_out);
        case 4: return soft8_avx2<4>(a, b, c, two_sigma2, d2_scratch, q_out, z_out);
        case 5: return soft8_avx2<5>(a, b, c, two_sigma2, d2_scratch, q_out, z_out);
        case 6: return soft8_avx2<6>(a, b, c, two_sigma2, d2_scratch, q_out, z_out);
        case 7: return soft8_avx2<7>(a, b, c, two_sigma2, d2_scratch, q_out, z_out);
        default: return soft8_avx2<8>(a, b, c, two_sigma2, d2_scratch, q_out, z_out);
    }
}
#else
bool soft_encode8_supported(const CentrePlanes<float>&, int) { return false; }
#endif

#if !(defined(__GNUC__) && defined(__x86_64__))
// Elsewhere the same contract pixel by pixel (soft_encode8_supported says false there, so the
// callers take their own scalar loops; this keeps the function whole).
void soft_encode8(const float* a, const float* b, const CentrePlanes<float>& c, int k,
                  float two_sigma2, float* d2_scratch, int64_t* q_out, float* z_out) {
    std::vector<float> best_d2(k), z(k);
    std::vector<int64_t> best_q(k);
    for (int l = 0; l < 8; ++l) {
        k_nearest(a[l], b[l], c, k, d2_scratch, best_d2.data(), best_q.data());
        soft_weights(best_d2.data(), k, two_sigma2, z.data());
        for (int p = 0; p < k; ++p) {
            q_out[p * 8 + l] = best_q[p];
            z_out[p * 8 + l] = z[p];
        }
    }
}
#endif

}  // namespace colorvid
