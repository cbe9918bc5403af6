#include "common/topk.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace splitrans {

std::vector<TopKEntry> SoftmaxTopK(const std::vector<float>& logits, int64_t rows, int64_t cols,
                                   int k, const std::vector<std::string>& labels) {
  std::vector<TopKEntry> out;
  k = std::max(1, std::min<int>(k, static_cast<int>(cols)));
  std::vector<int> idx(cols);
  std::vector<float> prob(cols);
  for (int64_t b = 0; b < rows; ++b) {
    const float* row = logits.data() + b * cols;
    float mx = *std::max_element(row, row + cols);
    double sum = 0;
    for (int64_t c = 0; c < cols; ++c) sum += (prob[c] = std::exp(row[c] - mx));
    std::iota(idx.begin(), idx.end(), 0);
    // Ties resolve to the lower index (same as torch.argmax on the first maximum).
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int c) {
      return row[a] > row[c] || (row[a] == row[c] && a < c);
    });
    for (int i = 0; i < k; ++i) {
      TopKEntry e;
      e.batch_index = static_cast<int>(b);
      e.index = idx[i];
      e.label = idx[i] < static_cast<int>(labels.size()) ? labels[idx[i]] : std::to_string(idx[i]);
      e.score = static_cast<float>(prob[idx[i]] / sum);
      out.push_back(std::move(e));
    }
  }
  return out;
}

}  // namespace splitrans
