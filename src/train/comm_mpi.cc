// The Comm over MPI_COMM_WORLD. Compiled without MPI (DLLM_HAVE_MPI unset)
// it only explains how to get it.
#include "dllm/error.h"
#include "train/comm.h"

#ifdef DLLM_HAVE_MPI
// The C API only: the deprecated C++ bindings need a library of their own.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

namespace dllm {

namespace {

// MPI counts are ints: longer buffers go in pieces of this many elements.
constexpr int64_t kMaxCount = int64_t(1) << 30;

void Check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  Fail("MPI: ", what, " failed: ", std::string(msg, size_t(len)));
}

class MpiComm : public Comm {
 public:
  MpiComm() {
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    DLLM_CHECK(!finalized,
               "MPI: already finalised in this process (one training run per "
               "process under MPI)");
    if (!inited) {
      // Only the training thread calls MPI; the pool's workers never do.
      int provided = 0;
      Check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided),
            "MPI_Init_thread");
      owns_ = true;
    }
    // Errors come back as codes (Check turns them into dllm::Error) rather
    // than aborting inside the library without a word.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiComm() override {
    if (!pending_.empty())
      MPI_Waitall(int(pending_.size()), pending_.data(), MPI_STATUSES_IGNORE);
    if (owns_) MPI_Finalize();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* name() const override { return "mpi"; }

  void AllReduceSum(float* x, int64_t n) override {
    for (int64_t i = 0; i < n; i += kMaxCount)
      Check(MPI_Allreduce(MPI_IN_PLACE, x + i, int(std::min(kMaxCount, n - i)),
                          MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
            "MPI_Allreduce");
  }
  void AllReduceSum(double* x, int64_t n) override {
    for (int64_t i = 0; i < n; i += kMaxCount)
      Check(MPI_Allreduce(MPI_IN_PLACE, x + i, int(std::min(kMaxCount, n - i)),
                          MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
            "MPI_Allreduce");
  }
  void StartAllReduceSum(float* x, int64_t n) override {
    for (int64_t i = 0; i < n; i += kMaxCount) {
      MPI_Request r;
      Check(MPI_Iallreduce(MPI_IN_PLACE, x + i, int(std::min(kMaxCount, n - i)),
                           MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &r),
            "MPI_Iallreduce");
      pending_.push_back(r);
    }
  }
  void Progress() override {
    if (pending_.empty()) return;
    int done = 0;
    Check(MPI_Testall(int(pending_.size()), pending_.data(), &done,
                      MPI_STATUSES_IGNORE),
          "MPI_Testall");
    if (done) pending_.clear();
  }
  void WaitAll() override {
    if (pending_.empty()) return;
    Check(
        MPI_Waitall(int(pending_.size()), pending_.data(), MPI_STATUSES_IGNORE),
        "MPI_Waitall");
    pending_.clear();
  }
  void Broadcast(void* data, int64_t bytes, int root) override {
    char* p = static_cast<char*>(data);
    for (int64_t i = 0; i < bytes; i += kMaxCount)
      Check(MPI_Bcast(p + i, int(std::min(kMaxCount, bytes - i)), MPI_BYTE,
                      root, MPI_COMM_WORLD),
            "MPI_Bcast");
  }
  void Barrier() override { Check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }
  [[noreturn]] void Abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; in case it does
  }

 private:
  int rank_ = 0, size_ = 1;
  bool owns_ = false;
  std::vector<MPI_Request> pending_;
};

}  // namespace

std::unique_ptr<Comm> MakeMpiComm() { return std::make_unique<MpiComm>(); }

}  // namespace dllm

#else  // !DLLM_HAVE_MPI

namespace dllm {

std::unique_ptr<Comm> MakeMpiComm() {
  Fail(
      "this dllm was built without MPI, so it cannot train across processes: "
      "install Debian's libopenmpi-dev and openmpi-bin (scripts/setup.sh "
      "does) and rebuild");
}

}  // namespace dllm

#endif
