#include "core/io/detail/AtomicFile.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

#include "core/io/CheckpointError.h"

namespace mantissa::io::detail {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void throwErrno(const fs::path& path, const std::string& what, int err) {
  throw CheckpointError(path, "", what + ": " + std::strerror(err));
}

fs::path directoryOf(const fs::path& target) {
  fs::path dir = target.parent_path();
  return dir.empty() ? fs::path(".") : dir;
}

const std::string kTempMarker = ".tmp-";

}  // namespace

fs::path tempPathFor(const fs::path& target) {
  fs::path tmp = target;
  tmp += kTempMarker + std::to_string(::getpid());
  return tmp;
}

void removeStaleTemps(const fs::path& target) {
  const std::string stem = target.filename().string() + kTempMarker;
  std::error_code ec;
  for (fs::directory_iterator it(directoryOf(target), ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= stem.size() || name.compare(0, stem.size(), stem) != 0) continue;
    const std::string digits = name.substr(stem.size());
    if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(digits));
    // Ours (left by an earlier failed attempt whose cleanup failed) or a dead process's.
    bool dead = pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH;
    if (pid == ::getpid() || dead) {
      std::error_code rmEc;
      fs::remove(it->path(), rmEc);
    }
  }
}

void writeFileBytes(const fs::path& file, const char* data, size_t size,
                    const fs::path& nameForErrors) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) throwErrno(nameForErrors, "cannot create " + file.string(), errno);
  auto fail = [&](int err) {
    ::close(fd);
    const char* hint = err == ENOSPC   ? " (disk full)"
                       : err == EDQUOT ? " (disk quota exceeded)"
                       : err == EFBIG  ? " (file size limit)"
                                       : "";
    throwErrno(nameForErrors, std::string("cannot write ") + file.string() + hint, err);
  };
  size_t done = 0;
  while (done < size) {
    // Large writes may be split by the kernel; a short write is not an error by itself.
    ssize_t n = ::write(fd, data + done, std::min<size_t>(size - done, size_t{1} << 30));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(errno);
    if (n == 0) fail(ENOSPC);
    done += static_cast<size_t>(n);
  }
  // close() can report deferred write errors (network file systems).
  if (::close(fd) != 0) throwErrno(nameForErrors, "cannot write " + file.string(), errno);
}

void syncFile(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throwErrno(path, "cannot open to sync", errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) throwErrno(path, "fsync failed (disk full or I/O error?)", err);
}

void syncDirectory(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throwErrno(dir, "cannot open the directory to sync", errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  // Some file systems cannot sync directories (EINVAL); the rename is still atomic there.
  if (rc != 0 && err != EINVAL) throwErrno(dir, "fsync of the directory failed", err);
}

void replaceAtomically(const fs::path& target, const std::function<void(const fs::path&)>& write,
                       const AtomicWriteHooks& hooks) {
  const fs::path dir = directoryOf(target);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throwErrno(dir, "cannot create the directory", ec.value());
  if (fs::is_directory(target, ec)) throw CheckpointError(target, "", "is a directory");
  removeStaleTemps(target);
  const fs::path tmp = tempPathFor(target);
  try {
    write(tmp);
    syncFile(tmp);
    if (hooks.beforeRename) hooks.beforeRename(tmp);
    if (::rename(tmp.c_str(), target.c_str()) != 0) {
      throwErrno(target, "cannot rename " + tmp.string() + " into place", errno);
    }
  } catch (...) {
    std::error_code rmEc;
    fs::remove(tmp, rmEc);
    throw;
  }
  syncDirectory(dir);
}

void linkAtomically(const fs::path& source, const fs::path& target) {
  removeStaleTemps(target);
  const fs::path tmp = tempPathFor(target);
  std::error_code ec;
  fs::remove(tmp, ec);
  if (::link(source.c_str(), tmp.c_str()) != 0) {
    int err = errno;
    if (err != EXDEV && err != EPERM && err != EMLINK && err != ENOTSUP && err != EOPNOTSUPP) {
      throwErrno(target, "cannot link " + source.string(), err);
    }
    // No hard links here (some network and FUSE file systems): fall back to a synced copy.
    try {
      fs::copy_file(source, tmp, fs::copy_options::overwrite_existing);
      syncFile(tmp);
    } catch (const fs::filesystem_error& e) {
      fs::remove(tmp, ec);
      throw CheckpointError(
          target, "", std::string("cannot copy ") + source.string() + ": " + e.code().message());
    } catch (...) {
      fs::remove(tmp, ec);
      throw;
    }
  }
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    int err = errno;
    fs::remove(tmp, ec);
    throwErrno(target, "cannot rename " + tmp.string() + " into place", err);
  }
  syncDirectory(directoryOf(target));
}

}  // namespace mantissa::io::detail
