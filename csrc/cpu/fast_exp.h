// exp for float32 without a libm call, so loops over pixels vectorise (4 or 8 wide), shared by
// the fused loss (rebalanced_ce.cpp) and the soft-encoding weights (soft_encode.h).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace colorvid {

// a * b + c, fused when kFma (the caller is compiled for FMA: one vfmadd instead of a multiply
// and an add, and one rounding instead of two).
template <bool kFma>
inline float madd(float a, float b, float c) {
    if constexpr (kFma) {
        return __builtin_fmaf(a, b, c);
    } else {
        return a * b + c;
    }
}

// exp(x) = 2^n exp(r), n = round(x / ln 2), r = x - n ln 2 with ln 2 split in two (Cody-Waite),
// exp(r) by the degree-6 Cephes polynomial: relative error ~1.5e-7 (about 1 ulp).
// Callers pass x <= 0 (x - max, or minus a scaled squared distance), so only the low end is
// clamped: -87.3 keeps 2^n a normal float (exp = 1.2e-38 instead of 0). Written so that it
// compiles to one vmaxps; a NaN becomes -87.3 here, so callers that may see one track
// finiteness themselves (the loss's fin sum). Two clamps as compare-and-blend cost 7 of the
// loss's 35 instructions per 8 logits; FMA halves the polynomial's 12.
template <bool kFma = false>
inline float exp_approx(float x) {
    x = x > -87.3f ? x : -87.3f;
    const float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
    const float t = madd<kFma>(x, 1.44269504088896341f, kRound);
    const float n = t - kRound;
    const float r = madd<kFma>(n, 2.12194440e-4f, madd<kFma>(n, -0.693359375f, x));
    float p = 1.9875691500e-4f;
    p = madd<kFma>(p, r, 1.3981999507e-3f);
    p = madd<kFma>(p, r, 8.3334519073e-3f);
    p = madd<kFma>(p, r, 4.1665795894e-2f);
    p = madd<kFma>(p, r, 1.6666665459e-1f);
    p = madd<kFma>(p, r, 5.0000001201e-1f);
    p = madd<kFma>(p * r, r, r) + 1.0f;
    const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}
// float64 is the accuracy path (gradcheck): the exact libm exp.
template <bool kFma = false>
inline double exp_approx(double x) {
    return std::exp(x);
}

}  // namespace colorvid
