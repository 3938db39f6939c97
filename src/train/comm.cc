// The single-process Comm and how a launched MPI job is recognised.
#include "train/comm.h"

#include <cstdlib>
#include <cstring>

namespace dllm {

namespace {

class SingleProcessComm : public Comm {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  const char* name() const override { return "single"; }
  void AllReduceSum(float*, int64_t) override {}
  void AllReduceSum(double*, int64_t) override {}
  void StartAllReduceSum(float*, int64_t) override {}
  void Progress() override {}
  void WaitAll() override {}
  void Broadcast(void*, int64_t, int) override {}
  void Barrier() override {}
  [[noreturn]] void Abort(int code) override { std::exit(code); }
};

}  // namespace

std::unique_ptr<Comm> MakeSingleProcessComm() {
  return std::make_unique<SingleProcessComm>();
}

bool LaunchedByMpiLauncher() {
  // Open MPI's mpirun, MPICH / Intel MPI's hydra and Slurm's PMI all tell
  // their processes the job's size in the environment.
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"}) {
    const char* v = std::getenv(var);
    if (v != nullptr && std::atoi(v) > 1) return true;
  }
  return false;
}

}  // namespace dllm
