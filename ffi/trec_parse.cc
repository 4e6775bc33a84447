// Host-side parsing of whitespace-separated TREC run / qrels files.
//
// Not an XLA kernel: plain C functions exported from the native library and called
// with ctypes by jaxrank/io/_native_parse.py. One pass finds the field spans of every
// record (skipping blank lines and lines whose first non-blank character is '#', as
// trec_eval does); the other functions turn spans into numbers, query groups and a
// '\0'-joined buffer of strings, so Python never loops over records.
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#define JR_EXPORT extern "C" __attribute__((visibility("default")))

namespace {
inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }
}  // namespace

// Upper bound on the number of records: the number of lines.
JR_EXPORT int64_t jaxrank_trec_count_lines(const char* buf, int64_t n) {
  int64_t lines = 0;
  const char* p = buf;
  const char* end = buf + n;
  while (p < end) {
    const void* q = std::memchr(p, '\n', static_cast<size_t>(end - p));
    ++lines;
    if (!q) break;
    p = static_cast<const char*>(q) + 1;
  }
  return lines;
}

// Field spans of each record: starts[r * ncols + c], lens[r * ncols + c], and the
// 1-based line number of record r. Lines must have exactly ncols fields (at least
// ncols when extra_ok; the rest is ignored). Returns the number of records, or -1 on a
// malformed line, with *err_line / *err_fields describing it.
JR_EXPORT int64_t jaxrank_trec_fields(const char* buf, int64_t n, int32_t ncols, int32_t extra_ok,
                                      int64_t* starts, int32_t* lens, int64_t* line_no,
                                      int64_t* err_line, int32_t* err_fields) {
  const char* p = buf;
  const char* end = buf + n;
  int64_t rec = 0;
  int64_t line = 0;
  while (p < end) {
    ++line;
    const char* eol = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    if (!eol) eol = end;
    const char* s = p;
    while (s < eol && is_space(*s)) ++s;
    if (s == eol || *s == '#') {  // blank or comment line
      p = eol + 1;
      continue;
    }
    int32_t f = 0;
    int64_t* st = starts + rec * ncols;
    int32_t* ln = lens + rec * ncols;
    while (s < eol) {
      const char* t = s;
      while (t < eol && !is_space(*t)) ++t;
      if (f < ncols) {
        st[f] = s - buf;
        ln[f] = static_cast<int32_t>(t - s);
      }
      ++f;
      s = t;
      while (s < eol && is_space(*s)) ++s;
    }
    if (f < ncols || (f > ncols && !extra_ok)) {
      *err_line = line;
      *err_fields = f;
      return -1;
    }
    line_no[rec] = line;
    ++rec;
    p = eol + 1;
  }
  return rec;
}

// Parse field `col` of each record as a double (C strtod, as trec_eval's atof). Returns
// -1 on success, else the index of the first record whose field is not a number.
JR_EXPORT int64_t jaxrank_trec_doubles(const char* buf, const int64_t* starts, const int32_t* lens,
                                       int64_t nrec, int32_t ncols, int32_t col, double* out) {
  char tmp[128];
  for (int64_t r = 0; r < nrec; ++r) {
    const int32_t len = lens[r * ncols + col];
    if (len <= 0 || len >= static_cast<int32_t>(sizeof(tmp))) return r;
    std::memcpy(tmp, buf + starts[r * ncols + col], static_cast<size_t>(len));
    tmp[len] = '\0';
    char* stop = nullptr;
    out[r] = std::strtod(tmp, &stop);
    if (stop != tmp + len) return r;
  }
  return -1;
}

// Parse field `col` as a base-10 integer; same return convention as jaxrank_trec_doubles.
JR_EXPORT int64_t jaxrank_trec_ints(const char* buf, const int64_t* starts, const int32_t* lens,
                                    int64_t nrec, int32_t ncols, int32_t col, int64_t* out) {
  char tmp[64];
  for (int64_t r = 0; r < nrec; ++r) {
    const int32_t len = lens[r * ncols + col];
    if (len <= 0 || len >= static_cast<int32_t>(sizeof(tmp))) return r;
    std::memcpy(tmp, buf + starts[r * ncols + col], static_cast<size_t>(len));
    tmp[len] = '\0';
    char* stop = nullptr;
    errno = 0;
    out[r] = std::strtoll(tmp, &stop, 10);
    if (stop != tmp + len || errno == ERANGE) return r;
  }
  return -1;
}

// Indices of the records where field `col` differs from the previous record's (the
// first record always starts a run). Returns the number of runs.
JR_EXPORT int64_t jaxrank_trec_runs(const char* buf, const int64_t* starts, const int32_t* lens,
                                    int64_t nrec, int32_t ncols, int32_t col, int64_t* run_starts) {
  int64_t runs = 0;
  for (int64_t r = 0; r < nrec; ++r) {
    const int64_t i = r * ncols + col;
    if (r > 0) {
      const int64_t j = i - ncols;
      if (lens[i] == lens[j] && std::memcmp(buf + starts[i], buf + starts[j], lens[i]) == 0) continue;
    }
    run_starts[runs++] = r;
  }
  return runs;
}

// Copy field `col` of the records listed in `rows` (or of all records when rows is
// null) into `out`, separated by '\0'. `out` needs sum(lens) + count bytes. Returns the
// number of bytes written.
JR_EXPORT int64_t jaxrank_trec_join(const char* buf, const int64_t* starts, const int32_t* lens,
                                    int32_t ncols, int32_t col, const int64_t* rows, int64_t count,
                                    char* out) {
  char* o = out;
  for (int64_t k = 0; k < count; ++k) {
    const int64_t r = rows ? rows[k] : k;
    const int32_t len = lens[r * ncols + col];
    if (k) *o++ = '\0';
    std::memcpy(o, buf + starts[r * ncols + col], static_cast<size_t>(len));
    o += len;
  }
  return o - out;
}
