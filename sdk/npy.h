// NumPy .npy files (format 1.0, little-endian, C order): how logits, features and pixel values leave the CLI,
// and how reference fixtures made with numpy come back in. Reads versions 1.0-3.0 of f4/f8/f2/i4/i8/u1/i1/b1 arrays.
#pragma once

#include <filesystem>

#include "sdk/status.h"
#include "sdk/tensor.h"

namespace volt {

Status write_npy(const std::filesystem::path& path, const Tensor& tensor);  // CPU tensor, any layout
Expected<Tensor> read_npy(const std::filesystem::path& path);               // owning, contiguous CPU tensor

}  // namespace volt
