// pybind11 entry point of colorvid.kernels._cpu. Functions take numpy arrays (zero-copy views of
// CPU tensors via tensor.numpy()) and check dtype, contiguity and shape themselves: py::array_t
// with forcecast would silently copy, and a silent copy of an output buffer loses the result.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <vector>

#include "frames.h"
#include "nearest_bin.h"
#include "parallel.h"
#include "rebalanced_ce.h"
#include "soft_encode.h"

namespace py = pybind11;

namespace {

template <typename T>
py::array_t<int64_t> nearest_bin_typed(py::array ab, py::array centres, int num_threads) {
    if (ab.ndim() != 4 || ab.shape(1) != 2)
        throw py::value_error("nearest_bin: ab must have shape (B, 2, H, W), got ndim " +
                              std::to_string(ab.ndim()));
    if (centres.ndim() != 2 || centres.shape(1) != 2)
        throw py::value_error("nearest_bin: centres must have shape (Q, 2)");
    if (!(ab.flags() & py::array::c_style) || !(centres.flags() & py::array::c_style))
        throw py::value_error("nearest_bin: ab and centres must be C-contiguous");
    const int64_t B = ab.shape(0), H = ab.shape(2), W = ab.shape(3), HW = H * W;
    const int64_t Q = centres.shape(0);
    py::array_t<int64_t> out({B, H, W});
    const T* ab_ptr = static_cast<const T*>(ab.data());
    const T* c_ptr = static_cast<const T*>(centres.data());
    int64_t* o_ptr = out.mutable_data();
    {
        py::gil_scoped_release release;
        for (int64_t bi = 0; bi < B; ++bi) {
            const T* a = ab_ptr + bi * 2 * HW;
            colorvid::nearest_bin_impl<T>(a, a + HW, HW, c_ptr, Q, o_ptr + bi * HW, num_threads);
        }
    }
    return out;
}

py::array_t<int64_t> nearest_bin(py::array ab, py::array centres, int num_threads) {
    if (!ab.dtype().is(centres.dtype()))
        throw py::type_error("nearest_bin: ab and centres must have the same dtype");
    if (ab.dtype().is(py::dtype::of<float>()))
        return nearest_bin_typed<float>(ab, centres, num_threads);
    if (ab.dtype().is(py::dtype::of<double>()))
        return nearest_bin_typed<double>(ab, centres, num_threads);
    throw py::type_error("nearest_bin: ab must be float32 or float64, got " +
                         std::string(py::str(ab.dtype())));
}

// Checks one buffer of the soft-encode / loss bindings: dtype, C-contiguity, shape and, for
// outputs, writability. `who` and `name` make the message point at the argument.
void check_buffer(const char* who, const char* name, const py::array& arr, const py::dtype& dtype,
                  const std::vector<int64_t>& shape, bool writable) {
    std::string prefix = std::string(who) + ": " + name;
    if (!arr.dtype().is(dtype))
        throw py::type_error(prefix + " must have dtype " + std::string(py::str(dtype)) + ", got " +
                             std::string(py::str(arr.dtype())));
    if (!(arr.flags() & py::array::c_style))
        throw py::value_error(prefix + " must be C-contiguous");
    if (writable && !arr.writeable()) throw py::value_error(prefix + " must be writable");
    bool same = arr.ndim() == static_cast<py::ssize_t>(shape.size());
    for (size_t i = 0; same && i < shape.size(); ++i) same = arr.shape(i) == shape[i];
    if (!same) {
        std::string want = "(", got = "(";
        for (size_t i = 0; i < shape.size(); ++i)
            want += std::to_string(shape[i]) + (i + 1 < shape.size() ? ", " : "");
        for (py::ssize_t i = 0; i < arr.ndim(); ++i)
            got += std::to_string(arr.shape(i)) + (i + 1 < arr.ndim() ? ", " : "");
        throw py::value_error(prefix + " must have shape " + want + "), got " + got + ")");
    }
}

void check_k(const char* who, int k, int64_t q) {
    if (k < 1 || k > q)
        throw py::value_error(std::string(who) + ": k must be in [1, " + std::to_string(q) +
                              "], got " + std::to_string(k));
}

template <typename T>
void soft_encode_typed(py::array ab, py::array centres, int k, double sigma, py::array idx,
                       py::array weight, int num_threads, bool allow_avx2) {
    const char* who = "soft_encode";
    if (ab.ndim() != 4 || ab.shape(1) != 2)
        throw py::value_error("soft_encode: ab must have shape (B, 2, H, W)");
    if (centres.ndim() != 2 || centres.shape(1) != 2)
        throw py::value_error("soft_encode: centres must have shape (Q, 2)");
    const int64_t B = ab.shape(0), H = ab.shape(2), W = ab.shape(3), Q = centres.shape(0);
    check_k(who, k, Q);
    const py::dtype dt = py::dtype::of<T>();
    check_buffer(who, "ab", ab, dt, {B, 2, H, W}, false);
    check_buffer(who, "centres", centres, dt, {Q, 2}, false);
    check_buffer(who, "idx", idx, py::dtype::of<int64_t>(), {B, k, H, W}, true);
    check_buffer(who, "weight", weight, dt, {B, k, H, W}, true);
    const T* ab_ptr = static_cast<const T*>(ab.data());
    const T* c_ptr = static_cast<const T*>(centres.data());
    int64_t* i_ptr = static_cast<int64_t*>(idx.mutable_data());
    T* w_ptr = static_cast<T*>(weight.mutable_data());
    py::gil_scoped_release release;
    colorvid::soft_encode_impl<T>(ab_ptr, B, H * W, c_ptr, Q, k, static_cast<T>(sigma), i_ptr,
                                  w_ptr, num_threads, allow_avx2);
}

void soft_encode(py::array ab, py::array centres, int k, double sigma, py::array idx,
                 py::array weight, int num_threads, bool allow_avx2) {
    if (ab.dtype().is(py::dtype::of<float>()))
        return soft_encode_typed<float>(ab, centres, k, sigma, idx, weight, num_threads,
                                        allow_avx2);
    if (ab.dtype().is(py::dtype::of<double>()))
        return soft_encode_typed<double>(ab, centres, k, sigma, idx, weight, num_threads,
                                         allow_avx2);
    throw py::type_error("soft_encode: ab must be float32 or float64, got " +
                         std::string(py::str(ab.dtype())));
}

template <typename T>
void rebalanced_ce_typed(py::array logits, py::array ab, py::array centres,
                         std::optional<py::array> class_weights, int k, double sigma, double scale,
                         py::array loss, std::optional<py::array> grad, int num_threads,
                         bool allow_avx2) {
    const char* who = "rebalanced_ce";
    if (logits.ndim() != 4)
        throw py::value_error("rebalanced_ce: logits must have shape (B, Q, H, W)");
    if (centres.ndim() != 2 || centres.shape(1) != 2)
        throw py::value_error("rebalanced_ce: centres must have shape (Q, 2)");
    const int64_t B = logits.shape(0), Q = logits.shape(1);
    const int64_t H = logits.shape(2), W = logits.shape(3);
    check_k(who, k, Q);
    const py::dtype dt = py::dtype::of<T>();
    check_buffer(who, "logits", logits, dt, {B, Q, H, W}, false);
    check_buffer(who, "ab", ab, dt, {B, 2, H, W}, false);
    check_buffer(who, "centres", centres, dt, {Q, 2}, false);
    check_buffer(who, "loss", loss, dt, {B, H, W}, true);
    const T* w_ptr = nullptr;
    if (class_weights) {
        check_buffer(who, "class_weights", *class_weights, dt, {Q}, false);
        w_ptr = static_cast<const T*>(class_weights->data());
    }
    T* g_ptr = nullptr;
    if (grad) {
        check_buffer(who, "grad", *grad, dt, {B, Q, H, W}, true);
        g_ptr = static_cast<T*>(grad->mutable_data());
    }
    const T* x_ptr = static_cast<const T*>(logits.data());
    const T* ab_ptr = static_cast<const T*>(ab.data());
    const T* c_ptr = static_cast<const T*>(centres.data());
    T* l_ptr = static_cast<T*>(loss.mutable_data());
    py::gil_scoped_release release;
    colorvid::rebalanced_ce_impl<T>(x_ptr, ab_ptr, B, Q, H * W, c_ptr, w_ptr, k,
                                    static_cast<T>(sigma), static_cast<T>(scale), l_ptr, g_ptr,
                                    num_threads, allow_avx2);
}

void rebalanced_ce(py::array logits, py::array ab, py::array centres,
                   std::optional<py::array> class_weights, int k, double sigma, double scale,
                   py::array loss, std::optional<py::array> grad, int num_threads,
                   bool allow_avx2) {
    if (logits.dtype().is(py::dtype::of<float>()))
        return rebalanced_ce_typed<float>(logits, ab, centres, class_weights, k, sigma, scale,
                                          loss, grad, num_threads, allow_avx2);
    if (logits.dtype().is(py::dtype::of<double>()))
        return rebalanced_ce_typed<double>(logits, ab, centres, class_weights, k, sigma, scale,
                                           loss, grad, num_threads, allow_avx2);
    throw py::type_error("rebalanced_ce: logits must be float32 or float64, got " +
                         std::string(py::str(logits.dtype())));
}

}  // namespace

// Lab planes -> RGB uint8 frames: L (B, H, W), ab (B, 2, h, w) float32 C-contiguous, m (3, 3)
// float32, lut (65536,) uint8 -> (B, H, W, 3) uint8. ab at another size than L (the model's
// resolution) is upsampled bilinearly in the same pass.
py::array_t<uint8_t> lab_to_rgb8(py::array L, py::array ab, py::array m, py::array lut,
                                 int num_threads, bool simd) {
    auto f32 = py::dtype::of<float>();
    for (auto* arr : {&L, &ab, &m}) {
        if (!arr->dtype().is(f32) || !(arr->flags() & py::array::c_style))
            throw py::type_error("lab_to_rgb8: L, ab and m must be C-contiguous float32 arrays");
    }
    if (!lut.dtype().is(py::dtype::of<uint8_t>()) || lut.ndim() != 1 || lut.shape(0) != 65536)
        throw py::value_error("lab_to_rgb8: lut must be a uint8 array of 65536 entries");
    if (L.ndim() != 3 || ab.ndim() != 4 || ab.shape(1) != 2 || ab.shape(0) != L.shape(0) ||
        ab.shape(2) < 1 || ab.shape(3) < 1)
        throw py::value_error("lab_to_rgb8: L must be (B, H, W) and ab (B, 2, h, w)");
    if (m.ndim() != 2 || m.shape(0) != 3 || m.shape(1) != 3)
        throw py::value_error("lab_to_rgb8: m must be (3, 3)");
    const int64_t B = L.shape(0), H = L.shape(1), W = L.shape(2), HW = H * W;
    const int64_t h = ab.shape(2), w = ab.shape(3), hw = h * w;
    py::array_t<uint8_t> out({B, H, W, int64_t(3)});
    const float* l_ptr = static_cast<const float*>(L.data());
    const float* ab_ptr = static_cast<const float*>(ab.data());
    const float* m_ptr = static_cast<const float*>(m.data());
    const uint8_t* lut_ptr = static_cast<const uint8_t*>(lut.data());
    uint8_t* o_ptr = out.mutable_data();
    {
        py::gil_scoped_release release;
        for (int64_t bi = 0; bi < B; ++bi) {
            const float* a = ab_ptr + bi * 2 * hw;
            colorvid::lab_to_rgb8_upsample_impl(l_ptr + bi * HW, H, W, a, a + hw, h, w, m_ptr,
                                                lut_ptr, o_ptr + bi * HW * 3, num_threads, simd);
        }
    }
    return out;
}

// RGB or grey uint8 frames (B, H, W, C), C in {1, 3}, C-contiguous, y_tables (3, 256) float32
// -> Lab L (B, 1, H, W) float32.
py::array_t<float> rgb8_to_l(py::array rgb, py::array y_tables, int num_threads) {
    if (!rgb.dtype().is(py::dtype::of<uint8_t>()) || !(rgb.flags() & py::array::c_style) ||
        rgb.ndim() != 4 || (rgb.shape(3) != 1 && rgb.shape(3) != 3))
        throw py::value_error("rgb8_to_l: rgb must be a C-contiguous uint8 array (B, H, W, 1|3)");
    if (!y_tables.dtype().is(py::dtype::of<float>()) || !(y_tables.flags() & py::array::c_style)
        || y_tables.ndim() != 2 || y_tables.shape(0) != 3 || y_tables.shape(1) != 256)
        throw py::value_error("rgb8_to_l: y_tables must be a C-contiguous float32 (3, 256) array");
    const int64_t B = rgb.shape(0), H = rgb.shape(1), W = rgb.shape(2);
    const int channels = static_cast<int>(rgb.shape(3));
    py::array_t<float> out({B, int64_t(1), H, W});
    const uint8_t* in_ptr = static_cast<const uint8_t*>(rgb.data());
    const float* t_ptr = static_cast<const float*>(y_tables.data());
    float* o_ptr = out.mutable_data();
    {
        py::gil_scoped_release release;
        colorvid::rgb8_to_l_impl(in_ptr, B * H * W, channels, t_ptr, o_ptr, num_threads);
    }
    return out;
}

PYBIND11_MODULE(_cpu, m) {
    m.doc() = "colorvid CPU kernels (pybind11, multi-threaded across pixels)";
    m.def("nearest_bin", &nearest_bin, py::arg("ab"), py::arg("centres"),
          py::arg("num_threads") = 0,
          "Index of the nearest bin centre for every pixel of ab (B, 2, H, W) -> (B, H, W) int64.");
    m.def("soft_encode", &soft_encode, py::arg("ab"), py::arg("centres"), py::arg("k"),
          py::arg("sigma"), py::arg("idx"), py::arg("weight"), py::arg("num_threads") = 0,
          py::arg("allow_avx2") = true,
          "k nearest bins of ab (B, 2, H, W) and their normalised Gaussian weights, written "
          "into idx (B, k, H, W) int64 and weight (B, k, H, W). allow_avx2=False: the scalar "
          "search (the AVX2 one, 8 pixels at once, gives the same bytes).");
    m.def("rebalanced_ce", &rebalanced_ce, py::arg("logits"), py::arg("ab"), py::arg("centres"),
          py::arg("class_weights"), py::arg("k"), py::arg("sigma"), py::arg("scale"),
          py::arg("loss"), py::arg("grad"), py::arg("num_threads") = 0,
          py::arg("allow_avx2") = true,
          "Fused soft-encode + class-rebalanced cross-entropy: per-pixel loss into loss "
          "(B, H, W) (NaN where a logit is not finite) and, when grad is given, "
          "scale * v * (softmax - Z) into grad (B, Q, H, W).");
    m.def("rebalanced_ce_uses_avx2", &colorvid::rebalanced_ce_uses_avx2,
          "Whether rebalanced_ce runs its AVX2 build on this CPU (else the SSE2 baseline).");
    m.def("lab_to_rgb8", &lab_to_rgb8, py::arg("L"), py::arg("ab"), py::arg("m"), py::arg("lut"),
          py::arg("num_threads") = 0, py::arg("simd") = true,
          "Lab planes -> RGB uint8 frames (B, H, W, 3), with a companding look-up table; ab at "
          "a lower resolution than L is upsampled bilinearly in the same pass. simd=False runs "
          "the scalar build (the AVX2 one gives identical bytes).");
    m.def("rgb8_to_l", &rgb8_to_l, py::arg("rgb"), py::arg("y_tables"),
          py::arg("num_threads") = 0,
          "RGB or grey uint8 frames (B, H, W, 1|3) -> Lab L (B, 1, H, W) float32.");
    m.def("default_num_threads", &colorvid::default_num_threads,
          "Worker threads the kernels use (COLORVID_NUM_THREADS or the hardware concurrency).");
}
