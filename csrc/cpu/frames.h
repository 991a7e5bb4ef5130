#pragma once
#include <cstdint>

namespace colorvid {
// Lab (L plane and a, b planes of n pixels each) -> interleaved RGB uint8 (n x 3). m: the 3x3
// XYZ(white-scaled) -> linear sRGB matrix, row-major; lut: 65536 entries, linear [0, 1] -> sRGB.
// simd: the AVX2 build where the CPU has it (bit-identical output; false: the scalar one).
void lab_to_rgb8_impl(const float* L, const float* a, const float* b, int64_t n, const float* m,
                      const uint8_t* lut, uint8_t* out, int num_threads, bool simd = true);

// The same with the chroma at a lower resolution: a, b planes of h x w are upsampled bilinearly
// (align_corners=False, as torch.nn.functional.interpolate) onto the H x W L plane in the same
// pass, so the full-resolution ab planes are never written.
void lab_to_rgb8_upsample_impl(const float* L, int64_t H, int64_t W, const float* a,
                               const float* b, int64_t h, int64_t w, const float* m,
                               const uint8_t* lut, uint8_t* out, int num_threads,
                               bool simd = true);

// RGB (channels 3) or grey (channels 1) uint8, n pixels interleaved -> Lab L plane (float, 0..100).
// y_tables: 3 x 256 floats, w_c * linear(v / 255) for the Y row of sRGB -> XYZ.
void rgb8_to_l_impl(const uint8_t* rgb, int64_t n, int channels, const float* y_tables, float* L,
                    int num_threads);
}  // namespace colorvid
