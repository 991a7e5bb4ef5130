// pybind11 entry point of colorvid.kernels._cpu. Functions take numpy arrays (zero-copy views of
// CPU tensors via tensor.numpy()) and check dtype, contiguity and shape themselves: py::array_t
// with forcecast would silently copy, and a silent copy of an output buffer loses the result.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "nearest_bin.h"
#include "parallel.h"

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

}  // namespace

PYBIND11_MODULE(_cpu, m) {
    m.doc() = "colorvid CPU kernels (pybind11, multi-threaded across pixels)";
    m.def("nearest_bin", &nearest_bin, py::arg("ab"), py::arg("centres"),
          py::arg("num_threads") = 0,
          "Index of the nearest bin centre for every pixel of ab (B, 2, H, W) -> (B, H, W) int64.");
    m.def("default_num_threads", &colorvid::default_num_threads,
          "Worker threads the kernels use (COLORVID_NUM_THREADS or the hardware concurrency).");
}
