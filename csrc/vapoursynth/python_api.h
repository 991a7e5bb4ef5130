// The slice of the CPython C API the VapourSynth plugin uses, resolved at run time.
//
// Why the plugin does not link libpython (and does not even include Python.h):
// - The plugin is autoloaded into every process that creates a VapourSynth core. That process
//   either already runs Python (a `python` executable, or vspipe, whose libvsscript dlopens
//   libpython) or has none at all (a C/C++ host using libvapoursynth directly). Linking
//   libpython would, in the first case, risk binding to a *second* copy of the interpreter
//   when the running one is statically linked into its executable (Debian/Ubuntu python3,
//   python-build-standalone/uv): two interpreters in one process crash at the first object
//   exchanged. In the second case the plugin would start an interpreter nobody initialised,
//   or fail to load at all, and VapourSynth's autoload hides load failures.
// - A process that runs Python extension modules (numpy, torch, vapoursynth's own module)
//   has, by necessity, the CPython symbols in its *global* symbol scope: extension modules
//   are built with undefined Py* symbols that the dynamic linker resolves globally. A static
//   python exports them from the executable (-Xlinker -export-dynamic); a shared one
//   (pyenv, vspipe's dlopen with RTLD_GLOBAL) from libpython. So dlsym(RTLD_DEFAULT, ...)
//   finds exactly the interpreter that is running, and finds nothing in a process without
//   Python, which is the case we turn into a clear error instead of a crash.
// - Only Stable-ABI functions (plus the finalisation probe) are used, so one binary serves
//   every CPython >= 3.12.
#pragma once

#include <cstddef>
#include <string>

namespace colorvid_vs {

struct PyObj;  // opaque: the plugin never looks inside a PyObject
using Py_ssize_t_ = std::ptrdiff_t;

struct PythonApi {
    int (*Py_IsInitialized)();
    int (*Py_IsFinalizing)();  // Py_IsFinalizing (3.13+) or _Py_IsFinalizing (3.12); may be null
    int (*PyGILState_Ensure)();  // returns PyGILState_STATE, an int-sized enum
    void (*PyGILState_Release)(int);
    PyObj* (*PyImport_ImportModule)(const char*);
    PyObj* (*PyObject_GetAttrString)(PyObj*, const char*);
    PyObj* (*PyObject_CallObject)(PyObj*, PyObj*);
    PyObj* (*PyObject_Str)(PyObj*);
    PyObj* (*PyTuple_New)(Py_ssize_t_);
    int (*PyTuple_SetItem)(PyObj*, Py_ssize_t_, PyObj*);  // steals the item
    PyObj* (*PyList_New)(Py_ssize_t_);
    int (*PyList_SetItem)(PyObj*, Py_ssize_t_, PyObj*);  // steals the item
    Py_ssize_t_ (*PySequence_Size)(PyObj*);
    PyObj* (*PySequence_GetItem)(PyObj*, Py_ssize_t_);  // new reference
    PyObj* (*PyDict_New)();
    int (*PyDict_SetItemString)(PyObj*, const char*, PyObj*);  // does not steal
    PyObj* (*PyLong_FromLongLong)(long long);
    long long (*PyLong_AsLongLong)(PyObj*);
    PyObj* (*PyFloat_FromDouble)(double);
    PyObj* (*PyUnicode_FromStringAndSize)(const char*, Py_ssize_t_);
    const char* (*PyUnicode_AsUTF8AndSize)(PyObj*, Py_ssize_t_*);
    PyObj* (*PyMemoryView_FromMemory)(char*, Py_ssize_t_, int);
    PyObj* (*PyErr_Occurred)();
    PyObj* (*PyErr_GetRaisedException)();
    void (*PyErr_Clear)();
    void (*Py_IncRef)(PyObj*);
    void (*Py_DecRef)(PyObj*);

    // True when an interpreter is running and not shutting down: only then may a thread take
    // the GIL (PyGILState_Ensure during finalisation can hang or terminate the thread).
    bool usable() const {
        return Py_IsInitialized() && !(Py_IsFinalizing && Py_IsFinalizing());
    }
};

// The API of the interpreter running in this process, or null with *why set.
const PythonApi* python_api(std::string* why);

// PyMemoryView_FromMemory flags.
constexpr int kPyBufRead = 0x100;
constexpr int kPyBufWrite = 0x200;

// Holds the GIL for a scope (re-entrant: a thread that already holds it may take it again).
class GilScope {
public:
    explicit GilScope(const PythonApi& api) : api_(api), state_(api.PyGILState_Ensure()) {}
    ~GilScope() { api_.PyGILState_Release(state_); }
    GilScope(const GilScope&) = delete;
    GilScope& operator=(const GilScope&) = delete;

private:
    const PythonApi& api_;
    int state_;
};

// An owned reference; must be destroyed while the GIL is held.
class Ref {
public:
    Ref() = default;
    Ref(const PythonApi* api, PyObj* p) : api_(api), p_(p) {}
    Ref(Ref&& o) noexcept : api_(o.api_), p_(o.p_) { o.p_ = nullptr; }
    Ref& operator=(Ref&& o) noexcept {
        reset();
        api_ = o.api_;
        p_ = o.p_;
        o.p_ = nullptr;
        return *this;
    }
    Ref(const Ref&) = delete;
    Ref& operator=(const Ref&) = delete;
    ~Ref() { reset(); }
    void reset() {
        if (p_) api_->Py_DecRef(p_);
        p_ = nullptr;
    }
    PyObj* get() const { return p_; }
    PyObj* release() {
        PyObj* p = p_;
        p_ = nullptr;
        return p;
    }
    explicit operator bool() const { return p_ != nullptr; }

private:
    const PythonApi* api_ = nullptr;
    PyObj* p_ = nullptr;
};

// Takes the pending Python exception (if any) and returns str(exception); clears it.
std::string take_error(const PythonApi& api);

}  // namespace colorvid_vs
