// Image preprocessing: encoded PNG/JPEG bytes or raw pixels -> normalized float CHW for a model
// input (resized bilinearly when the size differs). Thread-safe (no shared state).
#pragma once

#include <absl/status/status.h>

#include <cstddef>
#include <cstdint>

#include "common/model_repository.h"

namespace splitrans {

// Decodes one PNG/JPEG image and writes manifest.InputElements() floats to out (CHW,
// (pixel/255 - mean) / std). INVALID_ARGUMENT for corrupt, unsupported or oversized images.
// REQUIRES: out holds manifest.InputElements() floats.
absl::Status DecodeImageToInput(const uint8_t* data, size_t size, const ModelManifest& manifest,
                                float* out);

// Width and height of one PNG/JPEG image from its header (nothing is decoded).
// INVALID_ARGUMENT for empty, oversized or unrecognized data, or a side over kMaxImageSide.
absl::Status ImageDimensions(const uint8_t* data, size_t size, int* width, int* height);

// Normalizes raw uint8 pixels that already have the model's CHW shape.
// REQUIRES: pixels and out hold manifest.InputElements() elements.
void NormalizePixels(const uint8_t* pixels, const ModelManifest& manifest, float* out);
// Normalizes pixel/255 values (in [0, 1]) that already have the model's CHW shape.
// REQUIRES: unit and out hold manifest.InputElements() elements.
void NormalizeUnit(const float* unit, const ModelManifest& manifest, float* out);

}  // namespace splitrans
