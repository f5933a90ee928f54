/* Gopher's n-gram repetition measures in one pass per size (thresher.transforms.filters.gopher).
 *
 * repetition(words, tops, dups) -> (top_chars, dup_chars), tuples in the order of tops, dups
 *
 *   words a document's words (a list of str)
 *   tops  sizes n whose most frequent n-gram's characters are wanted: (chars(i, n) + n - 1) * count,
 *         i the first position of the most frequent n-gram (ties: the one seen first), chars(i, n)
 *         the characters of its words
 *   dups  sizes n whose duplicated n-grams' characters are wanted: a scan that counts an n-gram
 *         seen before and jumps past it (Gopher's definition, as datatrove implements it)
 *
 * A word's id is its Python hash; the n-gram at i hashes ids[i..i+n) as
 * h_n[i] = h_(n-1)[i] * 1000003 + ids[i+n-1] (wrapping 64-bit arithmetic): the same hashes as
 * NGrams in transforms/text.py, so this and the numpy version there give the same answers. Pure C
 * and the CPython API, no numpy headers: it builds wherever a C compiler does, and thresher falls
 * back to numpy where none did.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MULT 1000003ULL

typedef struct {
    uint64_t key;
    Py_ssize_t first; /* first position of the n-gram */
    Py_ssize_t count;
    uint32_t pass; /* the pass that filled the slot: a slot of an earlier pass is empty */
} Slot;

static inline size_t slot_of(uint64_t key, size_t mask) {
    return (size_t)((key * 0x9E3779B97F4A7C15ULL) >> 17) & mask;
}

/* The slot holding key in this pass, or the empty slot where it goes (then claimed, count 0). */
static inline Slot *find(Slot *table, size_t mask, uint64_t key, uint32_t pass) {
    size_t i = slot_of(key, mask);
    while (table[i].pass == pass && table[i].key != key)
        i = (i + 1) & mask;
    Slot *s = &table[i];
    if (s->pass != pass) {
        s->pass = pass;
        s->key = key;
        s->count = 0;
    }
    return s;
}

static int in_sizes(PyObject *sizes, long n) {
    Py_ssize_t k, len = PyTuple_GET_SIZE(sizes);
    for (k = 0; k < len; k++)
        if (PyLong_AsLong(PyTuple_GET_ITEM(sizes, k)) == n)
            return 1;
    return 0;
}

static PyObject *repetition(PyObject *self, PyObject *args) {
    PyObject *words, *seq = NULL, *tops, *dups, *top_out = NULL, *dup_out = NULL, *result = NULL;
    uint64_t *ids = NULL, *h = NULL;
    int64_t *cum = NULL;
    Slot *table = NULL;
    long long *top_at = NULL, *dup_at = NULL; /* by size */
    if (!PyArg_ParseTuple(args, "OO!O!", &words, &PyTuple_Type, &tops, &PyTuple_Type, &dups))
        return NULL;
    long nmax = 0, nmin = LONG_MAX;
    PyObject *both[2] = {tops, dups};
    for (int t = 0; t < 2; t++) {
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(both[t]); k++) {
            long n = PyLong_AsLong(PyTuple_GET_ITEM(both[t], k));
            if (n == -1 && PyErr_Occurred())
                return NULL;
            if (n < 1) {
                PyErr_SetString(PyExc_ValueError, "n-gram sizes must be >= 1");
                return NULL;
            }
            if (n > nmax) nmax = n;
            if (n < nmin) nmin = n;
        }
    }
    seq = PySequence_Fast(words, "words: a list of str");
    if (!seq)
        return NULL;
    Py_ssize_t len = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    ids = PyMem_Malloc(((size_t)len + 1) * sizeof(uint64_t));
    h = PyMem_Malloc(((size_t)len + 1) * sizeof(uint64_t));
    cum = PyMem_Malloc(((size_t)len + 1) * sizeof(int64_t));
    if (!ids || !h || !cum) {
        PyErr_NoMemory();
        goto done;
    }
    cum[0] = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        if (!PyUnicode_Check(items[i])) {
            PyErr_SetString(PyExc_TypeError, "words: a list of str");
            goto done;
        }
        Py_hash_t hv = PyObject_Hash(items[i]);
        if (hv == -1 && PyErr_Occurred())
            goto done;
        ids[i] = (uint64_t)hv;
        cum[i + 1] = cum[i] + PyUnicode_GET_LENGTH(items[i]);
    }
    size_t cap = 16;
    while (cap < 2 * (size_t)len) cap <<= 1;
    size_t mask = cap - 1;
    table = PyMem_Calloc(cap, sizeof(Slot)); /* pass 0: empty */
    uint32_t pass = 0;
    top_at = PyMem_Calloc((size_t)nmax + 1, sizeof(long long));
    dup_at = PyMem_Calloc((size_t)nmax + 1, sizeof(long long));
    if (!table || !top_at || !dup_at) {
        PyErr_NoMemory();
        goto done;
    }
    if (len) memcpy(h, ids, (size_t)len * sizeof(uint64_t));
    for (long n = 1; n <= nmax; n++) {
        Py_ssize_t m = len - n + 1; /* n-grams of this size */
        if (n > 1)
            for (Py_ssize_t i = 0; i < m; i++)
                h[i] = h[i] * MULT + ids[i + n - 1];
        if (n < nmin)
            continue;
        long long top = 0, dup = 0;
        if (m > 0 && in_sizes(tops, n)) {
            pass++;
            Py_ssize_t best = 0, at = 0; /* the highest count; the first position of those that have it */
            for (Py_ssize_t i = 0; i < m; i++) {
                Slot *s = find(table, mask, h[i], pass);
                if (!s->count)
                    s->first = i;
                s->count++;
                if (s->count > best || (s->count == best && s->first < at)) {
                    best = s->count;
                    at = s->first;
                }
            }
            top = (long long)(cum[at + n] - cum[at] + n - 1) * best;
        }
        if (m > 0 && in_sizes(dups, n)) {
            pass++;
            Py_ssize_t i = 0;
            while (i < m) {
                Slot *s = find(table, mask, h[i], pass);
                if (s->count) {
                    dup += cum[i + n] - cum[i];
                    i += n;
                } else {
                    s->count = 1;
                    i += 1;
                }
            }
        }
        top_at[n] = top;
        dup_at[n] = dup;
    }
    top_out = PyTuple_New(PyTuple_GET_SIZE(tops));
    dup_out = PyTuple_New(PyTuple_GET_SIZE(dups));
    if (!top_out || !dup_out)
        goto done;
    for (int t = 0; t < 2; t++) {
        PyObject *out = t ? dup_out : top_out;
        long long *at = t ? dup_at : top_at;
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(both[t]); k++) {
            PyObject *v = PyLong_FromLongLong(at[PyLong_AsLong(PyTuple_GET_ITEM(both[t], k))]);
            if (!v)
                goto done;
            PyTuple_SET_ITEM(out, k, v);
        }
    }
    result = PyTuple_Pack(2, top_out, dup_out);
done:
    Py_XDECREF(top_out);
    Py_XDECREF(dup_out);
    Py_XDECREF(seq);
    PyMem_Free(ids);
    PyMem_Free(h);
    PyMem_Free(cum);
    PyMem_Free(table);
    PyMem_Free(top_at);
    PyMem_Free(dup_at);
    return result;
}

static PyMethodDef methods[] = {
    {"repetition", repetition, METH_VARARGS,
     "repetition(words, tops, dups) -> (top chars per size of tops, duplicated chars per size of dups)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_repetition",
                                    "Gopher's n-gram repetition measures, compiled.", -1, methods};

PyMODINIT_FUNC PyInit__repetition(void) { return PyModule_Create(&module); }
