// Softmax + top-k over logits rows (shared by the cloud and the client's local evaluation).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace splitrans {

struct TopKEntry {
  int batch_index = 0;
  int index = 0;  // class index
  std::string label;
  float score = 0;  // softmax probability
};

// Softmax over each row of logits [rows, cols] and the k best entries per row, best first
// (ties: lower index first, like argmax). labels: class names (index as text when missing).
std::vector<TopKEntry> SoftmaxTopK(const std::vector<float>& logits, int64_t rows, int64_t cols,
                                   int k, const std::vector<std::string>& labels);

}  // namespace splitrans
