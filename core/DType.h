#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace mantissa {

/// Element types. Compute is F32; the integer types hold labels (I64) and packed format codes.
enum class DType : uint8_t { F32, F64, I64, I32, I16, U16, I8, U8 };

/// Size of one element in bytes.
size_t elementSize(DType t);
/// "f32", "i64", ... (also used as HDF5 attribute values).
std::string dtypeName(DType t);

/// Maps a C++ type to its DType; unsupported types fail to compile.
template <class T>
constexpr DType dtypeOf();
template <> constexpr DType dtypeOf<float>() { return DType::F32; }
template <> constexpr DType dtypeOf<double>() { return DType::F64; }
template <> constexpr DType dtypeOf<int64_t>() { return DType::I64; }
template <> constexpr DType dtypeOf<int32_t>() { return DType::I32; }
template <> constexpr DType dtypeOf<int16_t>() { return DType::I16; }
template <> constexpr DType dtypeOf<uint16_t>() { return DType::U16; }
template <> constexpr DType dtypeOf<int8_t>() { return DType::I8; }
template <> constexpr DType dtypeOf<uint8_t>() { return DType::U8; }

}  // namespace mantissa
