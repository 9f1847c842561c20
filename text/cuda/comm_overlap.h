// A GPU's collectives on a stream of their own, so that in a long prefill piece split over GPUs the sums of partial
// rows run while the compute stream works on other rows (issue 8): the row-parallel output projection's rows are
// summed chunk by chunk as they are made, and the MoE's summed chunk by chunk while the next layer's input norm and
// first projection consume the chunks already summed. NCCL wants one communicator's collectives issued in the same
// order on every rank and, to be safe, kept on one stream: while a piece overlaps, every collective of the GPU goes
// through here (reduce() for the ones the compute stream needs at once).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "sdk/status.h"
#include "sdk/tensor.h"

typedef struct CUstream_st* cudaStream_t;
typedef struct CUevent_st* cudaEvent_t;

namespace volt {

// Row chunks of a piece of `rows` rows: `count` chunks of `size` rows (a multiple of 64), the last one shorter.
struct RowChunks {
    int count = 1;
    int64_t rows = 0, size = 0;
    int64_t begin(int c) const { return c * size; }
    int64_t length(int c) const { return c + 1 < count ? size : rows - begin(c); }
};

class CommOverlap {
public:
    static constexpr int kMaxChunks = 4;
    // Pieces shorter than this are summed in one collective on the compute stream (decode steps, short prompts: the
    // collective's ~30 us launch latency would be paid once per chunk).
    static constexpr int64_t kMinRows = 2048;
    static constexpr int64_t kMinChunkRows = 1024;
    // The collective itself: sums `count` elements at `data` in place, enqueued on `stream`.
    using Reduce = std::function<Status(void* data, int64_t count, DType dtype, cudaStream_t stream)>;
    // Producer of rows [r0, r0 + n) on the compute stream.
    using Rows = std::function<Status(int64_t r0, int64_t n)>;

    // The stream and events on the current device.
    static Expected<std::unique_ptr<CommOverlap>> create();
    ~CommOverlap();
    CommOverlap(const CommOverlap&) = delete;
    CommOverlap& operator=(const CommOverlap&) = delete;

    // How a piece of `rows` rows is cut: one chunk (not overlapped) below kMinRows, else up to kMaxChunks of at least
    // kMinChunkRows rows.
    static RowChunks chunks(int64_t rows);

    // The collective, ordered after everything queued on `main`; `main` waits for it.
    Status reduce(cudaStream_t main, void* data, int64_t count, DType dtype, const Reduce& r);
    // data [rows, width]: produce(c's rows) on `main` for each chunk, each chunk summed here as soon as it is made
    // while `main` makes the next; `main` waits for every sum at the end.
    Status reduce_as_made(cudaStream_t main, const RowChunks& ch, void* data, int64_t width, DType dtype,
                          const Rows& produce, const Reduce& r);
    // data [rows, width], made by everything queued on `main` so far: the chunks summed here one after another;
    // wait_rows(c) makes `main` wait for chunk c's sum (every chunk must be waited for before `data` is reused).
    Status start_rows(cudaStream_t main, const RowChunks& ch, void* data, int64_t width, DType dtype,
                      const Reduce& r);
    Status wait_rows(cudaStream_t main, int c);
    // `main` waits for everything queued here.
    Status join(cudaStream_t main);
    // The host waits for everything queued here.
    Status synchronize();
    cudaStream_t stream() const { return stream_; }

private:
    CommOverlap() = default;
    // This stream waits for everything queued on `main` so far (through made_[c]).
    Status follow(cudaStream_t main, int c);
    // The sum of chunk c's rows of data [rows, width], enqueued here.
    Status sum_chunk(const RowChunks& ch, int c, void* data, int64_t width, DType dtype, const Reduce& r);
    cudaStream_t stream_ = nullptr;
    cudaEvent_t made_[kMaxChunks] = {};  // recorded on main: a chunk (or all of main's work) is ready to be summed
    cudaEvent_t summed_[kMaxChunks] = {};  // recorded here: a chunk's sum is done
};

}  // namespace volt
