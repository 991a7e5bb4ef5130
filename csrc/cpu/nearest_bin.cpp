// Nearest ab bin for every pixel: mirrors kernels/nearest_bin.py.
//   q*(p) = argmin_q ||ab(p) - centre_q||^2, ties broken by the lowest index (as torch.argmin).
#include "nearest_bin.h"

#include <cmath>
#include <limits>
#include <stdexcept>

#include "parallel.h"

namespace colorvid {

template <typename T>
void nearest_bin_impl(const T* a, const T* b, int64_t n, const T* centres, int64_t q,
                      int64_t* out, int num_threads) {
    parallel_for(n, 4096, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
            const T ai = a[i], bi = b[i];
            if (!std::isfinite(ai) || !std::isfinite(bi))
                throw std::invalid_argument("nearest_bin: ab contains NaN or infinity");
            T best = std::numeric_limits<T>::infinity();
            int64_t best_q = 0;
            for (int64_t k = 0; k < q; ++k) {
                const T da = ai - centres[2 * k], db = bi - centres[2 * k + 1];
                const T d2 = da * da + db * db;
                if (d2 < best) {
                    best = d2;
                    best_q = k;
                }
            }
            out[i] = best_q;
        }
    }, num_threads);
}

template void nearest_bin_impl<float>(const float*, const float*, int64_t, const float*, int64_t,
                                      int64_t*, int);
template void nearest_bin_impl<double>(const double*, const double*, int64_t, const double*,
                                       int64_t, int64_t*, int);

}  // namespace colorvid
