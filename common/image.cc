#include "common/image.h"

#include <absl/strings/str_cat.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/limits.h"

#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace splitrans {

absl::Status ImageDimensions(const uint8_t* data, size_t size, int* width, int* height) {
  if (size == 0) return absl::InvalidArgumentError("image: empty input");
  if (size > kMaxEncodedImageBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("image: ", size, " bytes exceeds the limit of ", kMaxEncodedImageBytes));
  }
  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(data, static_cast<int>(size), &w, &h, &comp)) {
    return absl::InvalidArgumentError(
        absl::StrCat("image: not a PNG or JPEG image (", stbi_failure_reason(), ")"));
  }
  if (w <= 0 || h <= 0 || w > kMaxImageSide || h > kMaxImageSide) {
    return absl::InvalidArgumentError(
        absl::StrCat("image: ", w, "x", h, " exceeds the limit of ", kMaxImageSide, " per side"));
  }
  *width = w;
  *height = h;
  return absl::OkStatus();
}

absl::Status DecodeImageToInput(const uint8_t* data, size_t size, const ModelManifest& m,
                                float* out) {
  int w = 0, h = 0, comp = 0;
  if (auto st = ImageDimensions(data, size, &w, &h); !st.ok()) return st;
  const int c = static_cast<int>(m.input_shape[0]);
  const int oh = static_cast<int>(m.input_shape[1]), ow = static_cast<int>(m.input_shape[2]);
  stbi_uc* pixels = stbi_load_from_memory(data, static_cast<int>(size), &w, &h, &comp, c);
  if (pixels == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("image: corrupt image (", stbi_failure_reason(), ")"));
  }
  // Bilinear resize (align_corners=false) + normalization, HWC uint8 -> CHW float.
  const float sy = static_cast<float>(h) / oh, sx = static_cast<float>(w) / ow;
  for (int y = 0; y < oh; ++y) {
    float fy = std::max(0.f, (y + 0.5f) * sy - 0.5f);
    int y0 = std::min(static_cast<int>(fy), h - 1), y1 = std::min(y0 + 1, h - 1);
    float wy = fy - y0;
    for (int x = 0; x < ow; ++x) {
      float fx = std::max(0.f, (x + 0.5f) * sx - 0.5f);
      int x0 = std::min(static_cast<int>(fx), w - 1), x1 = std::min(x0 + 1, w - 1);
      float wx = fx - x0;
      for (int ch = 0; ch < c; ++ch) {
        auto px = [&](int yy, int xx) { return static_cast<float>(pixels[(yy * w + xx) * c + ch]); };
        float v = (1 - wy) * ((1 - wx) * px(y0, x0) + wx * px(y0, x1)) +
                  wy * ((1 - wx) * px(y1, x0) + wx * px(y1, x1));
        out[(ch * oh + y) * ow + x] = (v / 255.f - m.mean[ch]) / m.std[ch];
      }
    }
  }
  stbi_image_free(pixels);
  return absl::OkStatus();
}

void NormalizeUnit(const float* unit, const ModelManifest& m, float* out) {
  const int64_t c = m.input_shape[0];
  const int64_t plane = m.input_shape[1] * m.input_shape[2];
  for (int64_t ch = 0; ch < c; ++ch) {
    const float mean = m.mean[ch], inv_std = 1.f / m.std[ch];
    for (int64_t i = 0; i < plane; ++i) out[ch * plane + i] = (unit[ch * plane + i] - mean) * inv_std;
  }
}

void NormalizePixels(const uint8_t* pixels, const ModelManifest& m, float* out) {
  const int64_t c = m.input_shape[0];
  const int64_t plane = m.input_shape[1] * m.input_shape[2];
  for (int64_t ch = 0; ch < c; ++ch) {
    const float mean = m.mean[ch], inv_std = 1.f / m.std[ch];
    for (int64_t i = 0; i < plane; ++i) {
      out[ch * plane + i] = (pixels[ch * plane + i] / 255.f - mean) * inv_std;
    }
  }
}

}  // namespace splitrans
