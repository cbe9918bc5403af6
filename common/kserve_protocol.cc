#include "common/kserve_protocol.h"

#include <absl/strings/str_cat.h>

namespace splitrans::kserve {

void AppendRawBytes(std::string_view element, std::string* raw) {
  const uint32_t len = static_cast<uint32_t>(element.size());
  for (int b = 0; b < 4; ++b) raw->push_back(static_cast<char>((len >> (8 * b)) & 0xff));
  raw->append(element);
}

absl::Status SplitRawBytes(std::string_view raw, int64_t count, std::vector<std::string_view>* out) {
  out->clear();
  size_t pos = 0;
  for (int64_t i = 0; i < count; ++i) {
    if (raw.size() - pos < 4) {
      return absl::InvalidArgumentError(absl::StrCat("raw BYTES data is truncated at element ", i, " of ", count));
    }
    uint32_t len = 0;
    for (int b = 0; b < 4; ++b) len |= static_cast<uint32_t>(static_cast<uint8_t>(raw[pos + b])) << (8 * b);
    pos += 4;
    if (raw.size() - pos < len) {
      return absl::InvalidArgumentError(
          absl::StrCat("raw BYTES element ", i, " declares ", len, " bytes, ", raw.size() - pos, " remain"));
    }
    out->push_back(raw.substr(pos, len));
    pos += len;
  }
  if (pos != raw.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("raw BYTES data has ", raw.size() - pos, " bytes after its ", count, " elements"));
  }
  return absl::OkStatus();
}

}  // namespace splitrans::kserve
