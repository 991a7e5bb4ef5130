#pragma once
#include <cstdint>

namespace colorvid {
// a, b: n values each (separate planes); centres: q x 2 row-major; out: n bin indices.
template <typename T>
void nearest_bin_impl(const T* a, const T* b, int64_t n, const T* centres, int64_t q,
                      int64_t* out, int num_threads);
}  // namespace colorvid
