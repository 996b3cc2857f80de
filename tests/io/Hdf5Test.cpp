#include <doctest/doctest.h>
#include <hdf5.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "core/io/Hdf5.h"
#include "tests/io/IoTestUtil.h"

using namespace mantissa;
using namespace mantissa::io;
using namespace mantissa::io::test;

namespace {

const std::vector<DType> kAllDTypes = {DType::F32, DType::F64, DType::I64, DType::I32,
                                       DType::I16, DType::U16, DType::I8,  DType::U8};

/// A tensor whose bytes are an arbitrary pattern: for float dtypes this includes NaNs with
/// payloads, infinities, subnormals and -0, which must all survive bit for bit.
Tensor patterned(const Shape& shape, DType dtype, int salt) {
  Tensor t = Tensor::zeros(shape, dtype);
  if (t.numel() == 0) return t;
  auto* bytes = static_cast<unsigned char*>(t.storage()->data());
  for (size_t i = 0; i < t.nbytes(); ++i) bytes[i] = static_cast<unsigned char>(i * 131 + 7 + salt);
  return t;
}

bool sameBits(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  Tensor ca = a.contiguous(), cb = b.contiguous();
  if (ca.nbytes() == 0) return true;
  return std::memcmp(static_cast<const char*>(ca.storage()->data()) +
                         ca.offset() * static_cast<int64_t>(elementSize(ca.dtype())),
                     static_cast<const char*>(cb.storage()->data()) +
                         cb.offset() * static_cast<int64_t>(elementSize(cb.dtype())),
                     ca.nbytes()) == 0;
}

/// Raw HDF5 handle closed at scope exit (tests inspect files independently of the library).
struct Id {
  hid_t id;
  herr_t (*close)(hid_t);
  ~Id() {
    if (id >= 0) close(id);
  }
};

}  // namespace

TEST_CASE("Hdf5: every dtype and shape round-trips bit for bit") {
  TempDir dir;
  const std::vector<Shape> shapes = {{}, {1}, {0}, {5}, {2, 0, 3}, {3, 4}, {2, 3, 1, 2, 1}};
  StateDict in;
  int salt = 0;
  for (DType dt : kAllDTypes) {
    for (const Shape& s : shapes) {
      std::string key = "t/" + dtypeName(dt) + "/rank" + std::to_string(s.size()) + "_" +
                        std::to_string(numelOf(s));
      in.tensors[key] = patterned(s, dt, salt++);
    }
  }
  in.tensors["model/layer1.0.conv1.weight"] = patterned({16, 3, 3, 3}, DType::F32, 99);
  in.tensors["top_level"] = patterned({2}, DType::I64, 5);
  writeHdf5(dir / "s.h5", in);
  StateDict out = readHdf5(dir / "s.h5");

  REQUIRE(out.tensors.size() == in.tensors.size());
  for (const auto& [key, t] : in.tensors) {
    INFO(key);
    REQUIRE(out.tensors.count(key) == 1);
    CHECK(out.tensors.at(key).shape() == t.shape());
    CHECK(out.tensors.at(key).dtype() == t.dtype());
    CHECK(sameBits(out.tensors.at(key), t));
  }
  CHECK(out.attrs.empty());
}

TEST_CASE("Hdf5: layout as seen by the HDF5 C API (what h5py and h5dump show)") {
  TempDir dir;
  StateDict in;
  in.tensors["model/layer1.0.conv1.weight"] = Tensor::zeros({16, 3, 3, 3});
  in.tensors["quant/fc.weight/forward/calls"] = Tensor::fromInts({7}, {1});
  in.tensors["scalar"] = Tensor::full({}, 2.5);
  in.tensors["codes"] = Tensor::zeros({4}, DType::U8);
  in.attrs["quant/fc.weight/forward/format"] = "hbfp8";
  in.attrs["model/layer1.0.conv1.weight/note"] = "on the dataset";
  in.attrs["root_note"] = "on the root";
  writeHdf5(dir / "s.h5", in);

  Id file{H5Fopen((dir / "s.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose};
  REQUIRE(file.id >= 0);
  SUBCASE("dots stay inside one dataset name under /model") {
    Id ds{H5Dopen2(file.id, "/model/layer1.0.conv1.weight", H5P_DEFAULT), H5Dclose};
    REQUIRE(ds.id >= 0);
    Id type{H5Dget_type(ds.id), H5Tclose};
    CHECK(H5Tequal(type.id, H5T_IEEE_F32LE) > 0);
    Id space{H5Dget_space(ds.id), H5Sclose};
    hsize_t dims[4] = {};
    REQUIRE(H5Sget_simple_extent_ndims(space.id) == 4);
    H5Sget_simple_extent_dims(space.id, dims, nullptr);
    CHECK(dims[0] == 16);
    CHECK(dims[1] == 3);
    CHECK(H5Lexists(file.id, "/model", H5P_DEFAULT) > 0);
    Id model{H5Gopen2(file.id, "/model", H5P_DEFAULT), H5Gclose};
    H5G_info_t info{};
    H5Gget_info(model.id, &info);
    CHECK(info.nlinks == 1);  // not split into layer1 / 0 / conv1
  }
  SUBCASE("scalar dataspace for [], simple for [1], native integer types") {
    Id s{H5Dopen2(file.id, "/scalar", H5P_DEFAULT), H5Dclose};
    Id sp{H5Dget_space(s.id), H5Sclose};
    CHECK(H5Sget_simple_extent_type(sp.id) == H5S_SCALAR);
    Id c{H5Dopen2(file.id, "/quant/fc.weight/forward/calls", H5P_DEFAULT), H5Dclose};
    Id cs{H5Dget_space(c.id), H5Sclose};
    CHECK(H5Sget_simple_extent_type(cs.id) == H5S_SIMPLE);
    CHECK(H5Sget_simple_extent_npoints(cs.id) == 1);
    Id ct{H5Dget_type(c.id), H5Tclose};
    CHECK(H5Tequal(ct.id, H5T_STD_I64LE) > 0);
    Id u{H5Dopen2(file.id, "/codes", H5P_DEFAULT), H5Dclose};
    Id ut{H5Dget_type(u.id), H5Tclose};
    CHECK(H5Tequal(ut.id, H5T_STD_U8LE) > 0);
  }
  SUBCASE("attributes are UTF-8 strings on the group, dataset or root of their path") {
    Id g{H5Oopen(file.id, "/quant/fc.weight/forward", H5P_DEFAULT), H5Oclose};
    REQUIRE(H5Aexists(g.id, "format") > 0);
    Id a{H5Aopen(g.id, "format", H5P_DEFAULT), H5Aclose};
    Id t{H5Aget_type(a.id), H5Tclose};
    CHECK(H5Tget_class(t.id) == H5T_STRING);
    CHECK(H5Tget_cset(t.id) == H5T_CSET_UTF8);
    CHECK(H5Tis_variable_str(t.id) == 0);  // fixed length: inside the checksummed header
    REQUIRE(H5Tget_size(t.id) == 5);
    char value[5] = {};
    REQUIRE(H5Aread(a.id, t.id, value) >= 0);
    CHECK(std::string(value, 5) == "hbfp8");
    Id ds{H5Oopen(file.id, "/model/layer1.0.conv1.weight", H5P_DEFAULT), H5Oclose};
    CHECK(H5Aexists(ds.id, "note") > 0);
    Id root{H5Oopen(file.id, "/", H5P_DEFAULT), H5Oclose};
    CHECK(H5Aexists(root.id, "root_note") > 0);
  }
}

TEST_CASE("Hdf5: attributes and views round-trip") {
  TempDir dir;
  StateDict in;
  in.tensors["a/view"] = Tensor::arange(12).reshape({3, 4}).transpose(0, 1);  // non-contiguous
  in.tensors["a/x"] = Tensor::zeros({2});
  in.attrs["a/x/unit"] = "volts";
  in.attrs["a/empty"] = "";
  in.attrs["a/b/c/deep"] = "créé µ";
  in.attrs["top"] = "1";
  in.attrs["a/long"] = std::string(100000, 'z');
  writeHdf5(dir / "s.h5", in);
  StateDict out = readHdf5(dir / "s.h5");
  CHECK(out.attrs == in.attrs);
  CHECK(out.tensors.at("a/view").shape() == Shape{4, 3});
  CHECK(out.tensors.at("a/view").toVector() ==
        std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
}

TEST_CASE("Hdf5: equal state gives byte-identical files") {
  TempDir dir;
  StateDict in;
  in.tensors["model/w"] = patterned({8, 8}, DType::F32, 1);
  in.attrs["quant/w/format"] = "fp32";
  writeHdf5(dir / "a.h5", in);
  // HDF5 object timestamps have one-second resolution: wait past one so they would differ.
  std::this_thread::sleep_for(std::chrono::milliseconds(1050));
  writeHdf5(dir / "b.h5", in);
  CHECK(readBytes(dir / "a.h5") == readBytes(dir / "b.h5"));
}

TEST_CASE("Hdf5: invalid keys and values are refused naming the key") {
  TempDir dir;
  auto errorFor = [&](StateDict s) {
    return checkpointErrorOf([&] { writeHdf5(dir / "k.h5", s); });
  };
  for (std::string bad : {std::string("/lead"), std::string("trail/"), std::string("a//b"),
                          std::string("a/./b"), std::string("a/../b")}) {
    StateDict s;
    s.tensors[bad] = Tensor::zeros({1});
    std::string msg = errorFor(s);
    INFO(msg);
    CHECK(contains(msg, "k.h5: '" + bad + "': invalid state key"));
  }
  SUBCASE("a tensor cannot also be a group") {
    StateDict s;
    s.tensors["a/b"] = Tensor::zeros({1});
    s.tensors["a/b/c"] = Tensor::zeros({1});
    CHECK(contains(errorFor(s), "'a/b/c': 'a/b' is a tensor"));
  }
  SUBCASE("undefined tensor") {
    StateDict s;
    s.tensors["u"] = Tensor();
    CHECK(contains(errorFor(s), "k.h5: 'u': undefined tensor"));
  }
  SUBCASE("NUL in an attribute value") {
    StateDict s;
    s.attrs["x"] = std::string("a\0b", 3);
    CHECK(contains(errorFor(s), "'x': attribute value contains a NUL byte"));
  }
}

TEST_CASE("Hdf5: reads h5py-style files (big-endian data, fixed strings, numeric attributes)") {
  TempDir dir;
  const auto path = dir / "foreign.h5";
  {
    Id file{H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose};
    Id g{H5Gcreate2(file.id, "model", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose};
    hsize_t dims[2] = {2, 3};
    Id space{H5Screate_simple(2, dims, nullptr), H5Sclose};
    Id ds{H5Dcreate2(g.id, "fc.weight", H5T_IEEE_F64BE, space.id, H5P_DEFAULT, H5P_DEFAULT,
                     H5P_DEFAULT),
          H5Dclose};
    double values[6] = {1.5, -2, 0.1, 1e300, -0.0, 3};
    H5Dwrite(ds.id, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values);
    Id scalar{H5Screate(H5S_SCALAR), H5Sclose};
    Id fixed{H5Tcopy(H5T_C_S1), H5Tclose};
    H5Tset_size(fixed.id, 8);
    H5Tset_strpad(fixed.id, H5T_STR_NULLPAD);
    Id a1{H5Acreate2(g.id, "name", fixed.id, scalar.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
    char text[8] = {'a', 'b', 'c', 0, 0, 0, 0, 0};
    H5Awrite(a1.id, fixed.id, text);
    Id a2{H5Acreate2(g.id, "count", H5T_STD_I64LE, scalar.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
    int64_t count = -3;
    H5Awrite(a2.id, H5T_NATIVE_INT64, &count);
    Id a3{H5Acreate2(g.id, "lr", H5T_IEEE_F64LE, scalar.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
    double lr = 0.1;
    H5Awrite(a3.id, H5T_NATIVE_DOUBLE, &lr);
  }
  StateDict s = readHdf5(path);
  const Tensor& w = s.tensors.at("model/fc.weight");
  CHECK(w.dtype() == DType::F64);
  CHECK(w.shape() == Shape{2, 3});
  CHECK(w.toVector<double>() == std::vector<double>{1.5, -2, 0.1, 1e300, -0.0, 3});
  CHECK(s.attrs.at("model/name") == "abc");
  CHECK(s.attrs.at("model/count") == "-3");
  CHECK(s.attrs.at("model/lr") == "0.1");
}

TEST_CASE("Hdf5: unsupported content is refused naming the key") {
  TempDir dir;
  const auto path = dir / "odd.h5";
  SUBCASE("uint32 dataset") {
    {
      Id file{H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose};
      hsize_t n = 2;
      Id space{H5Screate_simple(1, &n, nullptr), H5Sclose};
      Id ds{H5Dcreate2(file.id, "u32", H5T_STD_U32LE, space.id, H5P_DEFAULT, H5P_DEFAULT,
                       H5P_DEFAULT),
            H5Dclose};
    }
    CHECK(contains(checkpointErrorOf([&] { readHdf5(path); }),
                   "odd.h5: 'u32': unsupported integer dataset (unsigned, 4 bytes)"));
  }
  SUBCASE("soft link") {
    {
      Id file{H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose};
      H5Lcreate_soft("/nowhere", file.id, "alias", H5P_DEFAULT, H5P_DEFAULT);
    }
    CHECK(contains(checkpointErrorOf([&] { readHdf5(path); }), "'alias': is a soft or external"));
  }
  SUBCASE("array attribute") {
    {
      Id file{H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose};
      hsize_t n = 3;
      Id space{H5Screate_simple(1, &n, nullptr), H5Sclose};
      Id a{H5Acreate2(file.id, "vec", H5T_STD_I32LE, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
      int v[3] = {1, 2, 3};
      H5Awrite(a.id, H5T_NATIVE_INT, v);
    }
    CHECK(contains(checkpointErrorOf([&] { readHdf5(path); }), "'vec': attribute holds 3 values"));
  }
}

TEST_CASE("Hdf5: unreadable files give one clear error naming the file") {
  TempDir dir;
  StateDict s;
  s.tensors["model/w"] = patterned({64, 64}, DType::F32, 3);
  writeHdf5(dir / "good.h5", s);
  const std::vector<char> good = readBytes(dir / "good.h5");

  CHECK(contains(checkpointErrorOf([&] { readHdf5(dir / "missing.h5"); }),
                 "missing.h5: no such file"));
  CHECK(contains(checkpointErrorOf([&] { readHdf5(dir.path()); }), "is a directory"));
  writeBytes(dir / "notes.h5", std::vector<char>{'h', 'e', 'l', 'l', 'o', '\n'});
  CHECK(contains(checkpointErrorOf([&] { readHdf5(dir / "notes.h5"); }),
                 "notes.h5: not an HDF5 file"));
  writeBytes(dir / "empty.h5", {});
  CHECK(contains(checkpointErrorOf([&] { readHdf5(dir / "empty.h5"); }), "empty.h5: empty file"));
  for (size_t cut : {size_t{8}, size_t{100}, good.size() / 2, good.size() - 1}) {
    INFO("truncated at " << cut << " of " << good.size());
    writeBytes(dir / "cut.h5", std::vector<char>(good.begin(), good.begin() + cut));
    std::string msg = checkpointErrorOf([&] { readHdf5(dir / "cut.h5"); });
    CHECK(contains(msg, "cut.h5: "));
  }
}
