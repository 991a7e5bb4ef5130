// Minimal fork-join helper for the CPU kernels: split [0, n) into contiguous chunks, one per
// worker thread. No libtorch and no OpenMP so the module builds in seconds with any compiler.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace colorvid {

// Number of worker threads: COLORVID_NUM_THREADS if set (>0), else the hardware concurrency.
inline int default_num_threads() {
    if (const char* env = std::getenv("COLORVID_NUM_THREADS")) {
        int v = std::atoi(env);
        if (v > 0) return v;
    }
    unsigned hw = std::thread::hardware_concurrency();
    return hw == 0 ? 1 : static_cast<int>(hw);
}

// Calls fn(begin, end) on disjoint chunks covering [0, n). Chunks smaller than min_chunk items
// are not split further: thread start-up (~20 us) dominates below a few thousand pixels.
// An exception thrown in any worker is rethrown in the caller after all workers join.
template <typename Fn>
void parallel_for(int64_t n, int64_t min_chunk, Fn&& fn, int num_threads = 0) {
    if (n <= 0) return;
    if (num_threads <= 0) num_threads = default_num_threads();
    int64_t max_by_size = std::max<int64_t>(1, n / std::max<int64_t>(1, min_chunk));
    int workers = static_cast<int>(std::min<int64_t>(num_threads, max_by_size));
    if (workers <= 1) {
        fn(int64_t(0), n);
        return;
    }
    std::vector<std::thread> threads;
    threads.reserve(workers - 1);
    std::exception_ptr error;
    std::mutex error_mutex;
    int64_t chunk = (n + workers - 1) / workers;
    auto run = [&](int64_t b, int64_t e) {
        try {
            fn(b, e);
        } catch (...) {
            std::lock_guard<std::mutex> lock(error_mutex);
            if (!error) error = std::current_exception();
        }
    };
    for (int w = 1; w < workers; ++w) {
        int64_t b = w * chunk, e = std::min(n, b + chunk);
        if (b >= e) break;
        threads.emplace_back(run, b, e);
    }
    run(0, std::min(n, chunk));
    for (auto& t : threads) t.join();
    if (error) std::rethrow_exception(error);
}

}  // namespace colorvid
