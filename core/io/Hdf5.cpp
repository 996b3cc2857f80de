#include "core/io/Hdf5.h"

#include "core/io/detail/H5Tree.h"

namespace mantissa::io {

void writeHdf5(const std::filesystem::path& path, const StateDict& state) {
  auto lock = detail::lockHdf5();
  detail::H5Handle file = detail::createFile(path);
  detail::writeTree(file.get(), state, path);
  detail::closeFile(file, path);
}

StateDict readHdf5(const std::filesystem::path& path) {
  auto lock = detail::lockHdf5();
  detail::H5Handle file = detail::openFile(path);
  StateDict out;
  detail::readTree(file.get(), out, path);
  return out;
}

}  // namespace mantissa::io
