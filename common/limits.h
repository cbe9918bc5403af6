// Limits shared by the services: every size derived from a request is bounded by these.
#pragma once

#include <cstddef>
#include <cstdint>

namespace splitrans {

// gRPC max send/receive message size for tensor payloads (both services).
constexpr int kDefaultMaxMessageBytes = 64 << 20;
// Images per ModelInfer request / batch size of a feature packet.
constexpr int64_t kMaxBatch = 256;
// One encoded image (PNG/JPEG bytes).
constexpr size_t kMaxEncodedImageBytes = 16 << 20;
// Decoded image dimensions accepted before resizing to the model input.
constexpr int kMaxImageSide = 8192;
// Decoded feature elements accepted by the cloud (before comparing with the manifest shape).
constexpr uint64_t kMaxFeatureElements = uint64_t{1} << 26;
// Top-k entries per batch element.
constexpr int kMaxTopK = 100;

}  // namespace splitrans
