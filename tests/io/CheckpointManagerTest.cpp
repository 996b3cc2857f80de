#include <doctest/doctest.h>

#include "core/io/CheckpointManager.h"
#include "tests/io/IoTestUtil.h"

using namespace mantissa;
using namespace mantissa::io;
using namespace mantissa::io::test;

namespace {

/// One scalar of state, so each checkpoint is recognisable by its value.
class Counter : public Stateful {
 public:
  int64_t value = 0;
  void saveState(StateDict& out, const std::string& prefix) const override {
    out.tensors[prefix + "value"] = Tensor::fromInts({value}, {1});
  }
  void loadState(const StateDict& in, const std::string& prefix) override {
    value = in.tensor(prefix + "value").item<int64_t>();
  }
};

CheckpointMeta metaFor(int64_t epoch, double metric) {
  CheckpointMeta m;
  m.model = "counter";
  m.epoch = epoch;
  m.step = epoch * 10;
  m.metricName = "val_acc";
  m.metric = metric;
  return m;
}

/// The counter value stored in a checkpoint file.
int64_t valueIn(const std::filesystem::path& p) {
  Counter c;
  loadCheckpoint(p, {{"c", &c}});
  return c.value;
}

/// Runs epochs 1..5 with these metrics through a manager; the counter holds the epoch.
void runEpochs(CheckpointManager& mgr, const std::vector<double>& metrics, int64_t first = 1) {
  Counter c;
  for (size_t i = 0; i < metrics.size(); ++i) {
    const int64_t epoch = first + static_cast<int64_t>(i);
    c.value = epoch;
    mgr.save({{"c", &c}}, metaFor(epoch, metrics[i]));
  }
}

}  // namespace

TEST_CASE("CheckpointManager: keeps the last K and the best (higher is better)") {
  TempDir dir;
  CheckpointManager mgr({.path = dir / "run.h5", .keep = 3});
  runEpochs(mgr, {0.5, 0.7, 0.6, 0.9, 0.8});
  CHECK(dir.list() == std::vector<std::string>{"run-best.h5", "run-epoch0003-step00000030.h5",
                                               "run-epoch0004-step00000040.h5",
                                               "run-epoch0005-step00000050.h5", "run.h5"});
  CHECK(valueIn(dir / "run.h5") == 5);
  CHECK(valueIn(dir / "run-best.h5") == 4);
  CHECK(readMeta(dir / "run-best.h5").metric == 0.9);
  CHECK(mgr.bestMetric() == 0.9);
  CHECK(valueIn(dir / "run-epoch0003-step00000030.h5") == 3);
  REQUIRE(mgr.history().size() == 3);
  CHECK(mgr.history().front().filename() == "run-epoch0003-step00000030.h5");

  SUBCASE("the names are independent files: deleting one keeps the others readable") {
    std::filesystem::remove(dir / "run-epoch0005-step00000050.h5");
    CHECK(valueIn(dir / "run.h5") == 5);
    std::filesystem::remove(dir / "run-epoch0004-step00000040.h5");
    CHECK(valueIn(dir / "run-best.h5") == 4);
  }
}

TEST_CASE("CheckpointManager: lower is better; keep 1 writes only the latest and the best") {
  TempDir dir;
  CheckpointManager mgr({.path = dir / "loss.h5", .goal = MetricGoal::Minimize});
  runEpochs(mgr, {2.0, 1.5, 1.7});
  CHECK(dir.list() == std::vector<std::string>{"loss-best.h5", "loss.h5"});
  CHECK(valueIn(dir / "loss.h5") == 3);
  CHECK(valueIn(dir / "loss-best.h5") == 2);
}

TEST_CASE("CheckpointManager: saves without a metric never become best") {
  TempDir dir;
  CheckpointManager mgr({.path = dir / "run.h5", .keep = 2});
  Counter c;
  CheckpointMeta m = metaFor(1, 0.0);
  m.metricName.clear();
  mgr.save({{"c", &c}}, m);
  runEpochs(mgr, {std::numeric_limits<double>::quiet_NaN()}, 2);
  CHECK_FALSE(std::filesystem::exists(mgr.bestPath()));
  CHECK_FALSE(mgr.bestMetric().has_value());
  CHECK(mgr.history().size() == 2);
}

TEST_CASE("CheckpointManager: a resumed run defends the existing best, a new run replaces it") {
  TempDir dir;
  {
    CheckpointManager first({.path = dir / "run.h5", .keep = 2});
    runEpochs(first, {0.5, 0.9});
  }
  SUBCASE("resume") {
    CheckpointManager again({.path = dir / "run.h5", .keep = 2, .resume = true});
    CHECK(again.bestMetric() == 0.9);
    runEpochs(again, {0.8}, 3);
    CHECK(valueIn(dir / "run-best.h5") == 2);
    runEpochs(again, {0.95}, 4);
    CHECK(valueIn(dir / "run-best.h5") == 4);
  }
  SUBCASE("new run") {
    CheckpointManager fresh({.path = dir / "run.h5", .keep = 2});
    CHECK_FALSE(fresh.bestMetric().has_value());
    runEpochs(fresh, {0.1});
    CHECK(valueIn(dir / "run-best.h5") == 1);
  }
  SUBCASE("branching off an earlier epoch never deletes later history") {
    CheckpointManager branch({.path = dir / "run.h5", .keep = 2, .resume = true});
    runEpochs(branch, {0.3}, 1);  // epoch 1 again: epoch 2 is "later" and stays
    CHECK(std::filesystem::exists(dir / "run-epoch0002-step00000020.h5"));
    CHECK(valueIn(dir / "run.h5") == 1);
  }
}

TEST_CASE("CheckpointManager: bad options are refused") {
  CHECK_THROWS_WITH_AS(CheckpointManager({.path = "run.h5", .keep = 0}),
                       doctest::Contains("--keep must be at least 1"), Error);
  CHECK_THROWS_WITH_AS(CheckpointManager({.path = ""}), doctest::Contains("empty checkpoint path"),
                       Error);
}
