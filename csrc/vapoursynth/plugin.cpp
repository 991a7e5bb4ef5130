// The native VapourSynth API4 plugin behind `core.colorvid.*`.
//
// VapourSynth only lets native plugins register a namespace, so this file is the thin native
// shell of a filter whose work happens in Python (colorvid.core.vapoursynth.filter): it validates
// nothing about colour or models itself. create() hands the clip's format and the user's arguments
// to filter.native_create(), which returns a session object and the output format; getFrame()
// requests frames n-window+1..n, hands their planes to session.process() as memoryviews (no
// copy) together with writable memoryviews of the new frame's planes, then releases every view
// before any frame is freed. The filter is fmParallel: several getFrame calls run at once, each
// takes the GIL only while in Python, and the session batches their model calls.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "VapourSynth4.h"
#include "python_api.h"

namespace colorvid_vs {
namespace {

struct FunctionSpec {
    const char* name;  // the VapourSynth function, also the error prefix colorvid.<name>
    const char* args;
};

// Keyword options shared by every function; Colorize additionally takes the model's name.
#define COLORVID_COMMON_ARGS                                                                     \
    "weights:data:opt;device:data:opt;fp16:int:opt;num_streams:int:opt;batch_size:int:opt;"     \
    "render_size:int:opt;window:int:opt;format:int:opt;preset:data:opt;dtype:data:opt;"

const FunctionSpec kFunctions[] = {
    {"LRCN", "clip:vnode;" COLORVID_COMMON_ARGS},
    {"Zhang", "clip:vnode;" COLORVID_COMMON_ARGS},
    {"Larsson", "clip:vnode;" COLORVID_COMMON_ARGS},
    {"Ensemble", "clip:vnode;" COLORVID_COMMON_ARGS "members:data[]:opt;"},
    {"Colorize", "clip:vnode;model:data;" COLORVID_COMMON_ARGS},
};

// Frame properties the Python side reads (colour description and scene cuts).
const char* const kReadProps[] = {"_Matrix",  "_Range",          "_ColorRange",     "_Primaries",
                                  "_Transfer", "_SceneChangePrev", "_SceneChangeNext"};

struct FilterData {
    const FunctionSpec* fn = nullptr;
    VSNode* node = nullptr;
    VSVideoInfo vi{};  // output
    int window = 1;  // frames n-window+1..n are handed to Python
    bool copy_luma = false;  // plane 0 is shared with the source frame (luma kept exactly)
    std::vector<int> write_planes;  // planes Python writes
    PyObj* session = nullptr;  // owned; touched only with the GIL held
};

std::string prefixed(const FunctionSpec* fn, const std::string& message) {
    const std::string prefix = std::string("colorvid.") + fn->name + ": ";
    if (message.compare(0, prefix.size(), prefix) == 0) return message;
    return prefix + message;
}

PyObj* py_str(const PythonApi& py, const char* s, size_t n) {
    return py.PyUnicode_FromStringAndSize(s, static_cast<Py_ssize_t_>(n));
}

// The user's arguments (every key but the clip) as a dict of int / float / str / lists.
PyObj* args_to_dict(const PythonApi& py, const VSMap* in, const VSAPI* vsapi) {
    PyObj* d = py.PyDict_New();
    if (!d) return nullptr;
    const int keys = vsapi->mapNumKeys(in);
    for (int k = 0; k < keys; ++k) {
        const char* key = vsapi->mapGetKey(in, k);
        const int type = vsapi->mapGetType(in, key);
        if (type != ptInt && type != ptFloat && type != ptData) continue;  // the clip
        const int count = vsapi->mapNumElements(in, key);
        PyObj* list = py.PyList_New(count);
        if (!list) return py.Py_DecRef(d), nullptr;
        for (int i = 0; i < count; ++i) {
            int err = 0;
            PyObj* v = nullptr;
            if (type == ptInt) {
                v = py.PyLong_FromLongLong(vsapi->mapGetInt(in, key, i, &err));
            } else if (type == ptFloat) {
                v = py.PyFloat_FromDouble(vsapi->mapGetFloat(in, key, i, &err));
            } else {
                const char* data = vsapi->mapGetData(in, key, i, &err);
                v = py_str(py, data, static_cast<size_t>(vsapi->mapGetDataSize(in, key, i, &err)));
            }
            if (!v) return py.Py_DecRef(list), py.Py_DecRef(d), nullptr;
            py.PyList_SetItem(list, i, v);
        }
        const int rc = py.PyDict_SetItemString(d, key, list);
        py.Py_DecRef(list);
        if (rc != 0) return py.Py_DecRef(d), nullptr;
    }
    return d;
}

bool set_int(const PythonApi& py, PyObj* d, const char* key, long long value) {
    PyObj* v = py.PyLong_FromLongLong(value);
    if (!v) return false;
    const int rc = py.PyDict_SetItemString(d, key, v);
    py.Py_DecRef(v);
    return rc == 0;
}

PyObj* video_info_to_dict(const PythonApi& py, const VSVideoInfo* vi) {
    PyObj* d = py.PyDict_New();
    if (!d) return nullptr;
    const VSVideoFormat& f = vi->format;
    bool ok = set_int(py, d, "color_family", f.colorFamily) &&
              set_int(py, d, "sample_type", f.sampleType) &&
              set_int(py, d, "bits", f.bitsPerSample) &&
              set_int(py, d, "sub_w", f.subSamplingW) && set_int(py, d, "sub_h", f.subSamplingH) &&
              set_int(py, d, "num_planes", f.numPlanes) && set_int(py, d, "width", vi->width) &&
              set_int(py, d, "height", vi->height) && set_int(py, d, "num_frames", vi->numFrames);
    if (!ok) return py.Py_DecRef(d), nullptr;
    return d;
}

// Calls module.native_create(function, info, args) -> (session, spec ints). Sets *error.
bool python_create(const PythonApi& py, FilterData* d, const VSMap* in, const VSVideoInfo* vi,
                   const VSAPI* vsapi, std::vector<long long>* spec, std::string* error) {
    Ref module(&py, py.PyImport_ImportModule("colorvid.core.vapoursynth.filter"));
    if (!module) {
        *error = "cannot import the colorvid Python package in this process (" +
                 take_error(py) + "); install colorvid into the Python that runs the script";
        return false;
    }
    Ref create(&py, py.PyObject_GetAttrString(module.get(), "native_create"));
    Ref info(&py, video_info_to_dict(py, vi));
    Ref args(&py, args_to_dict(py, in, vsapi));
    Ref call_args(&py, py.PyTuple_New(3));
    PyObj* name = py_str(py, d->fn->name, std::strlen(d->fn->name));
    if (!create || !info || !args || !call_args || !name) {
        if (name) py.Py_DecRef(name);
        *error = take_error(py);
        return false;
    }
    py.PyTuple_SetItem(call_args.get(), 0, name);
    py.PyTuple_SetItem(call_args.get(), 1, info.release());
    py.PyTuple_SetItem(call_args.get(), 2, args.release());
    Ref result(&py, py.PyObject_CallObject(create.get(), call_args.get()));
    if (!result) {
        *error = take_error(py);
        return false;
    }
    Ref session(&py, py.PySequence_GetItem(result.get(), 0));
    Ref spec_seq(&py, py.PySequence_GetItem(result.get(), 1));
    const Py_ssize_t_ n = spec_seq ? py.PySequence_Size(spec_seq.get()) : -1;
    for (Py_ssize_t_ i = 0; i < n; ++i) {
        Ref item(&py, py.PySequence_GetItem(spec_seq.get(), i));
        spec->push_back(item ? py.PyLong_AsLongLong(item.get()) : -1);
    }
    if (!session || n != 8 || py.PyErr_Occurred()) {
        *error = "internal error: native_create must return (session, 8 ints)";
        if (py.PyErr_Occurred()) *error += ": " + take_error(py);
        return false;
    }
    d->session = session.release();
    return true;
}

void free_session(FilterData* d) {
    if (!d->session) return;
    std::string why;
    // A session outliving the interpreter (core freed after Python finalised) is leaked, not
    // touched: there is no GIL left to take.
    if (const PythonApi* py = python_api(&why)) {
        GilScope gil(*py);
        Ref close(py, py->PyObject_GetAttrString(d->session, "close"));
        if (close) Ref(py, py->PyObject_CallObject(close.get(), nullptr));
        if (py->PyErr_Occurred()) py->PyErr_Clear();
        py->Py_DecRef(d->session);
    }
    d->session = nullptr;
}

void VS_CC filter_free(void* instance, VSCore*, const VSAPI* vsapi) {
    auto* d = static_cast<FilterData*>(instance);
    free_session(d);
    vsapi->freeNode(d->node);
    delete d;
}

PyObj* frame_props_to_dict(const PythonApi& py, const VSFrame* f, const VSAPI* vsapi) {
    PyObj* props = py.PyDict_New();
    if (!props) return nullptr;
    const VSMap* m = vsapi->getFramePropertiesRO(f);
    for (const char* key : kReadProps) {
        int err = 0;
        const int64_t v = vsapi->mapGetInt(m, key, 0, &err);
        if (!err && !set_int(py, props, key, v)) return py.Py_DecRef(props), nullptr;
    }
    return props;
}

// Builds the frames / dst arguments, calls session.process, applies the returned props.
// Every memoryview created is appended to *views so the caller can release them.
bool python_process(const PythonApi& py, FilterData* d, int n, int first,
                    const std::vector<const VSFrame*>& src, VSFrame* dst, const VSAPI* vsapi,
                    std::vector<PyObj*>* views, std::string* error) {
    const int num_planes = d->vi.format.numPlanes;
    Ref frames(&py, py.PyList_New(static_cast<Py_ssize_t_>(src.size())));
    if (!frames) return *error = take_error(py), false;
    for (size_t i = 0; i < src.size(); ++i) {
        const VSFrame* f = src[i];
        const int planes = vsapi->getVideoFrameFormat(f)->numPlanes;
        // Each container is owned by its parent as soon as it exists, so an error part-way
        // leaks nothing: dropping `frames` frees all of it.
        PyObj* tuple = py.PyTuple_New(4);
        if (!tuple) return *error = take_error(py), false;
        py.PyList_SetItem(frames.get(), static_cast<Py_ssize_t_>(i), tuple);
        PyObj* mvs = py.PyList_New(planes);
        PyObj* strides = py.PyList_New(planes);
        PyObj* props = frame_props_to_dict(py, f, vsapi);
        py.PyTuple_SetItem(tuple, 0, py.PyLong_FromLongLong(first + static_cast<int>(i)));
        if (mvs) py.PyTuple_SetItem(tuple, 1, mvs);
        if (strides) py.PyTuple_SetItem(tuple, 2, strides);
        if (props) py.PyTuple_SetItem(tuple, 3, props);
        if (!mvs || !strides || !props) return *error = take_error(py), false;
        for (int p = 0; p < planes; ++p) {
            const ptrdiff_t stride = vsapi->getStride(f, p);
            const Py_ssize_t_ size = stride * vsapi->getFrameHeight(f, p);
            auto* ptr = reinterpret_cast<char*>(const_cast<uint8_t*>(vsapi->getReadPtr(f, p)));
            PyObj* mv = py.PyMemoryView_FromMemory(ptr, size, kPyBufRead);
            if (!mv) return *error = take_error(py), false;
            views->push_back(mv);
            py.Py_IncRef(mv);  // one reference for the list, one kept in *views
            py.PyList_SetItem(mvs, p, mv);
            py.PyList_SetItem(strides, p, py.PyLong_FromLongLong(stride));
        }
    }
    Ref dst_list(&py, py.PyList_New(static_cast<Py_ssize_t_>(d->write_planes.size())));
    if (!dst_list) return *error = take_error(py), false;
    for (size_t i = 0; i < d->write_planes.size(); ++i) {
        const int p = d->write_planes[i];
        if (p >= num_planes) return *error = "internal error: bad plane index", false;
        const ptrdiff_t stride = vsapi->getStride(dst, p);
        uint8_t* ptr = vsapi->getWritePtr(dst, p);
        PyObj* mv = py.PyMemoryView_FromMemory(reinterpret_cast<char*>(ptr),
                                               stride * vsapi->getFrameHeight(dst, p), kPyBufWrite);
        if (!mv) return *error = take_error(py), false;
        views->push_back(mv);
        py.Py_IncRef(mv);
        PyObj* tuple = py.PyTuple_New(3);
        if (!tuple) return py.Py_DecRef(mv), *error = take_error(py), false;
        py.PyTuple_SetItem(tuple, 0, py.PyLong_FromLongLong(p));
        py.PyTuple_SetItem(tuple, 1, mv);
        py.PyTuple_SetItem(tuple, 2, py.PyLong_FromLongLong(stride));
        py.PyList_SetItem(dst_list.get(), static_cast<Py_ssize_t_>(i), tuple);
    }
    Ref process(&py, py.PyObject_GetAttrString(d->session, "process"));
    Ref call_args(&py, py.PyTuple_New(3));
    if (!process || !call_args) return *error = take_error(py), false;
    py.PyTuple_SetItem(call_args.get(), 0, py.PyLong_FromLongLong(n));
    py.PyTuple_SetItem(call_args.get(), 1, frames.release());
    py.PyTuple_SetItem(call_args.get(), 2, dst_list.release());
    Ref result(&py, py.PyObject_CallObject(process.get(), call_args.get()));
    if (!result) return *error = take_error(py), false;
    // result: (list of (key, int) to set, list of keys to delete)
    Ref to_set(&py, py.PySequence_GetItem(result.get(), 0));
    Ref to_delete(&py, py.PySequence_GetItem(result.get(), 1));
    if (!to_set || !to_delete) return *error = take_error(py), false;
    VSMap* props = vsapi->getFramePropertiesRW(dst);
    const Py_ssize_t_ n_del = py.PySequence_Size(to_delete.get());
    for (Py_ssize_t_ i = 0; i < n_del; ++i) {
        Ref key(&py, py.PySequence_GetItem(to_delete.get(), i));
        Py_ssize_t_ size = 0;
        const char* k = key ? py.PyUnicode_AsUTF8AndSize(key.get(), &size) : nullptr;
        if (!k) return *error = take_error(py), false;
        vsapi->mapDeleteKey(props, k);
    }
    const Py_ssize_t_ n_set = py.PySequence_Size(to_set.get());
    for (Py_ssize_t_ i = 0; i < n_set; ++i) {
        Ref pair(&py, py.PySequence_GetItem(to_set.get(), i));
        Ref key(&py, pair ? py.PySequence_GetItem(pair.get(), 0) : nullptr);
        Ref value(&py, pair ? py.PySequence_GetItem(pair.get(), 1) : nullptr);
        Py_ssize_t_ size = 0;
        const char* k = key ? py.PyUnicode_AsUTF8AndSize(key.get(), &size) : nullptr;
        const long long v = value ? py.PyLong_AsLongLong(value.get()) : -1;
        if (!k || py.PyErr_Occurred()) return *error = take_error(py), false;
        vsapi->mapSetInt(props, k, v, maReplace);
    }
    return true;
}

// Releases the memoryviews; false when Python still holds a view into a plane (a bug), in
// which case the caller must keep the frames alive rather than free memory Python can reach.
bool release_views(const PythonApi& py, std::vector<PyObj*>* views) {
    bool all = true;
    for (PyObj* mv : *views) {
        Ref release(&py, py.PyObject_GetAttrString(mv, "release"));
        Ref done(&py, release ? py.PyObject_CallObject(release.get(), nullptr) : nullptr);
        if (!done) {
            all = false;
            py.PyErr_Clear();
        }
        py.Py_DecRef(mv);
    }
    views->clear();
    return all;
}

const VSFrame* VS_CC filter_get_frame(int n, int activation, void* instance, void**,
                                      VSFrameContext* ctx, VSCore* core, const VSAPI* vsapi) {
    auto* d = static_cast<FilterData*>(instance);
    const int first = n - d->window + 1 < 0 ? 0 : n - d->window + 1;
    if (activation == arInitial) {
        for (int i = first; i <= n; ++i) vsapi->requestFrameFilter(i, d->node, ctx);
        return nullptr;
    }
    if (activation != arAllFramesReady) return nullptr;

    std::vector<const VSFrame*> src;
    for (int i = first; i <= n; ++i) src.push_back(vsapi->getFrameFilter(i, d->node, ctx));
    auto free_src = [&] {
        for (const VSFrame* f : src) vsapi->freeFrame(f);
    };
    std::string error;
    for (const VSFrame* f : src) {
        if (vsapi->getReadPtr(f, 0) == nullptr) {
            error = "frame " + std::to_string(n) + " of the input is GPU-resident; colorvid "
                    "reads frames on the CPU: insert core.std.GPUDownload before it";
            break;
        }
    }
    std::string why;
    const PythonApi* py = error.empty() ? python_api(&why) : nullptr;
    if (error.empty() && !py) error = why;
    if (!error.empty()) {
        vsapi->setFilterError(prefixed(d->fn, error).c_str(), ctx);
        free_src();
        return nullptr;
    }

    const VSFrame* current = src.back();
    VSFrame* dst;
    if (d->copy_luma) {
        const VSFrame* plane_src[3] = {current, nullptr, nullptr};
        const int planes[3] = {0, 1, 2};
        dst = vsapi->newVideoFrame2(&d->vi.format, d->vi.width, d->vi.height, plane_src, planes,
                                    current, core);
    } else {
        dst = vsapi->newVideoFrame(&d->vi.format, d->vi.width, d->vi.height, current, core);
    }

    bool ok, released;
    {
        GilScope gil(*py);
        std::vector<PyObj*> views;
        ok = python_process(*py, d, n, first, src, dst, vsapi, &views, &error);
        released = release_views(*py, &views);
    }
    if (!released) {
        // Leak rather than free planes that a Python object still points into.
        vsapi->setFilterError(prefixed(d->fn, "internal error: a plane buffer is still "
                                              "referenced from Python after processing").c_str(),
                              ctx);
        return nullptr;
    }
    free_src();
    if (!ok) {
        vsapi->freeFrame(dst);
        vsapi->setFilterError(prefixed(d->fn, error).c_str(), ctx);
        return nullptr;
    }
    return dst;
}

void VS_CC filter_create(const VSMap* in, VSMap* out, void* user_data, VSCore* core,
                         const VSAPI* vsapi) {
    auto* d = new FilterData();
    d->fn = static_cast<const FunctionSpec*>(user_data);
    d->node = vsapi->mapGetNode(in, "clip", 0, nullptr);
    auto fail = [&](const std::string& message) {
        vsapi->mapSetError(out, prefixed(d->fn, message).c_str());
        free_session(d);
        vsapi->freeNode(d->node);
        delete d;
    };
    // GPU-resident nodes exist from API 4.3; an older core never hands them out.
    if (vsapi->getAPIVersion() >= VS_MAKE_VERSION(4, 3) &&
        vsapi->getNodeResidency(d->node) == nrGPU)
        return fail("clip is GPU-resident; colorvid reads frames on the CPU: insert "
                    "core.std.GPUDownload(clip) before it");

    std::string why;
    const PythonApi* py = python_api(&why);
    if (!py) return fail(why);

    const VSVideoInfo* vi = vsapi->getVideoInfo(d->node);
    std::vector<long long> spec;
    std::string error;
    bool ok;
    {
        GilScope gil(*py);
        ok = python_create(*py, d, in, vi, vsapi, &spec, &error);
    }
    if (!ok) return fail(error);

    // spec: colour family, sample type, bits, sub_w, sub_h, window, copy_luma, write mask
    d->vi = *vi;
    if (!vsapi->queryVideoFormat(&d->vi.format, static_cast<int>(spec[0]),
                                 static_cast<int>(spec[1]), static_cast<int>(spec[2]),
                                 static_cast<int>(spec[3]), static_cast<int>(spec[4]), core))
        return fail("internal error: invalid output format from native_create");
    d->window = static_cast<int>(spec[5]) < 1 ? 1 : static_cast<int>(spec[5]);
    d->copy_luma = spec[6] != 0;
    for (int p = 0; p < 3; ++p)
        if (spec[7] & (1 << p)) d->write_planes.push_back(p);

    // Frame n needs only input frame n unless a temporal window looks back.
    const VSFilterDependency deps[] = {{d->node, d->window > 1 ? rpGeneral : rpStrictSpatial}};
    vsapi->createVideoFilter(out, d->fn->name, &d->vi, filter_get_frame, filter_free, fmParallel,
                             deps, 1, d, core);
}

}  // namespace
}  // namespace colorvid_vs

VS_EXTERNAL_API(void) VapourSynthPluginInit2(VSPlugin* plugin, const VSPLUGINAPI* vspapi) {
    using namespace colorvid_vs;
    // Declares API 4.0 so the plugin loads on any API4 core; 4.3 calls are guarded at run time.
    vspapi->configPlugin("org.colorvid.colorvid", "colorvid",
                         "colorvid: automatic colorization of black-and-white video",
                         VS_MAKE_VERSION(0, 1), VS_MAKE_VERSION(4, 0), 0, plugin);
    for (const FunctionSpec& fn : kFunctions)
        vspapi->registerFunction(fn.name, fn.args, "clip:vnode;", filter_create,
                                 const_cast<FunctionSpec*>(&fn), plugin);
}
