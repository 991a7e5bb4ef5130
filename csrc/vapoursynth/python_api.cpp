// Run-time resolution of the CPython API (see python_api.h for why nothing is linked).
#include "python_api.h"

#include <dlfcn.h>

#include <mutex>

namespace colorvid_vs {

namespace {

template <typename F>
bool resolve(F*& slot, const char* name, std::string* missing) {
    slot = reinterpret_cast<F*>(dlsym(RTLD_DEFAULT, name));
    if (!slot && missing->empty()) *missing = name;
    return slot != nullptr;
}

struct Resolved {
    PythonApi api{};
    std::string why;  // empty when every symbol was found
};

Resolved resolve_all() {
    Resolved r;
    PythonApi& a = r.api;
    std::string missing;
    if (!resolve(a.Py_IsInitialized, "Py_IsInitialized", &missing)) {
        r.why = "this process has no Python interpreter (no Py_IsInitialized symbol is loaded); "
                "colorvid filters run their models in Python, so use them from a .vpy script "
                "(vspipe) or from Python";
        return r;
    }
    // Public from 3.13; 3.12 has the same function with a leading underscore.
    a.Py_IsFinalizing = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "Py_IsFinalizing"));
    if (!a.Py_IsFinalizing)
        a.Py_IsFinalizing = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "_Py_IsFinalizing"));
    resolve(a.PyGILState_Ensure, "PyGILState_Ensure", &missing);
    resolve(a.PyGILState_Release, "PyGILState_Release", &missing);
    resolve(a.PyImport_ImportModule, "PyImport_ImportModule", &missing);
    resolve(a.PyObject_GetAttrString, "PyObject_GetAttrString", &missing);
    resolve(a.PyObject_CallObject, "PyObject_CallObject", &missing);
    resolve(a.PyObject_Str, "PyObject_Str", &missing);
    resolve(a.PyTuple_New, "PyTuple_New", &missing);
    resolve(a.PyTuple_SetItem, "PyTuple_SetItem", &missing);
    resolve(a.PyList_New, "PyList_New", &missing);
    resolve(a.PyList_SetItem, "PyList_SetItem", &missing);
    resolve(a.PySequence_Size, "PySequence_Size", &missing);
    resolve(a.PySequence_GetItem, "PySequence_GetItem", &missing);
    resolve(a.PyDict_New, "PyDict_New", &missing);
    resolve(a.PyDict_SetItemString, "PyDict_SetItemString", &missing);
    resolve(a.PyLong_FromLongLong, "PyLong_FromLongLong", &missing);
    resolve(a.PyLong_AsLongLong, "PyLong_AsLongLong", &missing);
    resolve(a.PyFloat_FromDouble, "PyFloat_FromDouble", &missing);
    resolve(a.PyUnicode_FromStringAndSize, "PyUnicode_FromStringAndSize", &missing);
    resolve(a.PyUnicode_AsUTF8AndSize, "PyUnicode_AsUTF8AndSize", &missing);
    resolve(a.PyMemoryView_FromMemory, "PyMemoryView_FromMemory", &missing);
    resolve(a.PyErr_Occurred, "PyErr_Occurred", &missing);
    resolve(a.PyErr_GetRaisedException, "PyErr_GetRaisedException", &missing);
    resolve(a.PyErr_Clear, "PyErr_Clear", &missing);
    resolve(a.Py_IncRef, "Py_IncRef", &missing);
    resolve(a.Py_DecRef, "Py_DecRef", &missing);
    if (!missing.empty())
        r.why = "the Python in this process lacks " + missing + " (colorvid needs CPython >= 3.12)";
    return r;
}

}  // namespace

const PythonApi* python_api(std::string* why) {
    // Resolved once: the interpreter of a process never changes, and dlsym is not free.
    static std::once_flag once;
    static Resolved resolved;
    std::call_once(once, [] { resolved = resolve_all(); });
    if (!resolved.why.empty()) {
        *why = resolved.why;
        return nullptr;
    }
    if (!resolved.api.Py_IsInitialized()) {
        *why = "this process has not initialised its Python interpreter; colorvid filters run "
               "their models in Python, so use them from a .vpy script (vspipe) or from Python";
        return nullptr;
    }
    if (resolved.api.Py_IsFinalizing && resolved.api.Py_IsFinalizing()) {
        *why = "the Python interpreter of this process is shutting down";
        return nullptr;
    }
    return &resolved.api;
}

std::string take_error(const PythonApi& api) {
    PyObj* exc = api.PyErr_GetRaisedException();
    if (!exc) return "unknown Python error";
    std::string message = "Python error";
    if (PyObj* s = api.PyObject_Str(exc)) {
        Py_ssize_t_ size = 0;
        if (const char* text = api.PyUnicode_AsUTF8AndSize(s, &size)) message.assign(text, size);
        api.Py_DecRef(s);
    }
    api.PyErr_Clear();  // a failing str() may have raised again
    // Dropping the exception frees its traceback, and with it any array that still views a
    // plane buffer, before the caller releases the memoryviews.
    api.Py_DecRef(exc);
    return message;
}

}  // namespace colorvid_vs
