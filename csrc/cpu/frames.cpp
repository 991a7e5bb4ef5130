// Lab -> RGB uint8 output frames: mirrors core/frames.py lab_to_frames (the same maths and the
// same companding table), fused into one pass per pixel. In torch the same work is ~15 tensor
// passes over the frame; here it is read L, a, b once and write 3 bytes.
#include "frames.h"

#include <algorithm>

#include "parallel.h"

namespace colorvid {

namespace {
inline float f_inverse(float f) {
    // CIE: t = f^3 above 6/29, else (f - 16/116) / 7.787 (the constants of colour.py).
    return f > 0.2068966f ? f * f * f : (f - 16.0f / 116.0f) / 7.787f;
}

inline uint8_t compand(const uint8_t* lut, float linear) {
    linear = std::min(std::max(linear, 0.0f), 1.0f);
    return lut[static_cast<int32_t>(linear * 65535.0f + 0.5f)];
}
}  // namespace

void lab_to_rgb8_impl(const float* L, const float* a, const float* b, int64_t n, const float* m,
                      const uint8_t* lut, uint8_t* out, int num_threads) {
    parallel_for(n, 16384, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
            const float fy = (L[i] + 16.0f) / 116.0f;
            const float fx = fy + a[i] / 500.0f;
            const float fz = std::max(fy - b[i] / 200.0f, 0.0f);
            const float x = f_inverse(fx), y = f_inverse(fy), z = f_inverse(fz);
            uint8_t* o = out + 3 * i;
            o[0] = compand(lut, m[0] * x + m[1] * y + m[2] * z);
            o[1] = compand(lut, m[3] * x + m[4] * y + m[5] * z);
            o[2] = compand(lut, m[6] * x + m[7] * y + m[8] * z);
        }
    }, num_threads);
}

}  // namespace colorvid
