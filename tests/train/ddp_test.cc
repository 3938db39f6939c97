// Data-parallel training: N processes under mpirun follow the one-process
// run of the same global batch step for step, checkpoints move between
// process counts, and a killed rank ends the job. Plus the pieces in
// process: the backward's gradient ranges and the bucketing over them.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "base/mmap_file.h"
#include "dllm/train.h"
#include "dllm/train_run.h"
#include "test_util.h"
#include "train/comm.h"
#include "train/grad_sync.h"

namespace dllm {
namespace {

// ---- in process ----

TEST(DdpPieces, BackwardReportsEveryGradientOnceInFallingOrder) {
  for (bool tied : {false, true})
    for (Arch arch : {Arch::kLLaDA, Arch::kDream}) {
      ModelConfig c = test::TinyConfig(arch);
      c.tie_embeddings = tied;
      TrainableModel m(c, 1);
      std::vector<std::pair<int64_t, int64_t>> seen;
      m.set_grads_ready([&](int64_t at, int64_t n) {
        seen.push_back({at, n});
      });
      TrainBatch b;
      b.B = 2, b.T = 8;
      for (int i = 0; i < 16; ++i) {
        b.ids.push_back(i % 40);
        b.mask.push_back(i % 2);
      }
      b.p = {0.5f, 0.5f};
      m.ZeroGrads();
      m.ForwardBackward(b, Objective::kMDM);
      // Head (+ final norm), two layers, embedding: adjacent, falling.
      ASSERT_EQ(seen.size(), 4u) << "tied " << tied;
      int64_t end = m.num_params();
      for (const auto& [at, n] : seen) {
        EXPECT_EQ(at + n, end) << "tied " << tied;
        end = at;
      }
      EXPECT_EQ(end, 0);
      // The embedding's range comes last, after its gradient is complete.
      EXPECT_EQ(seen.back().second, int64_t(c.vocab_size) * c.d_model);
    }
}

// Records what the sync hands to the communication.
class RecordingComm : public Comm {
 public:
  int rank() const override { return 0; }
  int size() const override { return 2; }
  const char* name() const override { return "recording"; }
  void AllReduceSum(float* x, int64_t n) override { whole.push_back(n); }
  void AllReduceSum(double*, int64_t) override {}
  void StartAllReduceSum(float* x, int64_t n) override {
    started.push_back({x, n});
  }
  void Progress() override { ++progress; }
  void WaitAll() override { ++waits; }
  void Broadcast(void*, int64_t, int) override {}
  void Barrier() override {}
  [[noreturn]] void Abort(int code) override { std::abort(); }
  std::vector<std::pair<float*, int64_t>> started;
  std::vector<int64_t> whole;
  int progress = 0, waits = 0;
};

TEST(DdpPieces, GradSyncFillsBucketsAndSendsTheRest) {
  std::vector<float> g(1000);
  RecordingComm comm;
  GradSync sync(comm, g.data(), 1000, 300 * 4);  // buckets of 300 floats
  // Ranges as a backward pass reports them: adjacent, falling.
  for (auto [at, n] : std::vector<std::pair<int, int>>{
           {900, 100}, {700, 200}, {500, 200}, {100, 400}, {0, 100}})
    sync.Ready(at, n);
  sync.Finish();
  // [700, 1000) reaches 300, [100, 700) 600, then the rest [0, 100).
  ASSERT_EQ(comm.started.size(), 3u);
  EXPECT_EQ(comm.started[0].first, g.data() + 700);
  EXPECT_EQ(comm.started[0].second, 300);
  EXPECT_EQ(comm.started[1].first, g.data() + 100);
  EXPECT_EQ(comm.started[1].second, 600);
  EXPECT_EQ(comm.started[2].first, g.data());
  EXPECT_EQ(comm.started[2].second, 100);
  EXPECT_EQ(comm.waits, 1);
  EXPECT_EQ(comm.progress, 5);
  EXPECT_TRUE(comm.whole.empty());

  // A range never reported is an error, not a silent divergence.
  RecordingComm c2;
  GradSync gap(c2, g.data(), 1000, 300 * 4);
  gap.Ready(500, 500);
  EXPECT_DLLM_ERROR(gap.Finish(), "500 of 1000 gradients");

  // Bucket 0: one all-reduce of everything at the end.
  RecordingComm c3;
  GradSync whole(c3, g.data(), 1000, 0);
  whole.Ready(0, 1000);
  whole.Finish();
  EXPECT_TRUE(c3.started.empty());
  EXPECT_EQ(c3.whole, std::vector<int64_t>{1000});
}

// ---- under mpirun ----

// mpirun's fixed flags: root is allowed (CI runs as root), more processes
// than cores are allowed, and ASan builds skip the leak check (Open MPI keeps
// allocations to the end).
std::string Mpirun(int np) {
  return "env ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 mpirun "
         "--allow-run-as-root --oversubscribe -np " +
         std::to_string(np) + " " + DLLM_CLI_PATH + " ";
}

bool HaveMpirun() {
  return std::system("command -v mpirun > /dev/null 2>&1") == 0;
}

#define SKIP_WITHOUT_MPI()                                               \
  do {                                                                   \
    if (!HaveMpi()) GTEST_SKIP() << "dllm was built without MPI";        \
    if (!HaveMpirun()) GTEST_SKIP() << "mpirun not found (openmpi-bin)"; \
  } while (0)

// A tokenizer and data folder of a small made-up corpus in `dir`.
void PrepareData(const test::TempDir& dir) {
  {
    std::ofstream corpus(dir / "corpus.txt");
    const char* words[] = {"to",     "be",   "or",       "not",     "that",
                           "is",     "the",  "question", "whether", "tis",
                           "nobler", "mind", "suffer",   "slings",  "fortune"};
    uint64_t x = 7;
    for (int line = 0; line < 800; ++line) {
      for (int w = 0; w < 12; ++w) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        corpus << words[(x >> 33) % 15] << (w < 11 ? " " : ".\n");
      }
    }
  }
  auto o = test::RunDllm(
      "tokenizer train --vocab-size 300 --special "
      "'<|endoftext|>,<|mask|>' " +
      (dir / "corpus.txt") + " -o " + (dir / "tokenizer.json"));
  ASSERT_EQ(o.code, 0) << o.out;
  o = test::RunDllm("data prepare --tokenizer " + dir.path() + " " +
                    (dir / "corpus.txt") + " -o " + (dir / "data"));
  ASSERT_EQ(o.code, 0) << o.out;
}

// The (step -> loss, grad norm) rows of a train_log.csv; validation losses
// into `val` (step -> nats per token) when given.
std::map<int, std::pair<double, double>> LogRows(
    const std::string& path, std::map<int, double>* val = nullptr) {
  std::map<int, std::pair<double, double>> rows;
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);  // header
  while (std::getline(f, line)) {
    int step = 0;
    double loss = 0, lr = 0, norm = 0;
    double ms = 0, tps = 0, v = 0;
    const int got = std::sscanf(line.c_str(), "%d,%lf,%lf,%lf,%lf,%lf,%lf",
                                &step, &loss, &lr, &norm, &ms, &tps, &v);
    if (got >= 4) rows[step] = {loss, norm};
    if (got == 7 && val) (*val)[step] = v;
  }
  return rows;
}

void ExpectSameRun(const std::string& a, const std::string& b, int steps,
                   const std::string& what) {
  std::map<int, double> va, vb;
  auto ra = LogRows(a, &va), rb = LogRows(b, &vb);
  // Validation (sharded over the ranks) gives the same numbers too.
  EXPECT_EQ(va.size(), vb.size()) << what;
  for (const auto& [step, v] : va)
    EXPECT_NEAR(v, vb[step], 1e-5 * std::abs(v))
        << what << ": validation at step " << step;
  ASSERT_EQ(int(ra.size()), steps) << what << ": " << a;
  ASSERT_EQ(int(rb.size()), steps) << what << ": " << b;
  double worst = 0;
  for (const auto& [step, v] : ra) {
    ASSERT_TRUE(rb.count(step)) << what << ": step " << step;
    const double rel =
        std::abs(v.first - rb[step].first) / std::max(1e-12, std::abs(v.first));
    worst = std::max(worst, rel);
    EXPECT_LE(rel, 1e-5) << what << ": loss at step " << step << " " << v.first
                         << " vs " << rb[step].first;
    EXPECT_LE(std::abs(v.second - rb[step].second), 1e-4 * std::abs(v.second))
        << what << ": grad norm at step " << step;
  }
  std::printf(
      "%s: %d steps, largest relative loss difference %.2e, %d validations\n",
      what.c_str(), steps, worst, int(va.size()));
}

const char* kShape =
    " --layers 2 --d-model 32 --heads 2 --context 32 --warmup 5 --lr 3e-3 "
    "--log-every 1000 -t 1 ";

TEST(Ddp, TwoRanksFollowTheOneProcessRunStepForStep) {
  SKIP_WITHOUT_MPI();
  test::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(PrepareData(dir));
  struct Case {
    const char* name;
    std::string args;
  };
  // An uneven split (5 = 2 + 3), several buckets, no overlap, accumulation.
  const Case cases[] = {
      {"mdm", "--objective mdm --batch 5 --bucket-mb 0.02"},
      {"bd", "--objective bd --block-size 8 --batch 4"},
      {"ar", "--objective ar --batch 4 --accum 2 --bucket-mb 0"},
  };
  for (const Case& c : cases) {
    const std::string args = "train --data " + (dir / "data") + kShape +
                             "--steps 50 --eval-every 25 --eval-windows 4 " +
                             c.args + " -o ";
    auto one = test::RunDllm(args + (dir / std::string(c.name) + "1"));
    ASSERT_EQ(one.code, 0) << one.out;
    auto two =
        test::RunShell(Mpirun(2) + args + (dir / std::string(c.name) + "2"));
    ASSERT_EQ(two.code, 0) << two.out;
    EXPECT_NE(two.out.find("data parallel over 2 processes"), std::string::npos)
        << two.out;
    std::map<int, double> val;
    LogRows(dir / std::string(c.name) + "2/train_log.csv", &val);
    EXPECT_EQ(val.size(), 2u) << c.name << ": validations at 25 and 50";
    ExpectSameRun(dir / std::string(c.name) + "1/train_log.csv",
                  dir / std::string(c.name) + "2/train_log.csv", 50, c.name);
  }
}

TEST(Ddp, CheckpointsResumeWithAnotherProcessCount) {
  SKIP_WITHOUT_MPI();
  test::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(PrepareData(dir));
  const std::string args = "train --data " + (dir / "data") + kShape +
                           "--batch 4 --steps 40 --eval-every 0 -o ";
  auto whole = test::RunDllm(args + (dir / "whole"));
  ASSERT_EQ(whole.code, 0) << whole.out;
  // 2 processes for 20 steps, then 1 to the end; and the other way round.
  auto a = test::RunShell(Mpirun(2) + args + (dir / "a") + " --stop-after 20");
  ASSERT_EQ(a.code, 130) << a.out;
  a = test::RunDllm(args + (dir / "a") + " --resume");
  ASSERT_EQ(a.code, 0) << a.out;
  EXPECT_NE(a.out.find("resuming from"), std::string::npos) << a.out;
  auto b = test::RunDllm(args + (dir / "b") + " --stop-after 20");
  ASSERT_EQ(b.code, 130) << b.out;
  b = test::RunShell(Mpirun(2) + args + (dir / "b") + " --resume");
  ASSERT_EQ(b.code, 0) << b.out;
  ExpectSameRun(dir / "whole/train_log.csv", dir / "a/train_log.csv", 40,
                "2 then 1 process");
  ExpectSameRun(dir / "whole/train_log.csv", dir / "b/train_log.csv", 40,
                "1 then 2 processes");
}

TEST(Ddp, BadOptionsEndEveryRank) {
  SKIP_WITHOUT_MPI();
  test::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(PrepareData(dir));
  auto r = test::RunShell(
      "timeout 60 " + Mpirun(2) + "train --data " + (dir / "data") + kShape +
      "--batch 1 --steps 5 --eval-every 0 -o " + (dir / "m"));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--batch 1 is smaller than the 2 processes"),
            std::string::npos)
      << r.out;
}

// The pids of this test's dllm processes of MPI rank `rank`.
std::vector<int> RankPids(const std::string& marker, int rank) {
  std::vector<int> pids;
  auto ps = test::RunShell("ls /proc");
  size_t pos = 0;
  while (pos < ps.out.size()) {
    size_t nl = ps.out.find('\n', pos);
    if (nl == std::string::npos) nl = ps.out.size();
    const std::string name = ps.out.substr(pos, nl - pos);
    pos = nl + 1;
    if (name.empty() ||
        name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    std::ifstream env("/proc/" + name + "/environ", std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(env)),
                    std::istreambuf_iterator<char>());
    const std::string want_rank =
        std::string("OMPI_COMM_WORLD_RANK=") + std::to_string(rank) + '\0';
    if (all.find("DLLM_DDP_TEST=" + marker) != std::string::npos &&
        all.find(want_rank) != std::string::npos)
      pids.push_back(std::stoi(name));
  }
  return pids;
}

TEST(Ddp, AKilledRankEndsTheJobAndTheCheckpointResumes) {
  SKIP_WITHOUT_MPI();
  test::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(PrepareData(dir));
  const std::string args = "train --data " + (dir / "data") + kShape +
                           "--batch 4 --ckpt-every 5 --eval-every 0 -o " +
                           (dir / "m");
  // In the background, bounded by timeout(1) so that a hang fails the test
  // rather than CI.
  const std::string cmd = "(DLLM_DDP_TEST=" + dir.path() + " timeout 120 " +
                          Mpirun(2) + args + " --steps 1000000 > " +
                          (dir / "out.txt") + " 2>&1; echo $? > " +
                          (dir / "rc.txt") + ") &";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  // Wait for a checkpoint, then kill rank 1.
  using Clock = std::chrono::steady_clock;
  auto deadline = Clock::now() + std::chrono::seconds(60);
  while (!FileExists(dir / "m/checkpoint.safetensors") &&
         Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(FileExists(dir / "m/checkpoint.safetensors"));
  std::vector<int> victims;
  while (victims.empty() && Clock::now() < deadline)
    victims = RankPids(dir.path(), 1);
  ASSERT_EQ(victims.size(), 1u);
  ASSERT_EQ(kill(victims[0], SIGKILL), 0);
  const auto killed = Clock::now();
  while (!FileExists(dir / "rc.txt") &&
         Clock::now() < killed + std::chrono::seconds(90))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const double took =
      std::chrono::duration<double>(Clock::now() - killed).count();
  ASSERT_TRUE(FileExists(dir / "rc.txt")) << "the job did not end";
  std::printf("the job ended %.2f s after rank 1 was killed\n", took);
  EXPECT_LT(took, 10.0);
  const std::string out = ReadFileToString(dir / "out.txt");
  EXPECT_NE(std::stoi(ReadFileToString(dir / "rc.txt")), 0) << out;
  EXPECT_NE(out.find("rank 1"), std::string::npos) << out;
  EXPECT_TRUE(RankPids(dir.path(), 0).empty()) << "rank 0 outlived the job";
  // The last checkpoint resumes (in one process, a few steps further).
  auto r = test::RunDllm(args + " --resume --steps 1000000 --stop-after 3");
  EXPECT_EQ(r.code, 130) << r.out;
  EXPECT_NE(r.out.find("resuming from"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace dllm
