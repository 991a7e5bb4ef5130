// Soft-encoding, one pixel at a time, threads across pixels: mirrors kernels/soft_encode.py.
#include "soft_encode.h"

#include <type_traits>
#include <vector>

#include "parallel.h"

namespace colorvid {

template <typename T>
void soft_encode_impl(const T* ab, int64_t batch, int64_t hw, const T* centres, int64_t q, int k,
                      T sigma, int64_t* idx, T* weight, int num_threads, bool allow_avx2) {
    const CentrePlanes<T> planes(centres, q);
    const T two_sigma2 = T(2) * sigma * sigma;
    // 1024 pixels per chunk at least: a pixel costs ~313 distance terms (~0.3 us), so a chunk is
    // ~0.3 ms, well above the ~20 us a thread costs to start.
    bool simd = false;
    if constexpr (std::is_same_v<T, float>) simd = allow_avx2 && soft_encode8_supported(planes, k);
    parallel_for(batch * hw, 1024, [&](int64_t begin, int64_t end) {
        std::vector<T> d2(q), best_d2(k), z(k), z8(8 * k);
        std::vector<int64_t> best_q(k), q8(8 * k);
        for (int64_t n = begin; n < end;) {
            const int64_t bi = n / hw, p = n % hw;
            if constexpr (std::is_same_v<T, float>) {
                if (simd && p + 8 <= hw && n + 8 <= end) {  // 8 pixels of one image at once
                    const T* a = ab + bi * 2 * hw;
                    soft_encode8(a + p, a + hw + p, planes, k, two_sigma2, d2.data(), q8.data(),
                                 z8.data());
                    for (int i = 0; i < k; ++i)
                        for (int l = 0; l < 8; ++l) {
                            idx[(bi * k + i) * hw + p + l] = q8[i * 8 + l];
                            weight[(bi * k + i) * hw + p + l] = z8[i * 8 + l];
                        }
                    n += 8;
                    continue;
                }
            }
            ++n;
            const T* a = ab + bi * 2 * hw;
            k_nearest(a[p], a[hw + p], planes, k, d2.data(), best_d2.data(), best_q.data());
            soft_weights(best_d2.data(), k, two_sigma2, z.data());
            for (int i = 0; i < k; ++i) {
                idx[(bi * k + i) * hw + p] = best_q[i];
                weight[(bi * k + i) * hw + p] = z[i];
            }
        }
    }, num_threads);
}

template void soft_encode_impl<float>(const float*, int64_t, int64_t, const float*, int64_t, int,
                                      float, int64_t*, float*, int, bool);
template void soft_encode_impl<double>(const double*, int64_t, int64_t, const double*, int64_t,
                                       int, double, int64_t*, double*, int, bool);

}  // namespace colorvid
