#include "sdk/mapped_file.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace volt {

Expected<std::shared_ptr<MappedFile>> MappedFile::open(const std::filesystem::path& path) {
    std::shared_ptr<MappedFile> f(new MappedFile());
    f->path_ = path.string();
    int fd = ::open(f->path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT) return not_found(f->path_, ": no such file");
        return invalid_argument(f->path_, ": cannot open: ", std::strerror(e));
    }
    struct stat st{};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        return invalid_argument(f->path_, ": not a regular file");
    }
    f->size_ = static_cast<size_t>(st.st_size);
    if (f->size_ > 0) {
        void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            ::close(fd);
            return resource_exhausted(f->path_, ": mmap of ", f->size_, " bytes failed: ", std::strerror(e));
        }
        f->data_ = static_cast<const std::byte*>(p);
        f->mmapped_ = true;
    }
    ::close(fd);  // the mapping stays valid
    return f;
}

std::shared_ptr<MappedFile> MappedFile::from_bytes(std::string label, std::span<const std::byte> bytes) {
    std::shared_ptr<MappedFile> f(new MappedFile());
    f->path_ = std::move(label);
    f->owned_ = std::make_unique<std::byte[]>(bytes.size() ? bytes.size() : 1);
    if (!bytes.empty()) std::memcpy(f->owned_.get(), bytes.data(), bytes.size());
    f->data_ = f->owned_.get();
    f->size_ = bytes.size();
    return f;
}

MappedFile::~MappedFile() {
    if (mmapped_) ::munmap(const_cast<std::byte*>(data_), size_);
}

}  // namespace volt
