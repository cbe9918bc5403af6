// Built as a shared object (MODULE) against the static codec: linking it checks that the codec is PIC.
#include <vector>

#include "codec/codec.h"

extern "C" int splitrans_consumer_encoded_size(const float* data, long n) {
  auto r = splitrans::codec::Encode({data, splitrans::codec::DType::kFloat32, {n}}, {});
  return r.ok() ? static_cast<int>(r->size()) : -1;
}
