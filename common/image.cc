#include "common/image.h"

#include <absl/strings/str_cat.h>
#include <png.h>
#include <turbojpeg.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "common/limits.h"

// Decoding uses libpng (simplified API) and libjpeg-turbo (TurboJPEG API): both are fuzzed
// continuously upstream and report errors instead of trusting the input (stb_image, used before,
// wrote past a Huffman table on a crafted JPEG that our request fuzzer found in seconds).

namespace splitrans {

namespace {

enum class Format { kPng, kJpeg, kUnknown };

Format Sniff(const uint8_t* data, size_t size) {
  static constexpr uint8_t kPngMagic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (size >= 8 && std::memcmp(data, kPngMagic, 8) == 0) return Format::kPng;
  if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff) return Format::kJpeg;
  return Format::kUnknown;
}

absl::Status CheckSize(const uint8_t* data, size_t size) {
  if (size == 0) return absl::InvalidArgumentError("image: empty input");
  if (size > kMaxEncodedImageBytes) {
    return absl::InvalidArgumentError(absl::StrCat("image: ", size, " bytes exceeds the limit of ", kMaxEncodedImageBytes));
  }
  return absl::OkStatus();
}

absl::Status CheckSides(int w, int h) {
  if (w <= 0 || h <= 0 || w > kMaxImageSide || h > kMaxImageSide) {
    return absl::InvalidArgumentError(absl::StrCat("image: ", w, "x", h, " exceeds the limit of ", kMaxImageSide, " per side"));
  }
  return absl::OkStatus();
}

struct TjHandle {
  tjhandle h = tjInitDecompress();
  ~TjHandle() {
    if (h) tjDestroy(h);
  }
};

std::string TjError(tjhandle h) { return tjGetErrorStr2(h); }

// Reads the image header: width, height (not validated against the limits).
absl::Status ReadHeader(const uint8_t* data, size_t size, Format f, int* w, int* h) {
  if (f == Format::kPng) {
    png_image img;
    std::memset(&img, 0, sizeof(img));
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&img, data, size)) {
      return absl::InvalidArgumentError(absl::StrCat("image: corrupt PNG (", img.message, ")"));
    }
    *w = static_cast<int>(std::min<png_uint_32>(img.width, 1u << 30));
    *h = static_cast<int>(std::min<png_uint_32>(img.height, 1u << 30));
    png_image_free(&img);
    return absl::OkStatus();
  }
  TjHandle tj;
  if (!tj.h) return absl::InternalError("image: cannot create a JPEG decoder");
  int subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(tj.h, data, static_cast<unsigned long>(size), w, h, &subsamp, &colorspace) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("image: corrupt JPEG (", TjError(tj.h), ")"));
  }
  return absl::OkStatus();
}

// Decodes to 8-bit pixels with `channels` (1 gray, 3 RGB) interleaved, rows top to bottom.
absl::Status DecodePixels(const uint8_t* data, size_t size, Format f, int channels, int* w, int* h,
                          std::vector<uint8_t>* pixels) {
  if (f == Format::kPng) {
    png_image img;
    std::memset(&img, 0, sizeof(img));
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&img, data, size)) {
      return absl::InvalidArgumentError(absl::StrCat("image: corrupt PNG (", img.message, ")"));
    }
    if (auto st = CheckSides(static_cast<int>(std::min<png_uint_32>(img.width, 1u << 30)),
                             static_cast<int>(std::min<png_uint_32>(img.height, 1u << 30)));
        !st.ok()) {
      png_image_free(&img);
      return st;
    }
    img.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    pixels->resize(PNG_IMAGE_SIZE(img));
    // Transparent pixels are composed over black (no background given).
    if (!png_image_finish_read(&img, nullptr, pixels->data(), 0, nullptr)) {
      png_image_free(&img);
      return absl::InvalidArgumentError(absl::StrCat("image: corrupt PNG (", img.message, ")"));
    }
    *w = static_cast<int>(img.width);
    *h = static_cast<int>(img.height);
    return absl::OkStatus();
  }
  TjHandle tj;
  if (!tj.h) return absl::InternalError("image: cannot create a JPEG decoder");
  int subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(tj.h, data, static_cast<unsigned long>(size), w, h, &subsamp, &colorspace) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("image: corrupt JPEG (", TjError(tj.h), ")"));
  }
  if (auto st = CheckSides(*w, *h); !st.ok()) return st;
  pixels->resize(static_cast<size_t>(*w) * *h * channels);
  if (tjDecompress2(tj.h, data, static_cast<unsigned long>(size), pixels->data(), *w, 0, *h,
                    channels == 1 ? TJPF_GRAY : TJPF_RGB, TJFLAG_STOPONWARNING) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("image: corrupt JPEG (", TjError(tj.h), ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ImageDimensions(const uint8_t* data, size_t size, int* width, int* height) {
  if (auto st = CheckSize(data, size); !st.ok()) return st;
  const Format f = Sniff(data, size);
  if (f == Format::kUnknown) return absl::InvalidArgumentError("image: not a PNG or JPEG image (unknown signature)");
  int w = 0, h = 0;
  if (auto st = ReadHeader(data, size, f, &w, &h); !st.ok()) return st;
  if (auto st = CheckSides(w, h); !st.ok()) return st;
  *width = w;
  *height = h;
  return absl::OkStatus();
}

absl::Status DecodeImageToInput(const uint8_t* data, size_t size, const ModelManifest& m, float* out) {
  if (auto st = CheckSize(data, size); !st.ok()) return st;
  const Format f = Sniff(data, size);
  if (f == Format::kUnknown) return absl::InvalidArgumentError("image: not a PNG or JPEG image (unknown signature)");
  const int c = static_cast<int>(m.input_shape[0]);
  if (c != 1 && c != 3) return absl::InvalidArgumentError(absl::StrCat("image: the model wants ", c, " channels (1 or 3)"));
  const int oh = static_cast<int>(m.input_shape[1]), ow = static_cast<int>(m.input_shape[2]);
  int w = 0, h = 0;
  std::vector<uint8_t> pixels;
  if (auto st = DecodePixels(data, size, f, c, &w, &h, &pixels); !st.ok()) return st;
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
        auto px = [&](int yy, int xx) { return static_cast<float>(pixels[(static_cast<size_t>(yy) * w + xx) * c + ch]); };
        float v = (1 - wy) * ((1 - wx) * px(y0, x0) + wx * px(y0, x1)) + wy * ((1 - wx) * px(y1, x0) + wx * px(y1, x1));
        out[(ch * oh + y) * ow + x] = (v / 255.f - m.mean[ch]) / m.std[ch];
      }
    }
  }
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
