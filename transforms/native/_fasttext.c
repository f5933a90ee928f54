/* fastText's supervised prediction (hierarchical softmax), for lid.176, without its string copies.
 *
 * fastText builds a std::string for every character n-gram of every word it reads (about 20 for a
 * word, most of them heap-allocated in the wheels' old C++ ABI) and looks each hashed n-gram up in
 * an unordered_map when the dictionary was pruned: on the crawl's pages (6,500 characters) that is
 * 85% of its time. Here the n-gram hashes are computed in place, incrementally (FNV-1a is
 * sequential, so the hash of an n-gram extends the hash of its prefix), and the pruned buckets sit
 * in an open-addressing table.
 *
 * Everything else is fastText's own arithmetic in the same order and the same float/double
 * conversions (fastText 0.9.2: Dictionary::getLine/computeSubwords/pushHash, Model::computeHidden,
 * QuantMatrix/ProductQuantizer addcode and mulcode, DenseMatrix::dotRow,
 * HierarchicalSoftmaxLoss::buildTree/dfs with libstdc++'s heap algorithms, exp of the log
 * probability in float), so the probabilities are the same floats fasttext-predict returns; the
 * test suite checks that bit for bit. Built with -ffp-contract=off: no fused multiply-adds.
 *
 * fastText is Facebook's (MIT licence); this file is a re-implementation of its prediction path.
 *
 * Supported: supervised models with the hierarchical softmax loss, dense or quantized matrices,
 * pruned or not (lid.176.ftz is one). Anything else raises NotImplementedError and the caller keeps
 * using the fasttext module.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC 793712314
#define KSUB 256
#define LOSS_HS 1
#define MODEL_SUP 3
#define FNV_OFFSET 2166136261u
#define FNV_PRIME 16777619u

typedef struct {
    int32_t dim, nsubq, dsub, lastdsub;
    float *centroids; /* dim * KSUB */
} PQ;

typedef struct {
    int quant;
    int64_t m, n;
    float *data; /* dense: m * n */
    int qnorm;
    uint8_t *codes; /* quantized: m * nsubq */
    PQ pq;
    uint8_t *norm_codes;
    PQ npq;
} Matrix;

typedef struct {
    PyObject_HEAD
    int32_t dim, word_ngrams, bucket, minn, maxn;
    int32_t size, nwords, nlabels;
    /* the dictionary: entry i's bytes are blob[off[i]:off[i+1]] */
    char *blob;
    int64_t *off;
    int8_t *type; /* 0 word, 1 label */
    uint32_t *whash;
    int32_t *wtable; /* open addressing on the word hash: entry index or -1 */
    uint32_t wmask;
    int32_t *sub_off, *subs; /* in-vocabulary entries' input rows (itself, then its n-grams) */
    int64_t prune_size; /* -1: not pruned */
    int32_t *pkey, *pval; /* pruned bucket -> row, open addressing (key -1: empty) */
    uint32_t pmask;
    Matrix in, out;
    int32_t *left, *right; /* the Huffman tree over the labels */
    PyObject *labels; /* tuple of str */
} Model;

/* ---- reading the file ---------------------------------------------------------------------- */

typedef struct {
    const char *p, *end;
    int failed;
} Reader;

static int take(Reader *r, void *dst, size_t n) {
    if (r->failed || (size_t)(r->end - r->p) < n) {
        r->failed = 1;
        return 0;
    }
    memcpy(dst, r->p, n);
    r->p += n;
    return 1;
}

static int read_pq(Reader *r, PQ *pq) {
    take(r, &pq->dim, 4);
    take(r, &pq->nsubq, 4);
    take(r, &pq->dsub, 4);
    take(r, &pq->lastdsub, 4);
    if (r->failed || pq->dim <= 0 || pq->nsubq <= 0 || pq->dsub <= 0 || pq->lastdsub <= 0 ||
        (int64_t)pq->dsub * (pq->nsubq - 1) + pq->lastdsub != pq->dim)
        return 0; /* the sub-quantizers cover the dimensions exactly: every centroid read is in range */
    size_t count = (size_t)pq->dim * KSUB;
    pq->centroids = PyMem_Malloc(count * sizeof(float));
    if (!pq->centroids)
        return 0;
    return take(r, pq->centroids, count * sizeof(float));
}

static int read_matrix(Reader *r, Matrix *mat, int quant) {
    mat->quant = quant;
    if (!quant) {
        take(r, &mat->m, 8);
        take(r, &mat->n, 8);
        if (r->failed || mat->m < 0 || mat->n <= 0)
            return 0;
        size_t count = (size_t)mat->m * (size_t)mat->n;
        mat->data = PyMem_Malloc(count * sizeof(float) + 1);
        if (!mat->data)
            return 0;
        return take(r, mat->data, count * sizeof(float));
    }
    uint8_t qnorm = 0;
    int32_t codesize = 0;
    take(r, &qnorm, 1);
    take(r, &mat->m, 8);
    take(r, &mat->n, 8);
    take(r, &codesize, 4);
    if (r->failed || codesize < 0 || mat->m < 0)
        return 0;
    mat->qnorm = qnorm != 0;
    mat->codes = PyMem_Malloc((size_t)codesize + 1);
    if (!mat->codes || !take(r, mat->codes, (size_t)codesize) || !read_pq(r, &mat->pq))
        return 0;
    if ((int64_t)codesize < mat->m * mat->pq.nsubq || mat->pq.dim != mat->n)
        return 0;
    if (mat->qnorm) {
        mat->norm_codes = PyMem_Malloc((size_t)mat->m + 1);
        if (!mat->norm_codes || !take(r, mat->norm_codes, (size_t)mat->m) || !read_pq(r, &mat->npq))
            return 0;
    }
    return 1;
}

static void free_matrix(Matrix *mat) {
    PyMem_Free(mat->data);
    PyMem_Free(mat->codes);
    PyMem_Free(mat->pq.centroids);
    PyMem_Free(mat->norm_codes);
    PyMem_Free(mat->npq.centroids);
}

/* ---- the matrices -------------------------------------------------------------------------- */

static inline const float *centroids(const PQ *pq, int32_t m, uint8_t i) {
    if (m == pq->nsubq - 1)
        return &pq->centroids[m * KSUB * pq->dsub + i * pq->lastdsub];
    return &pq->centroids[(m * KSUB + i) * pq->dsub];
}

/* A quantized row (ProductQuantizer): added to x (addcode, scaled by the row's norm), or its dot
 * product with x (mulcode, then scaled). */
static inline float quant_row(const Matrix *mat, int64_t i, float *x, int add) {
    float alpha = 1;
    if (mat->qnorm)
        alpha = centroids(&mat->npq, 0, mat->norm_codes[i])[0];
    const PQ *pq = &mat->pq;
    const uint8_t *code = mat->codes + (int64_t)pq->nsubq * i;
    float res = 0.0f;
    int32_t d = pq->dsub;
    for (int32_t m = 0; m < pq->nsubq; m++) {
        const float *c = centroids(pq, m, code[m]);
        if (m == pq->nsubq - 1)
            d = pq->lastdsub;
        if (add)
            for (int32_t n = 0; n < d; n++)
                x[m * pq->dsub + n] += alpha * c[n];
        else
            for (int32_t n = 0; n < d; n++)
                res += x[m * pq->dsub + n] * c[n];
    }
    return res * alpha;
}

static inline void add_row(const Matrix *mat, float *x, int64_t i) {
    if (mat->quant) {
        quant_row(mat, i, x, 1);
        return;
    }
    const float *row = mat->data + i * mat->n;
    for (int64_t j = 0; j < mat->n; j++)
        x[j] += row[j];
}

static inline float dot_row(const Matrix *mat, const float *x, int64_t i) {
    if (mat->quant)
        return quant_row(mat, i, (float *)x, 0);
    const float *row = mat->data + i * mat->n;
    float d = 0.0f;
    for (int64_t j = 0; j < mat->n; j++)
        d += row[j] * x[j];
    return d;
}

/* ---- the dictionary ------------------------------------------------------------------------ */

static inline uint32_t fnv_step(uint32_t h, char c) {
    return (h ^ (uint32_t)(int8_t)c) * FNV_PRIME;
}

static uint32_t fnv(const char *s, Py_ssize_t n) {
    uint32_t h = FNV_OFFSET;
    for (Py_ssize_t i = 0; i < n; i++)
        h = fnv_step(h, s[i]);
    return h;
}

static int32_t find_word(const Model *md, const char *w, Py_ssize_t n, uint32_t h) {
    for (uint32_t s = h & md->wmask;; s = (s + 1) & md->wmask) {
        int32_t id = md->wtable[s];
        if (id < 0)
            return -1;
        if (md->whash[id] == h && md->off[id + 1] - md->off[id] == n && memcmp(md->blob + md->off[id], w, n) == 0)
            return id;
    }
}

typedef struct {
    int32_t *v;
    Py_ssize_t n, cap;
} Ints;

static int push(Ints *a, int32_t x) {
    if (a->n == a->cap) {
        Py_ssize_t cap = a->cap ? 2 * a->cap : 256;
        int32_t *v = PyMem_Realloc(a->v, cap * sizeof(int32_t));
        if (!v)
            return 0;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return 1;
}

/* Dictionary::pushHash: a bucket's row, after pruning (dropped when pruned away) */
static int push_hash(const Model *md, Ints *rows, int32_t id) {
    if (md->prune_size == 0 || id < 0)
        return 1;
    if (md->prune_size > 0) {
        uint32_t s = ((uint32_t)id * 2654435761u) & md->pmask;
        for (;; s = (s + 1) & md->pmask) {
            if (md->pkey[s] == id) {
                id = md->pval[s];
                break;
            }
            if (md->pkey[s] == -1)
                return 1;
        }
    }
    return push(rows, md->nwords + id);
}

/* Dictionary::computeSubwords over "<" + word + ">" (w holds them) */
static int subwords(const Model *md, const char *w, Py_ssize_t len, Ints *rows) {
    for (Py_ssize_t i = 0; i < len; i++) {
        if ((w[i] & 0xC0) == 0x80)
            continue;
        uint32_t h = FNV_OFFSET;
        Py_ssize_t j = i;
        for (int32_t n = 1; j < len && n <= md->maxn; n++) {
            h = fnv_step(h, w[j++]);
            while (j < len && (w[j] & 0xC0) == 0x80)
                h = fnv_step(h, w[j++]);
            if (n >= md->minn && !(n == 1 && (i == 0 || j == len))) {
                if (!push_hash(md, rows, (int32_t)(h % (uint32_t)md->bucket)))
                    return 0;
            }
        }
    }
    return 1;
}

/* "<" + word + ">" into buf (grown as needed) */
static char *bracket(const char *w, Py_ssize_t n, char **buf, Py_ssize_t *cap) {
    if (n + 2 > *cap) {
        Py_ssize_t c = n + 2 > 2 * *cap ? n + 2 : 2 * *cap;
        char *b = PyMem_Realloc(*buf, c);
        if (!b)
            return NULL;
        *buf = b;
        *cap = c;
    }
    (*buf)[0] = '<';
    memcpy(*buf + 1, w, n);
    (*buf)[n + 1] = '>';
    return *buf;
}

static void free_model_arrays(Model *md) {
    PyMem_Free(md->blob);
    PyMem_Free(md->off);
    PyMem_Free(md->type);
    PyMem_Free(md->whash);
    PyMem_Free(md->wtable);
    PyMem_Free(md->sub_off);
    PyMem_Free(md->subs);
    PyMem_Free(md->pkey);
    PyMem_Free(md->pval);
    PyMem_Free(md->left);
    PyMem_Free(md->right);
    free_matrix(&md->in);
    free_matrix(&md->out);
    Py_CLEAR(md->labels);
}

static uint32_t table_size(int64_t n) {
    uint32_t s = 16;
    while ((int64_t)s < 2 * n)
        s <<= 1;
    return s;
}

static int load(Model *md, const char *data, Py_ssize_t len) {
    Reader r = {data, data + len, 0};
    int32_t magic = 0, version = 0, a[12];
    double t;
    take(&r, &magic, 4);
    take(&r, &version, 4);
    if (r.failed || magic != MAGIC || version > 12) {
        PyErr_SetString(PyExc_ValueError, "not a fastText model file (magic number or version)");
        return 0;
    }
    for (int i = 0; i < 12; i++)
        take(&r, &a[i], 4);
    take(&r, &t, 8);
    /* dim ws epoch minCount neg wordNgrams loss model bucket minn maxn lrUpdateRate */
    md->dim = a[0];
    md->word_ngrams = a[5];
    md->bucket = a[8];
    md->minn = a[9];
    md->maxn = a[10];
    if (r.failed)
        goto truncated;
    if (a[7] != MODEL_SUP || a[6] != LOSS_HS) {
        PyErr_SetString(PyExc_NotImplementedError, "only supervised models with the hs loss");
        return 0;
    }
    if (version == 11)
        md->maxn = 0; /* fastText: old supervised models have no character n-grams */
    int64_t ntokens;
    take(&r, &md->size, 4);
    take(&r, &md->nwords, 4);
    take(&r, &md->nlabels, 4);
    take(&r, &ntokens, 8);
    take(&r, &md->prune_size, 8);
    if (r.failed || md->size < 0 || md->nwords < 0 || md->nlabels <= 0 || md->nwords + md->nlabels != md->size)
        goto bad;
    md->off = PyMem_Calloc((size_t)md->size + 1, sizeof(int64_t));
    md->type = PyMem_Calloc((size_t)md->size + 1, 1);
    md->whash = PyMem_Calloc((size_t)md->size + 1, sizeof(uint32_t));
    int64_t *counts = PyMem_Calloc((size_t)md->size + 1, sizeof(int64_t));
    Py_ssize_t blob_cap = 1 << 16, blob_n = 0;
    md->blob = PyMem_Malloc(blob_cap);
    if (!md->off || !md->type || !md->whash || !counts || !md->blob) {
        PyMem_Free(counts);
        PyErr_NoMemory();
        return 0;
    }
    for (int32_t i = 0; i < md->size; i++) {
        const char *z = memchr(r.p, 0, r.end - r.p);
        if (!z) {
            PyMem_Free(counts);
            goto truncated;
        }
        Py_ssize_t n = z - r.p;
        if (blob_n + n > blob_cap) {
            while (blob_n + n > blob_cap)
                blob_cap *= 2;
            char *b = PyMem_Realloc(md->blob, blob_cap);
            if (!b) {
                PyMem_Free(counts);
                PyErr_NoMemory();
                return 0;
            }
            md->blob = b;
        }
        memcpy(md->blob + blob_n, r.p, n);
        md->off[i] = blob_n;
        blob_n += n;
        md->off[i + 1] = blob_n;
        md->whash[i] = fnv(r.p, n);
        r.p = z + 1;
        take(&r, &counts[i], 8);
        take(&r, &md->type[i], 1);
    }
    if (r.failed) {
        PyMem_Free(counts);
        goto truncated;
    }
    if (md->prune_size > 0) {
        md->pmask = table_size(md->prune_size) - 1;
        md->pkey = PyMem_Malloc(((size_t)md->pmask + 1) * sizeof(int32_t));
        md->pval = PyMem_Malloc(((size_t)md->pmask + 1) * sizeof(int32_t));
        if (!md->pkey || !md->pval) {
            PyMem_Free(counts);
            PyErr_NoMemory();
            return 0;
        }
        memset(md->pkey, 0xff, ((size_t)md->pmask + 1) * sizeof(int32_t));
        for (int64_t i = 0; i < md->prune_size; i++) {
            int32_t first, second;
            take(&r, &first, 4);
            take(&r, &second, 4);
            if (r.failed || first < 0) {
                PyMem_Free(counts);
                goto bad;
            }
            uint32_t s = ((uint32_t)first * 2654435761u) & md->pmask;
            while (md->pkey[s] != -1 && md->pkey[s] != first)
                s = (s + 1) & md->pmask;
            md->pkey[s] = first; /* a repeated key keeps the last value, as pruneidx_[first] = second does */
            md->pval[s] = second;
        }
    }
    /* word -> entry */
    md->wmask = table_size(md->size) - 1;
    md->wtable = PyMem_Malloc(((size_t)md->wmask + 1) * sizeof(int32_t));
    if (!md->wtable) {
        PyMem_Free(counts);
        PyErr_NoMemory();
        return 0;
    }
    memset(md->wtable, 0xff, ((size_t)md->wmask + 1) * sizeof(int32_t));
    for (int32_t i = 0; i < md->size; i++) {
        Py_ssize_t n = md->off[i + 1] - md->off[i];
        if (find_word(md, md->blob + md->off[i], n, md->whash[i]) >= 0)
            continue; /* fastText's table keeps the last of equal words; none in real models */
        uint32_t s = md->whash[i] & md->wmask;
        while (md->wtable[s] != -1)
            s = (s + 1) & md->wmask;
        md->wtable[s] = i;
    }
    /* every entry's input rows: itself, then its n-grams (Dictionary::initNgrams) */
    {
        Ints rows = {0};
        char *buf = NULL;
        Py_ssize_t cap = 0;
        md->sub_off = PyMem_Malloc(((size_t)md->size + 1) * sizeof(int32_t));
        if (!md->sub_off) {
            PyMem_Free(counts);
            PyErr_NoMemory();
            return 0;
        }
        for (int32_t i = 0; i < md->size; i++) {
            md->sub_off[i] = (int32_t)rows.n;
            const char *w = md->blob + md->off[i];
            Py_ssize_t n = md->off[i + 1] - md->off[i];
            int ok = push(&rows, i);
            if (ok && !(n == 4 && memcmp(w, "</s>", 4) == 0)) {
                char *b = bracket(w, n, &buf, &cap);
                ok = b && subwords(md, b, n + 2, &rows);
            }
            if (!ok) {
                PyMem_Free(rows.v);
                PyMem_Free(buf);
                PyMem_Free(counts);
                PyErr_NoMemory();
                return 0;
            }
        }
        md->sub_off[md->size] = (int32_t)rows.n;
        md->subs = rows.v;
        PyMem_Free(buf);
    }
    uint8_t quant_input = 0, qout = 0;
    take(&r, &quant_input, 1);
    if (r.failed || !read_matrix(&r, &md->in, quant_input != 0)) {
        PyMem_Free(counts);
        goto bad;
    }
    if (!quant_input && md->prune_size >= 0) {
        PyMem_Free(counts);
        PyErr_SetString(PyExc_ValueError, "Invalid model file (a pruned dictionary with a dense input matrix)");
        return 0;
    }
    take(&r, &qout, 1);
    if (r.failed || !read_matrix(&r, &md->out, quant_input && qout)) {
        PyMem_Free(counts);
        goto bad;
    }
    if (md->in.n != md->dim || md->out.n != md->dim || md->out.m != md->nlabels) {
        PyMem_Free(counts);
        goto bad;
    }
    /* input rows in range */
    for (Py_ssize_t i = 0; i < md->sub_off[md->size]; i++) {
        if (md->subs[i] < 0 || md->subs[i] >= md->in.m) {
            PyMem_Free(counts);
            goto bad;
        }
    }
    if (md->prune_size > 0) {
        for (uint32_t s = 0; s <= md->pmask; s++) {
            if (md->pkey[s] != -1 && (md->pval[s] < 0 || md->nwords + (int64_t)md->pval[s] >= md->in.m)) {
                PyMem_Free(counts);
                goto bad;
            }
        }
    } else if (md->prune_size < 0 && md->maxn > 0 && md->nwords + (int64_t)md->bucket > md->in.m) {
        PyMem_Free(counts);
        goto bad;
    }
    /* HierarchicalSoftmaxLoss::buildTree over the labels' counts, in dictionary order */
    {
        int32_t osz = md->nlabels, nodes = 2 * osz - 1;
        int64_t *tc = PyMem_Malloc((size_t)nodes * sizeof(int64_t));
        md->left = PyMem_Malloc((size_t)nodes * sizeof(int32_t));
        md->right = PyMem_Malloc((size_t)nodes * sizeof(int32_t));
        if (!tc || !md->left || !md->right) {
            PyMem_Free(tc);
            PyMem_Free(counts);
            PyErr_NoMemory();
            return 0;
        }
        for (int32_t i = 0; i < nodes; i++) {
            md->left[i] = md->right[i] = -1;
            tc[i] = (int64_t)1e15;
        }
        int32_t li = 0;
        for (int32_t i = 0; i < md->size; i++)
            if (md->type[i] == 1 && li < osz)
                tc[li++] = counts[i];
        if (li != osz) {
            PyMem_Free(tc);
            PyMem_Free(counts);
            goto bad;
        }
        int32_t leaf = osz - 1, node = osz;
        for (int32_t i = osz; i < nodes; i++) {
            int32_t mini[2] = {0, 0};
            for (int j = 0; j < 2; j++) {
                if (leaf >= 0 && tc[leaf] < tc[node])
                    mini[j] = leaf--;
                else
                    mini[j] = node++;
            }
            md->left[i] = mini[0];
            md->right[i] = mini[1];
            tc[i] = tc[mini[0]] + tc[mini[1]];
        }
        PyMem_Free(tc);
    }
    PyMem_Free(counts);
    md->labels = PyTuple_New(md->nlabels);
    if (!md->labels)
        return 0;
    for (int32_t i = 0; i < md->nlabels; i++) {
        int32_t e = md->nwords + i;
        PyObject *s = PyUnicode_DecodeUTF8(md->blob + md->off[e], md->off[e + 1] - md->off[e], "replace");
        if (!s)
            return 0;
        PyTuple_SET_ITEM(md->labels, i, s);
    }
    return 1;
truncated:
bad:
    if (!PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "Invalid model file (truncated or inconsistent)");
    return 0;
}

/* ---- prediction ---------------------------------------------------------------------------- */

typedef struct {
    float score;
    int32_t node;
} Pair;

/* libstdc++'s heap algorithms with fastText's comparePairs (l.first > r.first): the front is the
 * lowest score; ties resolve as they do there. */
static inline int cmp(const Pair *a, const Pair *b) { return a->score > b->score; }

static void sift_up(Pair *h, Py_ssize_t hole, Py_ssize_t top, Pair v) {
    Py_ssize_t parent = (hole - 1) / 2;
    while (hole > top && cmp(&h[parent], &v)) {
        h[hole] = h[parent];
        hole = parent;
        parent = (hole - 1) / 2;
    }
    h[hole] = v;
}

static void adjust(Pair *h, Py_ssize_t hole, Py_ssize_t len, Pair v) {
    Py_ssize_t top = hole, child = hole;
    while (child < (len - 1) / 2) {
        child = 2 * (child + 1);
        if (cmp(&h[child], &h[child - 1]))
            child--;
        h[hole] = h[child];
        hole = child;
    }
    if ((len & 1) == 0 && child == (len - 2) / 2) {
        child = 2 * (child + 1);
        h[hole] = h[child - 1];
        hole = child - 1;
    }
    sift_up(h, hole, top, v);
}

static void pop_heap(Pair *h, Py_ssize_t n) { /* the front goes to h[n - 1] */
    if (n > 1) {
        Pair v = h[n - 1];
        h[n - 1] = h[0];
        adjust(h, 0, n - 1, v);
    }
}

static inline float std_log(float x) { return (float)log((double)x + 1e-5); }

typedef struct {
    const Model *md;
    const float *hidden;
    Pair *heap;
    Py_ssize_t n, k;
    float floor;
} Search;

static void dfs(Search *s, int32_t node, float score) {
    if (score < s->floor)
        return;
    if (s->n == s->k && score < s->heap[0].score)
        return;
    const Model *md = s->md;
    if (md->left[node] == -1 && md->right[node] == -1) {
        Pair p = {score, node};
        s->heap[s->n++] = p;
        sift_up(s->heap, s->n - 1, 0, p);
        if (s->n > s->k) {
            pop_heap(s->heap, s->n);
            s->n--;
        }
        return;
    }
    float f = dot_row(&md->out, s->hidden, node - md->nlabels);
    float e = expf(-f);
    f = (float)(1. / (double)(1.0f + e));
    dfs(s, md->left[node], score + std_log((float)(1.0 - (double)f)));
    dfs(s, md->right[node], score + std_log(f));
}

static void Model_dealloc(Model *md) {
    free_model_arrays(md);
    Py_TYPE(md)->tp_free((PyObject *)md);
}

static int Model_init(Model *md, PyObject *args, PyObject *kw) {
    Py_buffer buf;
    (void)kw;
    if (!PyArg_ParseTuple(args, "y*", &buf))
        return -1;
    free_model_arrays(md);
    memset((char *)md + sizeof(PyObject), 0, sizeof(Model) - sizeof(PyObject));
    int ok = load(md, buf.buf, buf.len);
    PyBuffer_Release(&buf);
    return ok ? 0 : -1;
}

static PyObject *Model_predict(Model *md, PyObject *args) {
    PyObject *text;
    int k = 1;
    float threshold = 0.0f;
    if (!PyArg_ParseTuple(args, "U|if", &text, &k, &threshold))
        return NULL;
    if (!md->labels) {
        PyErr_SetString(PyExc_ValueError, "model not loaded");
        return NULL;
    }
    if (k == -1)
        k = md->nlabels;
    if (k <= 0) {
        PyErr_SetString(PyExc_ValueError, "k needs to be 1 or higher (or -1: every label)");
        return NULL;
    }
    if (k > md->nlabels)
        k = md->nlabels; /* the same answer: the heap never holds more than every label */
    Py_ssize_t len;
    const char *t = PyUnicode_AsUTF8AndSize(text, &len);
    if (!t)
        return NULL;
    if (memchr(t, '\n', len)) {
        PyErr_SetString(PyExc_ValueError, "predict processes one line at a time (remove '\\n')");
        return NULL;
    }
    float *hidden = PyMem_Calloc((size_t)md->dim, sizeof(float));
    Pair *heap = PyMem_Malloc(((size_t)k + 1) * sizeof(Pair));
    Ints rows = {0}, hashes = {0};
    char *buf = NULL;
    Py_ssize_t cap = 0;
    PyObject *result = NULL;
    if (!hidden || !heap) {
        PyErr_NoMemory();
        goto done;
    }
    /* Dictionary::getLine over text + "\n": words split at ' ' \n \r \t \v \f \0, then "</s>" */
    Py_ssize_t i = 0;
    for (;;) {
        while (i < len && (t[i] == ' ' || t[i] == '\r' || t[i] == '\t' || t[i] == '\v' || t[i] == '\f' || t[i] == '\0'))
            i++;
        const char *w;
        Py_ssize_t n;
        int eos = 0;
        if (i >= len) {
            w = "</s>";
            n = 4;
            eos = 1;
        } else {
            Py_ssize_t j = i;
            while (j < len && !(t[j] == ' ' || t[j] == '\r' || t[j] == '\t' || t[j] == '\v' || t[j] == '\f' || t[j] == '\0'))
                j++;
            w = t + i;
            n = j - i;
            i = j;
            eos = n == 4 && memcmp(w, "</s>", 4) == 0; /* fastText stops at a "</s>" in the text too */
        }
        uint32_t h = fnv(w, n);
        int32_t wid = find_word(md, w, n, h);
        int label = wid >= 0 ? md->type[wid] == 1 : (n >= 9 && memcmp(w, "__label__", 9) == 0);
        if (!label) {
            int ok = 1;
            if (wid < 0) {
                if (!eos) {
                    char *b = bracket(w, n, &buf, &cap);
                    ok = b && subwords(md, b, n + 2, &rows);
                }
            } else if (md->maxn <= 0) {
                ok = push(&rows, wid);
            } else {
                for (int32_t r = md->sub_off[wid]; ok && r < md->sub_off[wid + 1]; r++)
                    ok = push(&rows, md->subs[r]);
            }
            ok = ok && push(&hashes, (int32_t)h);
            if (!ok) {
                PyErr_NoMemory();
                goto done;
            }
        }
        if (eos)
            break;
    }
    /* Dictionary::addWordNgrams */
    for (Py_ssize_t a = 0; a < hashes.n; a++) {
        uint64_t h = (uint64_t)(int64_t)hashes.v[a];
        for (Py_ssize_t b = a + 1; b < hashes.n && b < a + md->word_ngrams; b++) {
            h = h * 116049371 + (uint64_t)(int64_t)hashes.v[b];
            if (!push_hash(md, &rows, (int32_t)(h % (uint64_t)md->bucket))) {
                PyErr_NoMemory();
                goto done;
            }
        }
    }
    result = PyList_New(0);
    if (!result || rows.n == 0)
        goto done;
    /* Model::computeHidden */
    for (Py_ssize_t r = 0; r < rows.n; r++) {
        if (rows.v[r] < 0 || rows.v[r] >= md->in.m) {
            Py_CLEAR(result);
            PyErr_SetString(PyExc_ValueError, "input row out of range");
            goto done;
        }
        add_row(&md->in, hidden, rows.v[r]);
    }
    float scale = (float)(1.0 / (double)rows.n);
    for (int32_t d = 0; d < md->dim; d++)
        hidden[d] *= scale;
    Search s = {md, hidden, heap, 0, k, std_log(threshold)};
    dfs(&s, 2 * md->nlabels - 2, 0.0f);
    /* std::sort_heap: best first */
    for (Py_ssize_t n = s.n; n > 1; n--)
        pop_heap(heap, n);
    for (Py_ssize_t p = 0; p < s.n; p++) {
        PyObject *item = Py_BuildValue("(dO)", (double)expf(heap[p].score), PyTuple_GET_ITEM(md->labels, heap[p].node));
        if (!item || PyList_Append(result, item) < 0) {
            Py_XDECREF(item);
            Py_CLEAR(result);
            goto done;
        }
        Py_DECREF(item);
    }
done:
    PyMem_Free(hidden);
    PyMem_Free(heap);
    PyMem_Free(rows.v);
    PyMem_Free(hashes.v);
    PyMem_Free(buf);
    return result;
}

static PyObject *Model_labels(Model *md, void *closure) {
    (void)closure;
    if (!md->labels)
        Py_RETURN_NONE;
    Py_INCREF(md->labels);
    return md->labels;
}

static PyMethodDef Model_methods[] = {
    {"predict", (PyCFunction)Model_predict, METH_VARARGS,
     "predict(text, k=1, threshold=0.0) -> [(probability, label)], best first: fastText's predictLine"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Model_getset[] = {
    {"labels", (getter)Model_labels, NULL, "the model's labels, in its order", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "thresher.transforms._fasttext.Model",
    .tp_basicsize = sizeof(Model),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Model(data: bytes): a supervised fastText model (hs loss) read from a .bin/.ftz file's bytes",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Model_init,
    .tp_dealloc = (destructor)Model_dealloc,
    .tp_methods = Model_methods,
    .tp_getset = Model_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fasttext", "fastText's supervised prediction without its string copies", -1, NULL,
};

PyMODINIT_FUNC PyInit__fasttext(void) {
    if (PyType_Ready(&ModelType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Py_INCREF(&ModelType);
    if (PyModule_AddObject(m, "Model", (PyObject *)&ModelType) < 0) {
        Py_DECREF(&ModelType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
