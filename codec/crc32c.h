// CRC32C (Castagnoli, reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF), the
// bitstream checksum. Uses SSE4.2 when ActiveSimdLevel() allows it (codec/cpu_features.h), else a table.
#pragma once

#include <cstddef>
#include <cstdint>

namespace splitrans::codec {

// CRC32C of data[0, n). Crc32c("123456789") == 0xE3069283.
uint32_t Crc32c(const uint8_t* data, size_t n);

}  // namespace splitrans::codec
