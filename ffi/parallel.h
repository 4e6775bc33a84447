// Work sharing over XLA's CPU intra-op thread pool, used by every FFI handler
// that splits its work (jaxrank_ffi.cc, dense.cc, soft.cc).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "xla/ffi/api/ffi.h"

namespace jaxrank {

// Runs f(item) for item in [0, n) on the caller plus up to threads-1 pool
// workers (threads <= 0: every pool thread). Workers claim items from a shared
// counter, so the caller never waits on a task that has not started (no
// deadlock when the pool is busy); it blocks on a condition variable (no
// spinning: on a loaded machine a spinning caller burned 10x the CPU time of
// the work) for items still running. Workers reach `f` through the shared
// state; the caller returns only after every claimed item has finished, and
// items claimed after that point do not exist.
inline void parallel_for(xla::ffi::ThreadPool& pool, int64_t n, int64_t threads,
                         const std::function<void(int64_t)>& f) {
  if (n <= 0) return;
  int64_t avail = pool.num_threads();
  if (avail <= 0) avail = 1;
  if (threads <= 0 || threads > avail) threads = avail;
  if (threads > n) threads = n;
  if (threads <= 1) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
  struct State {
    std::atomic<int64_t> next{0};
    int64_t done = 0;  // guarded by mu
    int64_t n = 0;
    const std::function<void(int64_t)>* f = nullptr;
    std::mutex mu;
    std::condition_variable cv;
  };
  auto st = std::make_shared<State>();
  st->n = n;
  st->f = &f;
  auto work = [](const std::shared_ptr<State>& s) {
    int64_t finished = 0;
    for (;;) {
      const int64_t i = s->next.fetch_add(1);
      if (i >= s->n) break;
      (*s->f)(i);
      ++finished;
    }
    if (finished == 0) return;
    std::lock_guard<std::mutex> lock(s->mu);
    s->done += finished;
    if (s->done == s->n) s->cv.notify_all();
  };
  for (int64_t t = 1; t < threads; ++t) pool.Schedule([st, work]() { work(st); });
  work(st);
  std::unique_lock<std::mutex> lock(st->mu);
  st->cv.wait(lock, [&] { return st->done == st->n; });
}

}  // namespace jaxrank
