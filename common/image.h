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

// Normalizes raw uint8 pixels that already have the model's CHW shape.
// REQUIRES: pixels and out hold manifest.InputElements() elements.
void NormalizePixels(const uint8_t* pixels, const ModelManifest& manifest, float* out);

}  // namespace splitrans
