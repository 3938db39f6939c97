// Communication between the processes of one data-parallel training job:
// the few collectives the trainer needs, behind an interface with a
// single-process implementation and an MPI one (comm_mpi.cc); NCCL slots in
// beside them with the CUDA backend. Only the thread that created the Comm
// calls it.
#pragma once

#include <cstdint>
#include <memory>

namespace dllm {

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual const char* name() const = 0;  // "single", "mpi"

  // Sums `x` over all ranks in place; every rank gets the same bits.
  virtual void AllReduceSum(float* x, int64_t n) = 0;
  virtual void AllReduceSum(double* x, int64_t n) = 0;
  // The same without waiting: the range must stay untouched until WaitAll.
  // Progress() lets pending reductions advance (MPI moves nonblocking
  // collectives only inside its calls); WaitAll finishes all of them.
  virtual void StartAllReduceSum(float* x, int64_t n) = 0;
  virtual void Progress() = 0;
  virtual void WaitAll() = 0;
  // Copies `bytes` from `root` to every rank.
  virtual void Broadcast(void* data, int64_t bytes, int root) = 0;
  virtual void Barrier() = 0;
  // Ends every process of the job with `code` (a failed rank must not leave
  // the others waiting in a collective forever).
  [[noreturn]] virtual void Abort(int code) = 0;
};

// One process: every collective is the identity.
std::unique_ptr<Comm> MakeSingleProcessComm();

// Whether this process was started by an MPI launcher (mpirun, mpiexec,
// srun with PMI) into a job of more than one process.
bool LaunchedByMpiLauncher();

// MPI_COMM_WORLD (initialised on first use, finalised when the Comm is
// destroyed). Throws dllm::Error when dllm was built without MPI.
std::unique_ptr<Comm> MakeMpiComm();

}  // namespace dllm
