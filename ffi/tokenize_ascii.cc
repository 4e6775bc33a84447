// Host-side tokenization of ASCII text for jaxrank.retrieve.Tokenizer (ctypes).
//
// For ASCII text, Python's `(?u)\b\w\w+\b` after str.lower() is exactly: maximal runs
// of [A-Za-z0-9_] of length >= 2, with A-Z lowered. This scans the concatenated
// documents once, interns every token in a hash table (first-seen order) and writes
// per token its word index, per document its token count, and the distinct words
// '\0'-separated. Python maps the few distinct words through stopwords and the stemmer
// and the word indices to term ids with one numpy gather.
#include <cstdint>
#include <cstring>
#include <vector>

#define JR_EXPORT extern "C" __attribute__((visibility("default")))

namespace {
inline bool is_word(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}
inline unsigned char lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }
}  // namespace

// buf[doc_start[i] : doc_start[i + 1]] is document i (n_docs + 1 starts). Outputs
// (capacities as computed by the caller, enough for any input of this size):
// tok_word [len / 3 + n_docs + 1] word index per token, doc_tokens [n_docs], words
// [len + 1] the distinct words each followed by '\0', word_start [len / 3 + 2].
// *n_words receives the number of distinct words; returns the number of tokens, or -1.
JR_EXPORT int64_t jaxrank_tokenize_ascii(const char* buf, const int64_t* doc_start, int64_t n_docs,
                                         int32_t lowercase, int32_t* tok_word,
                                         int64_t* doc_tokens, char* words, int64_t* word_start,
                                         int64_t* n_words) {
  if (n_docs < 0) return -1;
  std::vector<int32_t> slots(1 << 16, -1);
  std::vector<uint64_t> hashes;
  uint64_t mask = slots.size() - 1;
  int64_t nw = 0, nt = 0, wpos = 0;
  word_start[0] = 0;
  std::vector<char> tmp;
  for (int64_t d = 0; d < n_docs; ++d) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(buf) + doc_start[d];
    const unsigned char* end = reinterpret_cast<const unsigned char*>(buf) + doc_start[d + 1];
    int64_t count = 0;
    while (p < end) {
      while (p < end && !is_word(*p)) ++p;
      const unsigned char* s = p;
      while (p < end && is_word(*p)) ++p;
      const int64_t len = p - s;
      if (len < 2) continue;
      // the lowered token, FNV-1a hash
      tmp.resize(static_cast<size_t>(len));
      uint64_t h = 1469598103934665603ull;
      for (int64_t i = 0; i < len; ++i) {
        const unsigned char c = lowercase ? lower(s[i]) : s[i];
        tmp[static_cast<size_t>(i)] = static_cast<char>(c);
        h = (h ^ c) * 1099511628211ull;
      }
      uint64_t j = h & mask;
      int32_t w;
      while (true) {
        w = slots[j];
        if (w < 0) break;
        if (hashes[w] == h && word_start[w + 1] - word_start[w] - 1 == len &&
            std::memcmp(words + word_start[w], tmp.data(), static_cast<size_t>(len)) == 0)
          break;
        j = (j + 1) & mask;
      }
      if (w < 0) {  // a new word
        w = static_cast<int32_t>(nw++);
        slots[j] = w;
        hashes.push_back(h);
        std::memcpy(words + wpos, tmp.data(), static_cast<size_t>(len));
        wpos += len;
        words[wpos++] = '\0';
        word_start[nw] = wpos;
        if (2 * static_cast<uint64_t>(nw) > slots.size()) {  // grow to load <= 1/4
          std::vector<int32_t> bigger(slots.size() * 4, -1);
          const uint64_t m2 = bigger.size() - 1;
          for (int32_t x = 0; x < nw; ++x) {
            uint64_t y = hashes[x] & m2;
            while (bigger[y] >= 0) y = (y + 1) & m2;
            bigger[y] = x;
          }
          slots.swap(bigger);
          mask = m2;
        }
      }
      tok_word[nt++] = w;
      ++count;
    }
    doc_tokens[d] = count;
  }
  *n_words = nw;
  return nt;
}
