#include "text/cuda/comm_overlap.h"

#include <cuda_runtime.h>

#include <algorithm>

#include "sdk/cuda_check.h"

namespace volt {

Expected<std::unique_ptr<CommOverlap>> CommOverlap::create() {
    std::unique_ptr<CommOverlap> o(new CommOverlap());
    // Blocking, like the compute stream: ordered with the legacy stream on which buffers are allocated and freed, so
    // a piece's buffers are never released under a sum still running here. The highest priority: a sum's CTAs take
    // the first SMs the compute stream's kernels free instead of queueing behind their next wave (the sum on the
    // other GPU waits for this one's CTAs to run).
    int least = 0, greatest = 0;
    VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaDeviceGetStreamPriorityRange(&least, &greatest)));
    VOLT_RETURN_IF_ERROR(
        VOLT_CUDA_STATUS(cudaStreamCreateWithPriority(&o->stream_, cudaStreamDefault, greatest)));
    for (int c = 0; c < kMaxChunks; ++c) {
        VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaEventCreateWithFlags(&o->made_[c], cudaEventDisableTiming)));
        VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaEventCreateWithFlags(&o->summed_[c], cudaEventDisableTiming)));
    }
    return o;
}

CommOverlap::~CommOverlap() {
    if (stream_) (void)cudaStreamSynchronize(stream_);
    for (int c = 0; c < kMaxChunks; ++c) {
        if (made_[c]) (void)cudaEventDestroy(made_[c]);
        if (summed_[c]) (void)cudaEventDestroy(summed_[c]);
    }
    if (stream_) (void)cudaStreamDestroy(stream_);
}

RowChunks CommOverlap::chunks(int64_t rows) {
    RowChunks ch;
    ch.rows = rows;
    ch.count = rows < kMinRows ? 1 : static_cast<int>(std::clamp<int64_t>(rows / kMinChunkRows, 1, kMaxChunks));
    ch.size = (rows + ch.count - 1) / ch.count;
    if (ch.count > 1) ch.size = (ch.size + 63) / 64 * 64;  // GEMM-friendly row offsets
    while (ch.count > 1 && ch.begin(ch.count - 1) >= rows) --ch.count;
    return ch;
}

Status CommOverlap::follow(cudaStream_t main, int c) {
    VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaEventRecord(made_[c], main)));
    return VOLT_CUDA_STATUS(cudaStreamWaitEvent(stream_, made_[c], 0));
}

Status CommOverlap::sum_chunk(const RowChunks& ch, int c, void* data, int64_t width, DType dtype, const Reduce& r) {
    const int64_t row_bytes = width * static_cast<int64_t>(dtype_size(dtype));
    return r(static_cast<char*>(data) + ch.begin(c) * row_bytes, ch.length(c) * width, dtype, stream_);
}

Status CommOverlap::reduce(cudaStream_t main, void* data, int64_t count, DType dtype, const Reduce& r) {
    VOLT_RETURN_IF_ERROR(follow(main, 0));
    VOLT_RETURN_IF_ERROR(r(data, count, dtype, stream_));
    return join(main);
}

Status CommOverlap::reduce_as_made(cudaStream_t main, const RowChunks& ch, void* data, int64_t width, DType dtype,
                                   const Rows& produce, const Reduce& r) {
    for (int c = 0; c < ch.count; ++c) {
        VOLT_RETURN_IF_ERROR(produce(ch.begin(c), ch.length(c)));
        VOLT_RETURN_IF_ERROR(follow(main, c));
        VOLT_RETURN_IF_ERROR(sum_chunk(ch, c, data, width, dtype, r));
    }
    return join(main);
}

Status CommOverlap::start_rows(cudaStream_t main, const RowChunks& ch, void* data, int64_t width, DType dtype,
                               const Reduce& r) {
    VOLT_RETURN_IF_ERROR(follow(main, 0));
    for (int c = 0; c < ch.count; ++c) {
        VOLT_RETURN_IF_ERROR(sum_chunk(ch, c, data, width, dtype, r));
        VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaEventRecord(summed_[c], stream_)));
    }
    return Status::ok();
}

Status CommOverlap::wait_rows(cudaStream_t main, int c) {
    return VOLT_CUDA_STATUS(cudaStreamWaitEvent(main, summed_[c], 0));
}

Status CommOverlap::join(cudaStream_t main) {
    VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaEventRecord(summed_[0], stream_)));
    return VOLT_CUDA_STATUS(cudaStreamWaitEvent(main, summed_[0], 0));
}

Status CommOverlap::synchronize() { return VOLT_CUDA_STATUS(cudaStreamSynchronize(stream_)); }

}  // namespace volt
