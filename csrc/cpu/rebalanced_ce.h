// Fused soft-encoding + class-rebalanced cross-entropy (design.md section 2): mirrors
// kernels/rebalanced_ce.py. Forward and gradient in one sweep; the dense target never exists.
#pragma once

#include <cstdint>

namespace colorvid {

// logits: batch x q x hw; ab: batch x 2 x hw; centres: q x 2; class_weights: q values or null
// (v = 1). Writes loss[batch * hw] = v * (logsumexp(x) - sum_k z_k x_{j_k}) per pixel, NaN where
// a logit of that pixel is not finite, and, when grad is not null,
// grad = scale * v * (softmax(x) - Z) in the logits' layout. allow_avx2 = false forces the
// SSE2 baseline build (tests cover both builds on an AVX2 machine).
template <typename T>
void rebalanced_ce_impl(const T* logits, const T* ab, int64_t batch, int64_t q, int64_t hw,
                        const T* centres, const T* class_weights, int k, T sigma, T scale, T* loss,
                        T* grad, int num_threads, bool allow_avx2 = true);

// Whether the AVX2 build of the kernel runs on this CPU (else the SSE2 baseline).
bool rebalanced_ce_uses_avx2();

}  // namespace colorvid
