// Triton-style model repository: <repo>/<model>/<version>/manifest.json (+ TorchScript files).
// Loaded once at startup; the loaded objects are immutable (thread-safe to read).
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace splitrans {

struct SplitSpec {
  std::string name;                    // "stage2"
  std::string head_path;               // absolute or repo-relative path of the head TorchScript
  std::string tail_path;
  std::vector<int64_t> feature_shape;  // without the batch dimension: [C, H, W], [tokens, dim], ...
};

// What a model takes: images (FP32 [C, H, W], the default) or token ids (INT64 [T], input.kind
// "tokens", each id in [0, vocab) and label i naming token i).
enum class InputKind { kImage, kTokens };

struct ModelManifest {
  std::string name;
  int64_t version = 0;
  std::string dir;                     // <repo>/<model>/<version>
  std::string platform;                // "torchscript"
  InputKind input_kind = InputKind::kImage;
  std::vector<int64_t> input_shape;    // images: [C, H, W]; tokens: [T]
  std::vector<float> mean, std;        // images: per channel (size C, or 1 broadcast)
  std::string color;                   // images: "grayscale" or "rgb"
  int64_t vocab = 0;                   // tokens: ids are in [0, vocab); vocab == labels.size()
  std::vector<int64_t> output_shape;   // [num_classes]
  std::vector<std::string> labels;     // num_classes entries
  std::string full_path;               // unsplit model (may be empty)
  std::string default_split;
  std::map<std::string, SplitSpec> splits;

  int64_t InputElements() const;       // product(input_shape)
  bool IsTokens() const { return input_kind == InputKind::kTokens; }
  int NumClasses() const { return static_cast<int>(labels.size()); }
  // The split with this name; empty name: default_split. NOT_FOUND lists the valid names.
  absl::StatusOr<const SplitSpec*> FindSplit(const std::string& name) const;
};

// Parses and validates one manifest.json (dir: its version directory, for resolving paths).
absl::StatusOr<ModelManifest> ParseManifest(const std::string& json_text, const std::string& dir);
absl::StatusOr<ModelManifest> LoadManifest(const std::string& version_dir);

class ModelRepository {
 public:
  // Scans every <model>/<numeric version>/manifest.json under root. Fails if a manifest is
  // invalid or no model is found.
  static absl::StatusOr<ModelRepository> Load(const std::string& root);

  // version "" or "0": the latest version. NOT_FOUND for unknown models or versions.
  absl::StatusOr<const ModelManifest*> Find(const std::string& model,
                                            const std::string& version = "") const;
  // A model version and one of its splits ("" = the manifest's default). NOT_FOUND for unknown
  // models, versions or splits.
  struct Resolved {
    const ModelManifest* manifest = nullptr;
    const SplitSpec* split = nullptr;
  };
  absl::StatusOr<Resolved> Resolve(const std::string& model, const std::string& version,
                                   const std::string& split) const;
  std::vector<std::string> ModelNames() const;
  // All manifests (every version of every model).
  std::vector<const ModelManifest*> All() const;
  const std::string& root() const { return root_; }

 private:
  std::string root_;
  std::map<std::string, std::map<int64_t, ModelManifest>> models_;  // name -> version -> manifest
};

}  // namespace splitrans
