// Limits and defaults shared by the services: every size derived from a request is bounded by
// these, and every queue has one of them as its bound (most are flags; see --help).
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
// Decoded pixels (width x height, summed over a request's images) one request may cost the
// edge: bounds the image-decoding work of a request, not only of one image (--max-request-pixels).
constexpr int64_t kDefaultMaxRequestPixels = int64_t{1} << 26;
// Decoded feature elements accepted by the cloud (before comparing with the manifest shape).
constexpr uint64_t kMaxFeatureElements = uint64_t{1} << 26;
// Top-k entries per batch element.
constexpr int kMaxTopK = 100;

// Admission control (flags on edge and cloud): requests past these get RESOURCE_EXHAUSTED.
constexpr int kDefaultEdgeMaxInflight = 256;  // edge: admitted and not yet answered
constexpr int kDefaultMaxQueue = 64;          // edge and cloud: waiting for a worker thread
constexpr int64_t kDefaultCloudQueueBytes = 64 << 20;  // edge: bytes waiting to go to the cloud
// Against hostile peers (flags on both servers): the metadata (headers) of one call, and the
// streams one connection may have open at once.
constexpr int kDefaultMaxMetadataBytes = 16 << 10;
constexpr int kDefaultMaxConcurrentStreams = 256;
// Connections are closed (GOAWAY) after about kDefaultMaxConnectionAgeMs, so that clients
// rebalance over replicas added since they connected; their calls then have
// kDefaultMaxConnectionAgeGraceMs to end (longer than any default deadline).
constexpr int kDefaultMaxConnectionAgeMs = 5 * 60 * 1000;
constexpr int kDefaultMaxConnectionAgeGraceMs = 30 * 1000;
// gRPC ResourceQuota of each server (transport buffers).
constexpr int64_t kDefaultMemoryQuotaBytes = int64_t{1} << 30;

// Keepalive both ends agree on: clients ping every kDefaultKeepaliveMs (also on idle
// connections); servers accept pings as often as every kDefaultKeepaliveMinPingMs and send
// GOAWAY "too_many_pings" after kMaxPingStrikes pings that come sooner.
constexpr int kDefaultKeepaliveMs = 20000;
constexpr int kDefaultKeepaliveTimeoutMs = 10000;
constexpr int kDefaultKeepaliveMinPingMs = 10000;
constexpr int kMaxPingStrikes = 2;

}  // namespace splitrans
