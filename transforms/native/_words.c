/* The word split's per-chunk lookups in one pass (thresher.transforms.text.tokenize).
 *
 * configure(ranges, special)  once, at import: the (lo, hi) code point ranges of the scripts
 *                             written without spaces, and the set of chunks with special cases
 *                             ("cannot" -> "can", "not")
 * tokens(text, memo) -> list of tokens, or the set of chunks to classify first
 *
 *   text     a document
 *   memo     dict: whitespace-separated chunk -> tuple of its tokens (text.py's chunk memo)
 *
 * The text's chunks are those of str.split() (runs of Unicode whitespace). A plain chunk, letters
 * and digits only (str.isalnum) with no character of a no-space script and not a special case, is
 * its own token: the same answer as text.py's _classify, without a memo entry. Any other chunk
 * takes the tokens the memo has for it. When some chunk is not in the memo, the answer is the set
 * of such chunks instead: text.py classifies them in Python (the affix rules), adds them to the
 * memo and asks again.
 *
 * The same tokens as text.py's Python path (split, set difference, a lookup per chunk, a flatten),
 * in one pass with no intermediate list or set of the chunks: 0.25 ms a crawl page against 0.44
 * once the memo holds the page's chunks.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static Py_UCS4 *ranges = NULL; /* lo, hi pairs of the no-space scripts */
static Py_ssize_t nranges = 0;
static PyObject *special = NULL;  /* the special cases (a set or frozenset) */
static Py_ssize_t special_len = 0; /* the longest of them: a longer chunk is not one, no hash needed */

static int in_scripts(Py_UCS4 c) {
    for (Py_ssize_t k = 0; k < nranges; k++)
        if (c >= ranges[2 * k] && c <= ranges[2 * k + 1])
            return 1;
    return 0;
}

static inline int plain_char(Py_UCS4 c) {
    if (c < 128)
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    return Py_UNICODE_ISALNUM(c) && !in_scripts(c);
}

static PyObject *configure(PyObject *self, PyObject *args) {
    PyObject *range_arg, *special_arg;
    if (!PyArg_ParseTuple(args, "OO:configure", &range_arg, &special_arg))
        return NULL;
    if (!PyAnySet_Check(special_arg)) {
        PyErr_SetString(PyExc_TypeError, "configure: special must be a set or frozenset");
        return NULL;
    }
    Py_ssize_t longest = 0;
    PyObject *iter = PyObject_GetIter(special_arg), *key;
    if (iter == NULL)
        return NULL;
    while ((key = PyIter_Next(iter)) != NULL) {
        if (PyUnicode_Check(key) && PyUnicode_GET_LENGTH(key) > longest)
            longest = PyUnicode_GET_LENGTH(key);
        Py_DECREF(key);
    }
    Py_DECREF(iter);
    if (PyErr_Occurred())
        return NULL;
    PyObject *seq = PySequence_Fast(range_arg, "configure takes a sequence of (lo, hi) code points");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    Py_UCS4 *new_ranges = PyMem_Malloc(sizeof(Py_UCS4) * 2 * (n ? n : 1));
    if (new_ranges == NULL) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        unsigned int lo, hi;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, k), "II", &lo, &hi)) {
            PyMem_Free(new_ranges);
            Py_DECREF(seq);
            return NULL;
        }
        new_ranges[2 * k] = lo;
        new_ranges[2 * k + 1] = hi;
    }
    Py_DECREF(seq);
    PyMem_Free(ranges);
    ranges = new_ranges;
    nranges = n;
    PyObject *old = special;
    Py_INCREF(special_arg);
    special = special_arg;
    Py_XDECREF(old);
    special_len = longest;
    Py_RETURN_NONE;
}

static PyObject *tokens(PyObject *self, PyObject *args) {
    PyObject *text, *memo;
    if (!PyArg_ParseTuple(args, "UO!:tokens", &text, &PyDict_Type, &memo))
        return NULL;
    if (special == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "tokens: call configure(ranges, special) first");
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0)
        return NULL;
#endif
    const int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    const Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    PyObject *out = PyList_New(0), *missing = NULL;
    if (out == NULL)
        return NULL;
    Py_ssize_t i = 0;
    for (;;) {
        while (i < n && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i)))
            i++;
        if (i >= n)
            break;
        Py_ssize_t j = i;
        int plain = 1;
        for (; j < n; j++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, j);
            if (Py_UNICODE_ISSPACE(c))
                break;
            if (plain && !plain_char(c))
                plain = 0;
        }
        PyObject *chunk = PyUnicode_Substring(text, i, j);
        i = j;
        if (chunk == NULL)
            goto fail;
        if (plain) {
            int is_special = PyUnicode_GET_LENGTH(chunk) <= special_len ? PySet_Contains(special, chunk) : 0;
            if (is_special < 0) {
                Py_DECREF(chunk);
                goto fail;
            }
            if (!is_special) {
                if (missing == NULL && PyList_Append(out, chunk) < 0) {
                    Py_DECREF(chunk);
                    goto fail;
                }
                Py_DECREF(chunk);
                continue;
            }
        }
        PyObject *toks = PyDict_GetItemWithError(memo, chunk); /* borrowed */
        if (toks != NULL) {
            if (missing == NULL) {
                if (!PyTuple_Check(toks)) {
                    PyErr_SetString(PyExc_TypeError, "tokens: the memo's values must be tuples");
                    Py_DECREF(chunk);
                    goto fail;
                }
                for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(toks); k++)
                    if (PyList_Append(out, PyTuple_GET_ITEM(toks, k)) < 0) {
                        Py_DECREF(chunk);
                        goto fail;
                    }
            }
        } else if (PyErr_Occurred()) {
            Py_DECREF(chunk);
            goto fail;
        } else {
            if (missing == NULL && (missing = PySet_New(NULL)) == NULL) {
                Py_DECREF(chunk);
                goto fail;
            }
            if (PySet_Add(missing, chunk) < 0) {
                Py_DECREF(chunk);
                goto fail;
            }
        }
        Py_DECREF(chunk);
    }
    if (missing != NULL) {
        Py_DECREF(out);
        return missing;
    }
    return out;
fail:
    Py_DECREF(out);
    Py_XDECREF(missing);
    return NULL;
}

static PyMethodDef methods[] = {
    {"tokens", tokens, METH_VARARGS,
     "tokens(text, memo) -> the text's tokens (a list), or the set of its chunks the memo lacks"},
    {"configure", configure, METH_VARARGS,
     "configure(ranges, special): the (lo, hi) code point ranges of the scripts written without spaces, "
     "and the set of chunks with special cases"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_words",
                                    "The word split's per-chunk lookups, compiled.", -1, methods};

PyMODINIT_FUNC PyInit__words(void) { return PyModule_Create(&module); }
