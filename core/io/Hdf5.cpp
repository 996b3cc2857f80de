#include "core/io/Hdf5.h"

#include "core/io/detail/AtomicFile.h"
#include "core/io/detail/H5Tree.h"

namespace mantissa::io {

namespace detail {

size_t estimateFileSize(const StateDict& state) {
  size_t bytes = size_t{64} << 10;  // superblock, root group, slack
  for (const auto& [key, t] : state.tensors)
    bytes += (t.defined() ? t.nbytes() : 0) + 512 + key.size();
  for (const auto& [key, v] : state.attrs) bytes += 128 + key.size() + v.size();
  return bytes;
}

}  // namespace detail

void writeHdf5(const std::filesystem::path& path, const StateDict& state) {
  detail::FileImage image;
  {
    auto lock = detail::lockHdf5();
    detail::ImageFile file = detail::createImageFile(path, detail::estimateFileSize(state));
    detail::writeTree(file.get(), state, path);
    image = detail::takeImage(file, path);
  }
  detail::replaceAtomically(path, [&](const std::filesystem::path& tmp) {
    detail::writeFileBytes(tmp, image.bytes.get(), image.size, path);
  });
}

StateDict readHdf5(const std::filesystem::path& path) {
  auto lock = detail::lockHdf5();
  detail::H5Handle file = detail::openFile(path);
  StateDict out;
  detail::readTree(file.get(), out, path);
  return out;
}

}  // namespace mantissa::io
