#include <doctest/doctest.h>
#include <hdf5.h>

#include <csignal>
#include <cstring>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/Rng.h"
#include "core/Version.h"
#include "core/io/Checkpoint.h"
#include "core/io/Hdf5.h"
#include "core/io/detail/CheckpointHooks.h"
#include "layers/Linear.h"
#include "optim/Sgd.h"
#include "tests/io/IoTestUtil.h"

using namespace mantissa;
using namespace mantissa::io;
using namespace mantissa::io::test;

namespace {

/// A Stateful holding named tensors and attributes; strict on load (every key it has must be in
/// the file with the same shape). Saves shallow handles, so it runs no tensor kernel (safe in a
/// forked child).
class Blob : public Stateful {
 public:
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> attrs;

  void saveState(StateDict& out, const std::string& prefix) const override {
    for (const auto& [k, t] : tensors) out.tensors[prefix + k] = t;
    for (const auto& [k, v] : attrs) out.attrs[prefix + k] = v;
  }
  void loadState(const StateDict& in, const std::string& prefix) override {
    std::map<std::string, Tensor> t;
    std::map<std::string, std::string> a;
    for (const auto& [k, cur] : tensors) {
      const Tensor& saved = in.tensor(prefix + k);
      MANTISSA_CHECK(saved.shape() == cur.shape(), "Blob: shape of '", prefix, k, "'");
      t[k] = saved.clone();
    }
    for (const auto& [k, v] : attrs) a[k] = in.attr(prefix + k);
    tensors = std::move(t);
    attrs = std::move(a);
  }
};

/// Writes one tensor, then throws: a part failing in the middle of its saveState.
class ThrowingPart : public Stateful {
 public:
  void saveState(StateDict& out, const std::string& prefix) const override {
    out.tensors[prefix + "partial"] = Tensor::zeros({3});
    throw std::runtime_error("simulated failure while saving");
  }
  void loadState(const StateDict&, const std::string&) override {}
};

class TwoLayer : public nn::Module {
 public:
  TwoLayer(Rng& rng, int64_t hidden, bool third = false) : nn::Module("TwoLayer") {
    fc1_ = registerModule("fc1", std::make_shared<nn::Linear>(4, hidden, rng));
    fc2_ = registerModule("fc2", std::make_shared<nn::Linear>(hidden, 3, rng));
    if (third) fc3_ = registerModule("fc3", std::make_shared<nn::Linear>(3, 2, rng));
    registerBuffer("running_mean", Tensor::full({3}, 0.25));
  }
  Tensor forward(const Tensor& x) override { return fc2_->forward(fc1_->forward(x)); }

  std::shared_ptr<nn::Linear> fc1_, fc2_, fc3_;
};

/// TwoLayer without fc2: a checkpoint of TwoLayer has parameters this model lacks.
class OneLayer : public nn::Module {
 public:
  explicit OneLayer(Rng& rng) : nn::Module("OneLayer") {
    fc1_ = registerModule("fc1", std::make_shared<nn::Linear>(4, 8, rng));
    registerBuffer("running_mean", Tensor::full({3}, 0.25));
  }
  Tensor forward(const Tensor& x) override { return fc1_->forward(x); }

  std::shared_ptr<nn::Linear> fc1_;
};

Tensor bytesTensor(int64_t n, int salt) {
  Tensor t = Tensor::zeros({n}, DType::U8);
  for (int64_t i = 0; i < n; ++i) t.data<uint8_t>()[i] = static_cast<uint8_t>(i * 17 + salt);
  return t;
}

bool equalBits(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  Tensor ca = a.contiguous(), cb = b.contiguous();
  return ca.nbytes() == 0 ||
         std::memcmp(static_cast<const char*>(ca.storage()->data()) +
                         ca.offset() * static_cast<int64_t>(elementSize(ca.dtype())),
                     static_cast<const char*>(cb.storage()->data()) +
                         cb.offset() * static_cast<int64_t>(elementSize(cb.dtype())),
                     ca.nbytes()) == 0;
}

Blob makeBlob(int salt) {
  Blob b;
  b.tensors["w"] = Tensor::fromVector({1.f + static_cast<float>(salt), -2.f, 0.5f}, {3});
  b.tensors["codes"] = bytesTensor(64, salt);
  b.tensors["count"] = Tensor::fromInts({salt}, {1});
  b.attrs["name"] = "blob" + std::to_string(salt);
  return b;
}

CheckpointMeta makeMeta(int64_t epoch) {
  CheckpointMeta m;
  m.app = "test_app";
  m.model = "blobnet";
  m.modelConfig = "width=3";
  m.precision = "hbfp8;first,last=fp32";
  m.epoch = epoch;
  m.step = epoch * 100;
  m.seed = 0xfedcba9876543210ull;
  m.commandLine = "test_app --epochs 3 --checkpoint run.h5";
  m.metricName = "val_acc";
  m.metric = 0.875;
  m.extra["note"] = "extra value";
  return m;
}

/// Replaces the integer attribute `name` of /meta as h5py's `attrs[name] = value` does (delete,
/// then create).
void forgeMetaInt(const std::filesystem::path& path, const char* name, int64_t value) {
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(file >= 0);
  hid_t meta = H5Gopen2(file, "/meta", H5P_DEFAULT);
  CHECK(H5Adelete(meta, name) >= 0);
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t attr = H5Acreate2(meta, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(attr >= 0);
  CHECK(H5Awrite(attr, H5T_NATIVE_INT64, &value) >= 0);
  H5Aclose(attr);
  H5Sclose(space);
  H5Gclose(meta);
  H5Fclose(file);
}

bool hasTemp(const TempDir& dir) {
  for (const std::string& n : dir.list()) {
    if (n.find(".tmp-") != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("Checkpoint: parts and metadata round-trip") {
  TempDir dir;
  const auto path = dir / "run.h5";
  Blob data = makeBlob(1), rng = makeBlob(2);
  saveCheckpoint(path, {{"data", &data}, {"rng/", &rng}}, makeMeta(3));

  Blob data2 = makeBlob(10), rng2 = makeBlob(20);
  CheckpointMeta m = loadCheckpoint(path, {{"data/", &data2}, {"rng", &rng2}});
  for (const auto& [k, t] : data.tensors) CHECK(equalBits(data2.tensors.at(k), t));
  for (const auto& [k, t] : rng.tensors) CHECK(equalBits(rng2.tensors.at(k), t));
  CHECK(data2.attrs == data.attrs);
  CHECK(rng2.attrs == rng.attrs);

  const CheckpointMeta want = makeMeta(3);
  CHECK(m.formatVersion == kCheckpointFormatVersion);
  CHECK(m.libraryVersion == versionString());
  CHECK(m.created.size() == 20);  // 2024-05-01T12:34:56Z
  CHECK(m.created.back() == 'Z');
  CHECK(m.app == want.app);
  CHECK(m.model == want.model);
  CHECK(m.modelConfig == want.modelConfig);
  CHECK(m.precision == want.precision);
  CHECK(m.epoch == 3);
  CHECK(m.step == 300);
  CHECK(m.seed == want.seed);
  CHECK(m.commandLine == want.commandLine);
  CHECK(m.metricName == "val_acc");
  CHECK(m.metric == 0.875);
  CHECK(m.extra == want.extra);

  CheckpointMeta quick = readMeta(path);
  CHECK(quick.seed == want.seed);
  CHECK(quick.created == m.created);

  SUBCASE("layout: part groups and typed /meta attributes") {
    StateDict raw = readHdf5(path);
    CHECK(raw.tensors.count("data/w") == 1);
    CHECK(raw.tensors.count("rng/codes") == 1);
    CHECK(raw.attrs.at("data/name") == "blob1");
    CHECK(raw.attrs.at("meta/model") == "blobnet");
    CHECK(raw.attrs.at("meta/note") == "extra value");
    hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    for (const char* name : {"format_version", "epoch", "step", "content_crc32"}) {
      hid_t a = H5Aopen_by_name(file, "/meta", name, H5P_DEFAULT, H5P_DEFAULT);
      hid_t t = H5Aget_type(a);
      CHECK_MESSAGE(H5Tget_class(t) == H5T_INTEGER, name);
      H5Tclose(t);
      H5Aclose(a);
    }
    int64_t version = 0;
    hid_t a = H5Aopen_by_name(file, "/meta", "format_version", H5P_DEFAULT, H5P_DEFAULT);
    H5Aread(a, H5T_NATIVE_INT64, &version);
    H5Aclose(a);
    H5Fclose(file);
    CHECK(version == 1);
  }
}

TEST_CASE("Checkpoint: a Module and its optimizer resume bit for bit") {
  TempDir dir;
  const auto path = dir / "model.h5";
  Rng rng(7);
  TwoLayer model(rng, 8);
  optim::Sgd sgd(model.namedParameters(), {.lr = 0.1, .momentum = 0.9});
  for (auto& [name, p] : model.namedParameters()) p.setGrad(Tensor::full(p.shape(), 0.5));
  sgd.step();
  CheckpointMeta meta;
  meta.model = "two_layer";
  saveCheckpoint(path, {{"", &model}, {"optim", &sgd}}, meta);

  Rng other(99);
  TwoLayer model2(other, 8);
  optim::Sgd sgd2(model2.namedParameters(), {.lr = 0.1, .momentum = 0.9});
  loadCheckpoint(path, {{"", &model2}, {"optim", &sgd2}}, {.expectModel = "two_layer"});
  auto p1 = model.namedParameters(), p2 = model2.namedParameters();
  for (size_t i = 0; i < p1.size(); ++i) CHECK(equalBits(p1[i].second, p2[i].second));
  CHECK(sgd2.iteration() == 1);
  CHECK(equalBits(sgd2.slot("fc1.weight", "momentum_buffer"),
                  sgd.slot("fc1.weight", "momentum_buffer")));

  StateDict raw = readHdf5(path);
  CHECK(raw.tensors.at("model/fc1.weight").shape() == Shape{8, 4});  // PyTorch [out, in]
  CHECK(raw.tensors.count("buffers/running_mean") == 1);
  CHECK(raw.attrs.count("quant/fc1.activation/forward/format") == 1);
  CHECK(raw.tensors.count("optim/fc1.weight/momentum_buffer") == 1);

  SUBCASE("the model alone loads from a full training checkpoint") {
    Rng r(3);
    TwoLayer only(r, 8);
    loadCheckpoint(path, {{"", &only}});
    CHECK(equalBits(only.namedParameters()[0].second, p1[0].second));
  }
  SUBCASE("wrong model name: both names in the message") {
    std::string msg = checkpointErrorOf([&] {
      loadCheckpoint(path, {{"", &model2}}, {.expectModel = "resnet20"});
    });
    CHECK(contains(msg,
                   "model.h5: 'meta/model': checkpoint of model 'two_layer', but the program "
                   "builds 'resnet20'"));
  }
  SUBCASE("shape mismatch names the key and both shapes") {
    Rng r(3);
    TwoLayer wide(r, 5);
    std::string msg = checkpointErrorOf([&] { loadCheckpoint(path, {{"", &wide}}); });
    CHECK(contains(msg,
                   "model.h5: 'model/fc1.bias': shape [8] in the file, the program expects [5]"));
  }
  SUBCASE("extra parameter: the Module's message, prefixed with the file") {
    Rng r(3);
    OneLayer smaller(r);
    std::string msg = checkpointErrorOf([&] { loadCheckpoint(path, {{"", &smaller}}); });
    CHECK(contains(msg, "model.h5: unexpected 'model/fc2.bias': the OneLayer model has no such"));
  }
  SUBCASE("missing parameter: the Module's message, prefixed with the file") {
    Rng r(3);
    TwoLayer bigger(r, 8, /*third=*/true);
    std::string msg = checkpointErrorOf([&] { loadCheckpoint(path, {{"", &bigger}}); });
    CHECK(contains(msg, "model.h5: missing 'model/fc3.weight'"));
  }
}

TEST_CASE("Checkpoint: strict keys, all-or-nothing") {
  TempDir dir;
  const auto path = dir / "run.h5";
  Blob a = makeBlob(1), b = makeBlob(2);
  b.tensors["entries/x/slot"] = Tensor::zeros({2});
  saveCheckpoint(path, {{"a", &a}, {"b", &b}}, makeMeta(1));

  SUBCASE("missing key") {
    Blob b2 = makeBlob(2);
    b2.tensors["extra_needed"] = Tensor::zeros({1});
    std::string msg = checkpointErrorOf([&] { loadCheckpoint(path, {{"b", &b2}}); });
    CHECK(contains(msg, "run.h5: state: missing tensor 'b/extra_needed'"));
  }
  SUBCASE("extra key in a group the parts use") {
    Blob b2 = makeBlob(2);  // no entries/x
    std::string msg = checkpointErrorOf([&] { loadCheckpoint(path, {{"b", &b2}}); });
    CHECK(contains(msg, "run.h5: 'b/entries/x/slot': unexpected"));
    CheckpointMeta m;
    CHECK_NOTHROW(m = loadCheckpoint(path, {{"b", &b2}}, {.strictKeys = false}));
  }
  SUBCASE("a failing part leaves every part as it was") {
    Blob a2 = makeBlob(5), b2 = makeBlob(6);
    b2.tensors["extra_needed"] = Tensor::zeros({1});
    const Tensor before = a2.tensors.at("w").clone();
    std::string msg = checkpointErrorOf([&] { loadCheckpoint(path, {{"a", &a2}, {"b", &b2}}); });
    CHECK(contains(msg, "missing tensor 'b/extra_needed'"));
    CHECK(equalBits(a2.tensors.at("w"), before));  // a was loaded, then restored
    CHECK(a2.attrs.at("name") == "blob5");
  }
  SUBCASE("not a checkpoint: a plain state file") {
    StateDict s;
    s.tensors["x"] = Tensor::zeros({1});
    writeHdf5(dir / "plain.h5", s);
    CHECK(contains(checkpointErrorOf([&] { readMeta(dir / "plain.h5"); }),
                   "plain.h5: not a Mantissa checkpoint: no /meta group"));
  }
  SUBCASE("newer format version") {
    forgeMetaInt(path, "format_version", kCheckpointFormatVersion + 1);
    Blob a2 = makeBlob(1);
    std::string msg = checkpointErrorOf([&] { loadCheckpoint(path, {{"a", &a2}}); });
    CHECK(contains(msg, "run.h5: checkpoint format version 2"));
    CHECK(contains(msg, "is newer than this build supports"));
    CHECK(contains(checkpointErrorOf([&] { readMeta(path); }), "upgrade Mantissa"));
  }
  SUBCASE("an edit after writing breaks the content checksum") {
    forgeMetaInt(path, "epoch", 7);
    Blob a2 = makeBlob(1);
    std::string msg = checkpointErrorOf([&] { loadCheckpoint(path, {{"a", &a2}}); });
    CHECK(contains(msg, "run.h5: damaged: content checksum mismatch"));
  }
}

TEST_CASE("Checkpoint: damaged and foreign files give one clear error naming the file") {
  TempDir dir;
  const auto path = dir / "run.h5";
  Blob a = makeBlob(1);
  a.tensors["big"] = bytesTensor(4096, 3);
  saveCheckpoint(path, {{"a", &a}}, makeMeta(1));
  const std::vector<char> good = readBytes(path);
  auto load = [&](const std::filesystem::path& p) {
    Blob fresh = makeBlob(9);
    fresh.tensors["big"] = bytesTensor(4096, 0);
    loadCheckpoint(p, {{"a", &fresh}});
    return fresh;
  };

  CHECK(contains(checkpointErrorOf([&] { load(dir / "nope.h5"); }), "nope.h5: no such file"));
  writeBytes(dir / "text.h5", std::vector<char>(200, 'x'));
  CHECK(contains(checkpointErrorOf([&] { load(dir / "text.h5"); }), "text.h5: not an HDF5 file"));

  SUBCASE("truncated at several offsets") {
    for (size_t cut :
         {size_t{0}, size_t{8}, size_t{512}, good.size() / 3, good.size() / 2, good.size() - 1}) {
      INFO("cut at " << cut << " of " << good.size());
      writeBytes(dir / "cut.h5", std::vector<char>(good.begin(), good.begin() + cut));
      CHECK(contains(checkpointErrorOf([&] { load(dir / "cut.h5"); }), "cut.h5: "));
    }
  }
  SUBCASE("a flipped byte inside tensor data fails the content checksum") {
    // Locate the raw bytes of tensor `big` independently: its pattern is unique in the file.
    std::vector<char> pattern(64);
    for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<char>(i * 17 + 3);
    auto at = std::search(good.begin(), good.end(), pattern.begin(), pattern.end());
    REQUIRE(at != good.end());
    std::vector<char> bad = good;
    bad[static_cast<size_t>(at - good.begin()) + 1000] ^= 0x10;
    writeBytes(dir / "flip.h5", bad);
    CHECK(contains(checkpointErrorOf([&] { load(dir / "flip.h5"); }),
                   "flip.h5: damaged: content checksum mismatch"));
  }
  SUBCASE("a flipped byte anywhere: an error naming the file or the exact same state") {
    int errors = 0, clean = 0;
    const Blob want = load(path);
    for (size_t off = 0; off < good.size(); off += good.size() / 97 + 1) {
      std::vector<char> bad = good;
      bad[off] = static_cast<char>(bad[off] ^ 0x5a);
      writeBytes(dir / "flip.h5", bad);
      try {
        Blob got = load(dir / "flip.h5");
        // Unused bytes (free space, padding) may change without harm, never the state.
        for (const auto& [k, t] : want.tensors) CHECK(equalBits(got.tensors.at(k), t));
        CHECK(got.attrs == want.attrs);
        ++clean;
      } catch (const CheckpointError& e) {
        CHECK_MESSAGE(contains(e.what(), "flip.h5: "), e.what());
        ++errors;
      }
    }
    CHECK(errors > clean);
  }
}

TEST_CASE("Checkpoint: a failed save leaves the previous checkpoint intact") {
  TempDir dir;
  const auto path = dir / "run.h5";
  Blob a = makeBlob(1);
  saveCheckpoint(path, {{"a", &a}}, makeMeta(1));
  const std::vector<char> before = readBytes(path);
  Blob changed = makeBlob(2);

  SUBCASE("a part throws while saving") {
    ThrowingPart bad;
    std::string msg = checkpointErrorOf([&] {
      saveCheckpoint(path, {{"a", &changed}, {"bad", &bad}}, makeMeta(2));
    });
    CHECK(contains(msg, "run.h5: part 'bad/' failed to save its state: simulated failure"));
  }
  SUBCASE("the write throws just before the rename") {
    io::detail::AtomicWriteHooks hooks{.beforeRename = [](const std::filesystem::path& tmp) {
      CHECK(std::filesystem::exists(tmp));
      throw std::runtime_error("injected");
    }};
    CHECK_THROWS_WITH(io::detail::saveCheckpoint(path, {{"a", &changed}}, makeMeta(2), hooks),
                      "injected");
  }
  SUBCASE("invalid input is refused before anything is written") {
    CheckpointMeta m = makeMeta(2);
    m.extra["epoch"] = "clash";
    CHECK(contains(checkpointErrorOf([&] {
                     saveCheckpoint(path, {{"a", &changed}}, m);
                   }),
                   "'meta/epoch': extra metadata name collides"));
    CHECK(contains(checkpointErrorOf([&] {
                     saveCheckpoint(path, {{"a", &changed}, {"a", &changed}}, makeMeta(2));
                   }),
                   "'a/codes': two parts write the same tensor"));
    CHECK(contains(checkpointErrorOf([&] {
                     saveCheckpoint(path, {{"meta", &changed}}, makeMeta(2));
                   }),
                   "reserved"));
  }
  SUBCASE("the disk fills up in the middle of the write (child process, RLIMIT_FSIZE)") {
    Blob big = makeBlob(3);
    big.tensors["big"] = bytesTensor(1 << 20, 1);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // Writes past 256 KiB fail with EFBIG, as on a full disk (SIGXFSZ ignored).
      std::signal(SIGXFSZ, SIG_IGN);
      rlimit lim{256 << 10, 256 << 10};
      setrlimit(RLIMIT_FSIZE, &lim);
      int code = 1;
      try {
        saveCheckpoint(path, {{"a", &big}}, makeMeta(2));
        code = 2;  // should have failed
      } catch (const CheckpointError& e) {
        code = contains(e.what(), "run.h5: ") && contains(e.what(), "previous checkpoint") ? 0 : 3;
      } catch (...) {
        code = 4;
      }
      std::_Exit(code);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  CHECK(readBytes(path) == before);
  CHECK_FALSE(hasTemp(dir));
  Blob loaded = makeBlob(9);
  CHECK(loadCheckpoint(path, {{"a", &loaded}}).epoch == 1);
  CHECK(equalBits(loaded.tensors.at("codes"), a.tensors.at("codes")));
}

TEST_CASE(
    "Checkpoint: kill -9 between write and rename leaves the previous file; the next save "
    "removes the stale temporary") {
  TempDir dir;
  const auto path = dir / "run.h5";
  Blob a = makeBlob(1), changed = makeBlob(2);
  saveCheckpoint(path, {{"a", &a}}, makeMeta(1));
  const std::vector<char> before = readBytes(path);

  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    io::detail::AtomicWriteHooks hooks{
        .beforeRename = [](const std::filesystem::path&) { ::raise(SIGKILL); }};
    io::detail::saveCheckpoint(path, {{"a", &changed}}, makeMeta(2), hooks);
    std::_Exit(0);  // not reached
  }
  int status = 0;
  waitpid(pid, &status, 0);
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  const auto stale = dir / ("run.h5.tmp-" + std::to_string(pid));
  CHECK(std::filesystem::exists(stale));  // complete, synced, never renamed
  CHECK(readBytes(path) == before);
  Blob loaded = makeBlob(9);
  CHECK(loadCheckpoint(path, {{"a", &loaded}}).epoch == 1);

  saveCheckpoint(path, {{"a", &changed}}, makeMeta(2));
  CHECK_FALSE(std::filesystem::exists(stale));
  CHECK(dir.list() == std::vector<std::string>{"run.h5"});
  CHECK(loadCheckpoint(path, {{"a", &loaded}}).epoch == 2);
  CHECK(loaded.attrs.at("name") == "blob2");
}
