#pragma once
#include <cstdint>

namespace colorvid {
// Lab (L plane and a, b planes of n pixels each) -> interleaved RGB uint8 (n x 3). m: the 3x3
// XYZ(white-scaled) -> linear sRGB matrix, row-major; lut: 65536 entries, linear [0, 1] -> sRGB.
void lab_to_rgb8_impl(const float* L, const float* a, const float* b, int64_t n, const float* m,
                      const uint8_t* lut, uint8_t* out, int num_threads);
}  // namespace colorvid
