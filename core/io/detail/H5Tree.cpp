#include "core/io/detail/H5Tree.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

#include "core/io/CheckpointError.h"

namespace mantissa::io::detail {

namespace fs = std::filesystem;

// ---- handles, locking, error translation ------------------------------------------------------

H5Handle& H5Handle::operator=(H5Handle&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    close_ = o.close_;
    o.id_ = H5I_INVALID_HID;
  }
  return *this;
}

herr_t H5Handle::reset() {
  herr_t status = 0;
  if (id_ >= 0 && close_ != nullptr) status = close_(id_);
  id_ = H5I_INVALID_HID;
  return status;
}

std::unique_lock<std::recursive_mutex> lockHdf5() {
  static std::recursive_mutex mutex;
  std::unique_lock<std::recursive_mutex> lock(mutex);
  // The automatic printer is per thread in thread-safe builds, so silence it on every thread
  // that gets here (once is enough per thread).
  thread_local bool silenced = false;
  if (!silenced) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    silenced = true;
  }
  return lock;
}

namespace {

herr_t collectCause(unsigned n, const H5E_error2_t* err, void* data) {
  auto* out = static_cast<std::string*>(data);
  // Walking upward, entry 0 is the innermost failure: the most specific description.
  if (out->empty()) {
    if (err->desc != nullptr && err->desc[0] != '\0') {
      *out = err->desc;
    } else {
      std::array<char, 256> buf{};
      if (H5Eget_msg(err->min_num, nullptr, buf.data(), buf.size()) > 0) *out = buf.data();
    }
  }
  return 0;
}

}  // namespace

std::string hdf5Cause() {
  std::string cause;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, collectCause, &cause);
  H5Eclear2(H5E_DEFAULT);
  return cause.empty() ? "no further detail" : cause;
}

void throwHdf5(const fs::path& file, const std::string& key, const std::string& what) {
  std::string cause = hdf5Cause();
  throw CheckpointError(file, key, what + " (HDF5: " + cause + ")");
}

namespace {

/// Checks an HDF5 identifier and wraps it so it is closed on every path.
H5Handle own(hid_t id, H5Handle::Closer close, const fs::path& file, const std::string& key,
             const std::string& what) {
  if (id < 0) throwHdf5(file, key, what);
  return H5Handle(id, close);
}

void check(herr_t status, const fs::path& file, const std::string& key, const std::string& what) {
  if (status < 0) throwHdf5(file, key, what);
}

H5Handle scalarSpace(const fs::path& file, const std::string& key) {
  return own(H5Screate(H5S_SCALAR), H5Sclose, file, key, "cannot create a dataspace");
}

std::string joinKey(const std::string& parent, const std::string& name) {
  return parent.empty() ? name : parent + "/" + name;
}

/// Splits a key into its components; rejects what HDF5 cannot name (empty or "." components)
/// and what would be ambiguous (leading or trailing '/', NUL bytes, "..").
std::vector<std::string> splitKey(const std::string& key, const fs::path& file) {
  auto fail = [&](const char* why) {
    throw CheckpointError(file, key, std::string("invalid state key: ") + why);
  };
  if (key.empty()) fail("empty");
  if (key.find('\0') != std::string::npos) fail("contains a NUL byte");
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t slash = key.find('/', start);
    std::string part = key.substr(start, slash == std::string::npos ? slash : slash - start);
    if (part.empty()) fail("empty path component (leading, trailing or doubled '/')");
    if (part == "." || part == "..") fail("'.' and '..' are not allowed as path components");
    parts.push_back(std::move(part));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return parts;
}

// ---- dtype mapping ----------------------------------------------------------------------------

/// Little-endian file types, so files are the same on every machine.
hid_t fileType(DType t) {
  switch (t) {
    case DType::F32:
      return H5T_IEEE_F32LE;
    case DType::F64:
      return H5T_IEEE_F64LE;
    case DType::I64:
      return H5T_STD_I64LE;
    case DType::I32:
      return H5T_STD_I32LE;
    case DType::I16:
      return H5T_STD_I16LE;
    case DType::U16:
      return H5T_STD_U16LE;
    case DType::I8:
      return H5T_STD_I8LE;
    case DType::U8:
      return H5T_STD_U8LE;
  }
  return H5I_INVALID_HID;
}

hid_t memType(DType t) {
  switch (t) {
    case DType::F32:
      return H5T_NATIVE_FLOAT;
    case DType::F64:
      return H5T_NATIVE_DOUBLE;
    case DType::I64:
      return H5T_NATIVE_INT64;
    case DType::I32:
      return H5T_NATIVE_INT32;
    case DType::I16:
      return H5T_NATIVE_INT16;
    case DType::U16:
      return H5T_NATIVE_UINT16;
    case DType::I8:
      return H5T_NATIVE_INT8;
    case DType::U8:
      return H5T_NATIVE_UINT8;
  }
  return H5I_INVALID_HID;
}

const void* rawData(const Tensor& t) {
  switch (t.dtype()) {
    case DType::F32:
      return t.data<float>();
    case DType::F64:
      return t.data<double>();
    case DType::I64:
      return t.data<int64_t>();
    case DType::I32:
      return t.data<int32_t>();
    case DType::I16:
      return t.data<int16_t>();
    case DType::U16:
      return t.data<uint16_t>();
    case DType::I8:
      return t.data<int8_t>();
    case DType::U8:
      return t.data<uint8_t>();
  }
  return nullptr;
}

void* rawData(Tensor& t) { return const_cast<void*>(rawData(static_cast<const Tensor&>(t))); }

/// The DType a dataset's type reads into; HDF5 converts byte order on read.
DType datasetDType(hid_t type, const fs::path& file, const std::string& key) {
  H5T_class_t cls = H5Tget_class(type);
  size_t size = H5Tget_size(type);
  if (cls == H5T_FLOAT && size == 4) return DType::F32;
  if (cls == H5T_FLOAT && size == 8) return DType::F64;
  if (cls == H5T_INTEGER) {
    bool isSigned = H5Tget_sign(type) == H5T_SGN_2;
    if (isSigned && size == 8) return DType::I64;
    if (isSigned && size == 4) return DType::I32;
    if (isSigned && size == 2) return DType::I16;
    if (!isSigned && size == 2) return DType::U16;
    if (isSigned && size == 1) return DType::I8;
    if (!isSigned && size == 1) return DType::U8;
    throw CheckpointError(file, key,
                          std::string("unsupported integer dataset (") +
                              (isSigned ? "signed" : "unsigned") + ", " + std::to_string(size) +
                              " bytes); tensors are f32, f64, i64, i32, i16, u16, i8 or u8");
  }
  const char* what = cls == H5T_FLOAT      ? "float of this size"
                     : cls == H5T_STRING   ? "string"
                     : cls == H5T_ENUM     ? "enum (h5py bool?)"
                     : cls == H5T_COMPOUND ? "compound"
                                           : "non-numeric";
  throw CheckpointError(file, key,
                        std::string("unsupported dataset type: ") + what + " (" +
                            std::to_string(size) +
                            " bytes); tensors are f32, f64, i64, i32, i16, u16, i8 or u8");
}

// ---- datasets -----------------------------------------------------------------------------------

void writeDataset(hid_t group, const std::string& name, const Tensor& tensor, const fs::path& file,
                  const std::string& key) {
  if (!tensor.defined()) throw CheckpointError(file, key, "undefined tensor");
  Tensor t = tensor.detach().contiguous();
  if (t.dim() > H5S_MAX_RANK) {
    throw CheckpointError(
        file, key,
        "rank " + std::to_string(t.dim()) + " exceeds HDF5's " + std::to_string(H5S_MAX_RANK));
  }
  // Shape [] is a scalar dataspace and [1] a one-element simple one, so both round-trip.
  H5Handle space;
  if (t.dim() == 0) {
    space = scalarSpace(file, key);
  } else {
    std::vector<hsize_t> dims(t.shape().begin(), t.shape().end());
    space = own(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose,
                file, key, "cannot create a dataspace");
  }
  H5Handle dcpl = own(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, file, key, "property list");
  check(H5Pset_obj_track_times(dcpl.get(), 0), file, key, "property list");
  H5Handle ds = own(H5Dcreate2(group, name.c_str(), fileType(t.dtype()), space.get(), H5P_DEFAULT,
                               dcpl.get(), H5P_DEFAULT),
                    H5Dclose, file, key, "cannot create the dataset");
  if (t.numel() > 0) {
    check(H5Dwrite(ds.get(), memType(t.dtype()), H5S_ALL, H5S_ALL, H5P_DEFAULT, rawData(t)), file,
          key, "cannot write the dataset (disk full?)");
  }
  check(ds.reset(), file, key, "cannot close the dataset");
}

Tensor readDataset(hid_t ds, const fs::path& file, const std::string& key) {
  H5Handle type = own(H5Dget_type(ds), H5Tclose, file, key, "cannot read the dataset type");
  DType dtype = datasetDType(type.get(), file, key);
  H5Handle space = own(H5Dget_space(ds), H5Sclose, file, key, "cannot read the dataspace");
  Shape shape;
  switch (H5Sget_simple_extent_type(space.get())) {
    case H5S_SCALAR:
      break;
    case H5S_SIMPLE: {
      int rank = H5Sget_simple_extent_ndims(space.get());
      if (rank < 0) throwHdf5(file, key, "cannot read the dataspace");
      std::vector<hsize_t> dims(static_cast<size_t>(rank));
      if (H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr) < 0) {
        throwHdf5(file, key, "cannot read the dataspace");
      }
      shape.assign(dims.begin(), dims.end());
      break;
    }
    default:
      throw CheckpointError(file, key, "dataset has a null or unknown dataspace");
  }
  Tensor t = Tensor::empty(shape, dtype);
  if (t.numel() > 0) {
    check(H5Dread(ds, memType(dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, rawData(t)), file, key,
          "cannot read the dataset (damaged file?)");
  }
  return t;
}

// ---- attributes ---------------------------------------------------------------------------------

void writeAttrRaw(hid_t obj, const std::string& name, hid_t type, const void* value,
                  const fs::path& file, const std::string& key) {
  H5Handle space = scalarSpace(file, key);
  H5Handle attr = own(H5Acreate2(obj, name.c_str(), type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                      H5Aclose, file, key, "cannot create the attribute");
  check(H5Awrite(attr.get(), type, value), file, key, "cannot write the attribute");
}

std::string readStringAttr(hid_t attr, hid_t type, const fs::path& file, const std::string& key) {
  htri_t isVar = H5Tis_variable_str(type);
  if (isVar < 0) throwHdf5(file, key, "cannot read the attribute type");
  H5Handle mem = own(H5Tcopy(H5T_C_S1), H5Tclose, file, key, "string type");
  check(H5Tset_cset(mem.get(), H5Tget_cset(type)), file, key, "string type");
  if (isVar > 0) {
    check(H5Tset_size(mem.get(), H5T_VARIABLE), file, key, "string type");
    char* p = nullptr;
    check(H5Aread(attr, mem.get(), &p), file, key, "cannot read the attribute");
    std::string s = p != nullptr ? p : "";
    H5free_memory(p);
    return s;
  }
  // Fixed-length (numpy bytes from h5py): padding is NULs or spaces depending on the writer.
  size_t n = H5Tget_size(type);
  check(H5Tset_size(mem.get(), n), file, key, "string type");
  check(H5Tset_strpad(mem.get(), H5Tget_strpad(type)), file, key, "string type");
  std::vector<char> buf(n + 1, '\0');
  check(H5Aread(attr, mem.get(), buf.data()), file, key, "cannot read the attribute");
  std::string s(buf.data(), n);
  const char pad = H5Tget_strpad(type) == H5T_STR_SPACEPAD ? ' ' : '\0';
  size_t end = s.find_last_not_of(pad);
  s.erase(end == std::string::npos ? 0 : end + 1);
  if (pad == '\0') s.erase(std::min(s.size(), s.find('\0')));
  return s;
}

std::string readAttrText(hid_t obj, const std::string& name, const fs::path& file,
                         const std::string& key) {
  H5Handle attr = own(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose, file, key,
                      "cannot open the attribute");
  H5Handle type = own(H5Aget_type(attr.get()), H5Tclose, file, key, "cannot read the type");
  H5Handle space = own(H5Aget_space(attr.get()), H5Sclose, file, key, "cannot read the space");
  hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (H5Sget_simple_extent_type(space.get()) == H5S_NULL || n != 1) {
    throw CheckpointError(file, key,
                          "attribute holds " + std::to_string(n) +
                              " values; state attributes are single strings or numbers");
  }
  switch (H5Tget_class(type.get())) {
    case H5T_STRING:
      return readStringAttr(attr.get(), type.get(), file, key);
    case H5T_INTEGER: {
      if (H5Tget_sign(type.get()) == H5T_SGN_NONE) {
        uint64_t v = 0;
        check(H5Aread(attr.get(), H5T_NATIVE_UINT64, &v), file, key, "cannot read");
        return numberText(v);
      }
      int64_t v = 0;
      check(H5Aread(attr.get(), H5T_NATIVE_INT64, &v), file, key, "cannot read");
      return numberText(v);
    }
    case H5T_FLOAT: {
      double v = 0;
      check(H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &v), file, key, "cannot read");
      return numberText(v);
    }
    default:
      throw CheckpointError(file, key,
                            "unsupported attribute type; state attributes are strings or numbers");
  }
}

herr_t collectAttrName(hid_t, const char* name, const H5A_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}

struct LinkEntry {
  std::string name;
  H5L_type_t type;
};

herr_t collectLink(hid_t, const char* name, const H5L_info_t* info, void* data) {
  static_cast<std::vector<LinkEntry>*>(data)->push_back({name, info->type});
  return 0;
}

/// Attributes of `obj` into `out` under "<objKey>/<name>" (just "<name>" for the root).
void readAttrsInto(hid_t obj, const std::string& objKey, std::map<std::string, std::string>& out,
                   const fs::path& file) {
  std::vector<std::string> names;
  // Names are collected first: the C callback must not throw or do real work.
  check(H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, nullptr, collectAttrName, &names), file,
        objKey, "cannot list attributes");
  for (const std::string& name : names) {
    std::string key = joinKey(objKey, name);
    out[key] = readAttrText(obj, name, file, key);
  }
}

H5Handle groupCreateProps(const fs::path& file, const std::string& key) {
  H5Handle gcpl = own(H5Pcreate(H5P_GROUP_CREATE), H5Pclose, file, key, "property list");
  check(H5Pset_obj_track_times(gcpl.get(), 0), file, key, "property list");
  return gcpl;
}

/// The group at relative path `groupKey` ("" = root), created with its parents when missing;
/// `cache` keeps opened groups so a tree of N keys opens each group once.
hid_t groupFor(hid_t file, const std::string& groupKey, std::map<std::string, H5Handle>& cache,
               const fs::path& path, const std::string& forKey) {
  if (auto it = cache.find(groupKey); it != cache.end()) return it->second.get();
  if (groupKey.empty()) {
    auto [it, _] = cache.emplace("", own(H5Gopen2(file, "/", H5P_DEFAULT), H5Gclose, path, forKey,
                                         "cannot open the root group"));
    return it->second.get();
  }
  size_t slash = groupKey.rfind('/');
  std::string parentKey = slash == std::string::npos ? "" : groupKey.substr(0, slash);
  std::string name = slash == std::string::npos ? groupKey : groupKey.substr(slash + 1);
  hid_t parent = groupFor(file, parentKey, cache, path, forKey);
  htri_t exists = H5Lexists(parent, name.c_str(), H5P_DEFAULT);
  if (exists < 0) throwHdf5(path, forKey, "cannot look up '" + groupKey + "'");
  H5Handle group;
  if (exists > 0) {
    H5Handle obj = own(H5Oopen(parent, name.c_str(), H5P_DEFAULT), H5Oclose, path, forKey,
                       "cannot open '" + groupKey + "'");
    if (H5Iget_type(obj.get()) != H5I_GROUP) {
      throw CheckpointError(
          path, forKey,
          "'" + groupKey + "' is a tensor, so it cannot also be a group holding this key");
    }
    group = own(H5Gopen2(parent, name.c_str(), H5P_DEFAULT), H5Gclose, path, forKey,
                "cannot open '" + groupKey + "'");
  } else {
    H5Handle gcpl = groupCreateProps(path, forKey);
    group = own(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), H5Gclose,
                path, forKey, "cannot create group '" + groupKey + "'");
  }
  auto [it, _] = cache.emplace(groupKey, std::move(group));
  return it->second.get();
}

}  // namespace

// ---- files
// ----------------------------------------------------------------------------------------

void FileImage::Free::operator()(char* p) const { std::free(p); }

namespace {

/// A buffer for a file image. Large ones are 2 MiB aligned with a huge-page hint: filling
/// fresh memory costs one page fault per page, and on virtual machines faults dominate the
/// cost of a save (measured 2.5x faster for 94 MB here).
std::unique_ptr<char, FileImage::Free> allocateImage(size_t size) {
  constexpr size_t kHuge = size_t{2} << 20;
  char* p = nullptr;
  if (size >= kHuge) {
    p = static_cast<char*>(std::aligned_alloc(kHuge, (size + kHuge - 1) / kHuge * kHuge));
    if (p != nullptr) ::madvise(p, size, MADV_HUGEPAGE);
  } else {
    p = static_cast<char*>(std::malloc(std::max<size_t>(size, 1)));
  }
  if (p == nullptr) throw std::bad_alloc();
  return std::unique_ptr<char, FileImage::Free>(p);
}

}  // namespace

struct ImageBuffer {
  char* ptr = nullptr;  // the core driver's current buffer
  size_t capacity = 0;
  ~ImageBuffer() { std::free(ptr); }
};

namespace {

// The core driver's memory goes through these (C callbacks: they must not throw). The buffer
// the driver grows while writing the new file is tracked; anything else (an image it loads to
// open a file) is plain malloc.
void* imageMalloc(size_t size, H5FD_file_image_op_t, void*) { return std::malloc(size); }

void* imageMemcpy(void* dest, const void* src, size_t size, H5FD_file_image_op_t, void*) {
  return std::memcpy(dest, src, size);
}

void* imageRealloc(void* ptr, size_t size, H5FD_file_image_op_t op, void* udata) {
  auto* b = static_cast<ImageBuffer*>(udata);
  if (op != H5FD_FILE_IMAGE_OP_FILE_RESIZE || ptr != b->ptr) return std::realloc(ptr, size);
  if (ptr != nullptr && size <= b->capacity) return ptr;
  try {
    auto fresh = allocateImage(size);
    if (ptr != nullptr) std::memcpy(fresh.get(), ptr, b->capacity);
    std::free(b->ptr);
    b->ptr = fresh.release();
    b->capacity = size;
    return b->ptr;
  } catch (...) {
    return nullptr;
  }
}

herr_t imageFree(void* ptr, H5FD_file_image_op_t op, void* udata) {
  auto* b = static_cast<ImageBuffer*>(udata);
  if (ptr != nullptr && ptr == b->ptr) {
    // At close the tracked buffer is the finished file: keep it for takeImage (~ImageBuffer
    // frees it otherwise).
    if (op == H5FD_FILE_IMAGE_OP_FILE_CLOSE) return 0;
    b->ptr = nullptr;
    b->capacity = 0;
  }
  std::free(ptr);
  return 0;
}

void* udataCopy(void* udata) { return udata; }  // one shared buffer record, owned by ImageFile
herr_t udataFree(void*) { return 0; }

void deleteImageBuffer(ImageBuffer* b) { delete b; }

}  // namespace

ImageFile createImageFile(const fs::path& path, size_t sizeHint) {
  ImageFile out;
  out.buffer = {new ImageBuffer, deleteImageBuffer};
  H5Handle fapl = own(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, path, "", "property list");
  // One allocation of the expected size (the core driver grows in steps of `increment`).
  const size_t increment = std::max<size_t>(sizeHint, size_t{1} << 20);
  check(H5Pset_fapl_core(fapl.get(), increment, /*backing_store=*/0), path, "", "property list");
  H5FD_file_image_callbacks_t callbacks = {imageMalloc, imageMemcpy, imageRealloc,    imageFree,
                                           udataCopy,   udataFree,   out.buffer.get()};
  check(H5Pset_file_image_callbacks(fapl.get(), &callbacks), path, "", "property list");
  // The 1.8 format: superblock v2 and version-2 object headers carry checksums and the
  // superblock records the end of file, so HDF5 detects truncation and damaged metadata on open.
  // Capped at 1.8 so that readers built on HDF5 1.8 can open the files too.
  check(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_V18), path, "",
        "property list");
  // The file creation list is also the root group's object creation list.
  H5Handle fcpl = own(H5Pcreate(H5P_FILE_CREATE), H5Pclose, path, "", "property list");
  check(H5Pset_obj_track_times(fcpl.get(), 0), path, "", "property list");
  // A name that exists nowhere on disk: H5Fcreate first tries to open the name (to find files
  // already open), and the core driver would read a previous checkpoint into memory for that.
  static std::atomic<uint64_t> counter{0};
  const std::string memName =
      path.string() + ".in-memory-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  out.file = own(H5Fcreate(memName.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()), H5Fclose, path,
                 "", "cannot create the file in memory");
  return out;
}

namespace {

uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

/// Bob Jenkins' lookup3 `hashlittle`, byte-wise: the checksum of every HDF5 metadata block.
uint32_t lookup3(const uint8_t* k, size_t length) {
  uint32_t a = 0xdeadbeef + static_cast<uint32_t>(length), b = a, c = a;
  auto word = [](const uint8_t* p) {
    return p[0] | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
  };
  while (length > 12) {
    a += word(k);
    b += word(k + 4);
    c += word(k + 8);
    a -= c, a ^= rotl(c, 4), c += b;
    b -= a, b ^= rotl(a, 6), a += c;
    c -= b, c ^= rotl(b, 8), b += a;
    a -= c, a ^= rotl(c, 16), c += b;
    b -= a, b ^= rotl(a, 19), a += c;
    c -= b, c ^= rotl(b, 4), b += a;
    length -= 12;
    k += 12;
  }
  if (length == 0) return c;
  uint8_t tail[12] = {};
  std::memcpy(tail, k, length);
  a += word(tail);
  b += word(tail + 4);
  c += word(tail + 8);
  c ^= b, c -= rotl(b, 14);
  a ^= c, a -= rotl(c, 11);
  b ^= a, b -= rotl(a, 25);
  c ^= b, c -= rotl(b, 16);
  a ^= c, a -= rotl(c, 4);
  b ^= a, b -= rotl(a, 14);
  c ^= b, c -= rotl(b, 24);
  return c;
}

/// HDF5 1.10's H5Fget_file_image clears the superblock's "open for writing" status flags in
/// the image without recomputing the superblock checksum, so the image would not open. Redo the
/// checksum (superblock v2/v3: 12 fixed bytes, four addresses, then the checksum).
void fixSuperblockChecksum(FileImage& image, const fs::path& path) {
  auto* b = reinterpret_cast<uint8_t*>(image.bytes.get());
  static const uint8_t kSignature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  if (image.size < 12 || std::memcmp(b, kSignature, 8) != 0 || (b[8] != 2 && b[8] != 3)) {
    throw CheckpointError(path, "", "unexpected HDF5 superblock in the file image");
  }
  const size_t end = 12 + 4 * size_t{b[9]};
  if (image.size < end + 4) throw CheckpointError(path, "", "file image too short");
  const uint32_t sum = lookup3(b, end);
  for (int i = 0; i < 4; ++i) b[end + i] = static_cast<uint8_t>(sum >> (8 * i));
}

}  // namespace

FileImage takeImage(ImageFile& file, const fs::path& path) {
  check(file.file.reset(), path, "", "cannot close the file in memory");
  ImageBuffer& b = *file.buffer;
  // The size is the end-of-file address in the superblock (v2/v3: after 12 fixed bytes and two
  // addresses), which the close has just written.
  const auto* bytes = reinterpret_cast<const uint8_t*>(b.ptr);
  if (b.ptr == nullptr || b.capacity < 48 || (bytes[8] != 2 && bytes[8] != 3) || bytes[9] != 8) {
    throw CheckpointError(path, "", "unexpected HDF5 superblock in the file image");
  }
  uint64_t eof = 0;
  for (int i = 7; i >= 0; --i) eof = (eof << 8) | bytes[12 + 2 * 8 + i];
  if (eof < 48 || eof > b.capacity) {
    throw CheckpointError(path, "", "inconsistent end of file in the HDF5 image");
  }
  FileImage image{std::unique_ptr<char, FileImage::Free>(b.ptr), static_cast<size_t>(eof)};
  b.ptr = nullptr;
  b.capacity = 0;
  fixSuperblockChecksum(image, path);
  return image;
}

H5Handle openFile(const fs::path& path) {
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st)) throw CheckpointError(path, "", "no such file");
  if (fs::is_directory(st)) throw CheckpointError(path, "", "is a directory, not a state file");
  if (fs::is_regular_file(st) && fs::file_size(path, ec) == 0 && !ec) {
    throw CheckpointError(path, "", "empty file (0 bytes): not an HDF5 checkpoint");
  }
  htri_t isHdf5 = H5Fis_hdf5(path.c_str());
  if (isHdf5 < 0) throwHdf5(path, "", "cannot read the file");
  if (isHdf5 == 0) {
    throw CheckpointError(path, "",
                          "not an HDF5 file (no HDF5 signature): not a checkpoint or state file");
  }
  H5Handle fapl = own(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, path, "", "property list");
  // Files are replaced by rename, never changed in place, so HDF5's advisory lock protects
  // nothing here, and it fails on some network file systems.
  check(H5Pset_file_locking(fapl.get(), 0, 1), path, "", "property list");
  return own(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()), H5Fclose, path, "",
             "cannot open: truncated or damaged HDF5 file");
}

// ---- trees
// ------------------------------------------------------------------------------------------

void writeTree(hid_t file, const StateDict& state, const fs::path& path) {
  std::map<std::string, H5Handle> groups;
  for (const auto& [key, tensor] : state.tensors) {
    std::vector<std::string> parts = splitKey(key, path);
    std::string name = parts.back();
    std::string groupKey = key.substr(0, key.size() - name.size());
    if (!groupKey.empty()) groupKey.pop_back();  // the trailing '/'
    hid_t group = groupFor(file, groupKey, groups, path, key);
    htri_t exists = H5Lexists(group, name.c_str(), H5P_DEFAULT);
    if (exists < 0) throwHdf5(path, key, "cannot look up the key");
    if (exists > 0) {
      throw CheckpointError(path, key,
                            "is also the group of other keys; a key cannot be both a tensor and a "
                            "prefix of other keys");
    }
    writeDataset(group, name, tensor, path, key);
  }
  for (const auto& [key, value] : state.attrs) {
    std::vector<std::string> parts = splitKey(key, path);
    const std::string& name = parts.back();
    std::string ownerKey = key.substr(0, key.size() - name.size());
    if (!ownerKey.empty()) ownerKey.pop_back();
    if (value.find('\0') != std::string::npos) {
      throw CheckpointError(path, key, "attribute value contains a NUL byte");
    }
    // An attribute whose owner is a tensor goes on that dataset, otherwise on the group.
    if (state.tensors.count(ownerKey) != 0) {
      H5Handle ds = own(H5Oopen(file, ("/" + ownerKey).c_str(), H5P_DEFAULT), H5Oclose, path, key,
                        "cannot open the dataset");
      writeAttr(ds.get(), name, value, path, key);
    } else {
      writeAttr(groupFor(file, ownerKey, groups, path, key), name, value, path, key);
    }
  }
  for (auto& [groupKey, group] : groups) {
    check(group.reset(), path, groupKey, "cannot close the group");
  }
}

void readTree(hid_t file, StateDict& out, const fs::path& path) {
  struct Pending {
    H5Handle group;
    std::string key;  // "" for the root, "a/b" below it
  };
  std::vector<Pending> stack;
  stack.push_back(
      {own(H5Gopen2(file, "/", H5P_DEFAULT), H5Gclose, path, "", "cannot open the root group"),
       ""});
  // Iterative walk: depth is small, but there is no reason to recurse.
  while (!stack.empty()) {
    Pending cur = std::move(stack.back());
    stack.pop_back();
    readAttrsInto(cur.group.get(), cur.key, out.attrs, path);
    std::vector<LinkEntry> links;
    check(H5Literate(cur.group.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collectLink, &links),
          path, cur.key, "cannot list the group (damaged file?)");
    for (const LinkEntry& link : links) {
      std::string key = joinKey(cur.key, link.name);
      if (link.type != H5L_TYPE_HARD) {
        throw CheckpointError(path, key,
                              "is a soft or external link; state files hold only groups and "
                              "datasets");
      }
      H5Handle obj = own(H5Oopen(cur.group.get(), link.name.c_str(), H5P_DEFAULT), H5Oclose, path,
                         key, "cannot open (damaged file?)");
      switch (H5Iget_type(obj.get())) {
        case H5I_GROUP:
          stack.push_back({own(H5Gopen2(cur.group.get(), link.name.c_str(), H5P_DEFAULT), H5Gclose,
                               path, key, "cannot open the group"),
                           key});
          break;
        case H5I_DATASET:
          out.tensors[key] = readDataset(obj.get(), path, key);
          readAttrsInto(obj.get(), key, out.attrs, path);
          break;
        default:
          throw CheckpointError(path, key,
                                "is neither a group nor a dataset (committed datatype?)");
      }
    }
  }
}

H5Handle openGroupIfExists(hid_t file, const std::string& groupPath, const fs::path& path) {
  std::string key = groupPath.substr(groupPath.find_first_not_of('/'));
  htri_t exists = H5Lexists(file, groupPath.c_str(), H5P_DEFAULT);
  if (exists < 0) throwHdf5(path, key, "cannot look up the group (damaged file?)");
  if (exists == 0) return {};
  H5Handle obj = own(H5Oopen(file, groupPath.c_str(), H5P_DEFAULT), H5Oclose, path, key,
                     "cannot open (damaged file?)");
  if (H5Iget_type(obj.get()) != H5I_GROUP) throw CheckpointError(path, key, "is not a group");
  return own(H5Gopen2(file, groupPath.c_str(), H5P_DEFAULT), H5Gclose, path, key,
             "cannot open the group");
}

H5Handle ensureGroup(hid_t file, const std::string& groupPath, const fs::path& path) {
  std::string key = groupPath.substr(groupPath.find_first_not_of('/'));
  std::map<std::string, H5Handle> cache;
  groupFor(file, key, cache, path, key);
  return own(H5Gopen2(file, groupPath.c_str(), H5P_DEFAULT), H5Gclose, path, key,
             "cannot open the group");
}

void writeAttr(hid_t obj, const std::string& name, const std::string& value, const fs::path& path,
               const std::string& key) {
  if (value.find('\0') != std::string::npos) {
    throw CheckpointError(path, key, "attribute value contains a NUL byte");
  }
  // Fixed-length UTF-8, NUL-padded: the bytes live in the attribute message inside the
  // (checksummed) object header. Variable-length strings would live in HDF5's global heap,
  // which has no checksum, and HDF5 1.10 crashes on some damaged global heaps.
  H5Handle type = own(H5Tcopy(H5T_C_S1), H5Tclose, path, key, "string type");
  check(H5Tset_size(type.get(), std::max<size_t>(value.size(), 1)), path, key, "string type");
  check(H5Tset_strpad(type.get(), H5T_STR_NULLPAD), path, key, "string type");
  check(H5Tset_cset(type.get(), H5T_CSET_UTF8), path, key, "string type");
  std::string padded = value;
  padded.resize(std::max<size_t>(value.size(), 1), '\0');
  writeAttrRaw(obj, name, type.get(), padded.data(), path, key);
}

void writeAttr(hid_t obj, const std::string& name, int64_t value, const fs::path& path,
               const std::string& key) {
  writeAttrRaw(obj, name, H5T_STD_I64LE, &value, path, key);
}

void writeAttr(hid_t obj, const std::string& name, uint64_t value, const fs::path& path,
               const std::string& key) {
  writeAttrRaw(obj, name, H5T_STD_U64LE, &value, path, key);
}

void writeAttr(hid_t obj, const std::string& name, double value, const fs::path& path,
               const std::string& key) {
  writeAttrRaw(obj, name, H5T_IEEE_F64LE, &value, path, key);
}

std::map<std::string, std::string> readAttrs(hid_t obj, const fs::path& path,
                                             const std::string& keyPrefix) {
  // Keys carry the prefix for error messages ("meta/epoch") and lose it in the result.
  std::string objKey = keyPrefix;
  while (!objKey.empty() && objKey.back() == '/') objKey.pop_back();
  std::map<std::string, std::string> raw, out;
  readAttrsInto(obj, objKey, raw, path);
  const size_t skip = objKey.empty() ? 0 : objKey.size() + 1;
  for (auto& [key, value] : raw) out[key.substr(skip)] = std::move(value);
  return out;
}

std::string numberText(int64_t v) { return std::to_string(v); }
std::string numberText(uint64_t v) { return std::to_string(v); }
std::string numberText(double v) {
  std::array<char, 64> buf{};
  auto res = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  return std::string(buf.data(), res.ptr);
}

}  // namespace mantissa::io::detail
