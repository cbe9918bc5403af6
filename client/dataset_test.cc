// Unit tests of the client's input readers (image directories) and the BYTES request they feed.
#include "client/dataset.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "client/eval.h"
#include "common/limits.h"

namespace splitrans::client {
namespace {

namespace fs = std::filesystem;

class ImageDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("splitrans-imagedir-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ / name, std::ios::binary) << bytes;
  }
  fs::path dir_;
};

TEST_F(ImageDirTest, ReadsImageFilesSortedAndAsStored) {
  Write("b.jpg", std::string("\xff\xd8\x00jpeg", 7));
  Write("a.PNG", "png-bytes");
  Write("c.jpeg", "c");
  Write("notes.txt", "not an image");
  fs::create_directories(dir_ / "sub.jpg");  // a directory, not a file
  auto r = ReadImageDir(dir_.string());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->names, (std::vector<std::string>{"a.PNG", "b.jpg", "c.jpeg"}));
  ASSERT_EQ(r->bytes.size(), 3u);
  EXPECT_EQ(r->bytes[0], "png-bytes");
  EXPECT_EQ(r->bytes[1], std::string("\xff\xd8\x00jpeg", 7));  // binary, with a NUL
  auto limited = ReadImageDir(dir_.string(), 2);
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(limited->names, (std::vector<std::string>{"a.PNG", "b.jpg"}));
}

TEST_F(ImageDirTest, Rejections) {
  EXPECT_EQ(ReadImageDir((dir_ / "missing").string()).status().code(), absl::StatusCode::kNotFound);
  Write("notes.txt", "x");
  EXPECT_EQ(ReadImageDir(dir_.string()).status().code(), absl::StatusCode::kInvalidArgument);  // no images
  Write("empty.jpg", "");
  EXPECT_EQ(ReadImageDir(dir_.string()).status().code(), absl::StatusCode::kInvalidArgument);  // 0 bytes
}

TEST(EncodedRequestTest, OneBytesInputWithTheChosenImages) {
  InferSettings s;
  s.model = "resnet50";
  s.placement = "offload";
  const std::vector<std::string> images = {"zero", std::string("o\0ne", 4), "two"};
  auto req = MakeEncodedRequest(s, images, 1, 2);
  EXPECT_EQ(req.model_name(), "resnet50");
  ASSERT_EQ(req.inputs_size(), 1);
  const auto& in = req.inputs(0);
  EXPECT_EQ(in.datatype(), "BYTES");
  ASSERT_EQ(in.shape_size(), 1);
  EXPECT_EQ(in.shape(0), 2);
  ASSERT_EQ(in.contents().bytes_contents_size(), 2);
  EXPECT_EQ(in.contents().bytes_contents(0), std::string("o\0ne", 4));
  EXPECT_EQ(in.contents().bytes_contents(1), "two");
  EXPECT_EQ(req.raw_input_contents_size(), 0);
}

TEST(TextTokens, CharactersMapToTheirLabelsIndex) {
  const std::vector<std::string> labels = {"\n", " ", "a", "b", "\xc3\xa9"};  // the last is U+00E9
  auto ids = TextToTokens("ab a\n\xc3\xa9" "b", labels);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(*ids, (std::vector<int64_t>{2, 3, 1, 2, 0, 4, 3}));
  EXPECT_TRUE(TextToTokens("", labels)->empty());
  // A character outside the vocabulary: named, with its position (in characters) and line.
  auto bad = TextToTokens("ab\n\xc3\xa9" "aZ", labels);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("character 'Z' at position 5 (line 2)"), std::string::npos) << bad.status();
  bad = TextToTokens("a\tb", labels);
  EXPECT_NE(bad.status().message().find("'\\t' at position 1"), std::string::npos) << bad.status();
  bad = TextToTokens("a\xe2\x82\xac", labels);  // U+20AC
  EXPECT_NE(bad.status().message().find("'U+20AC' at position 1"), std::string::npos) << bad.status();
  bad = TextToTokens("a\xc3", labels);  // truncated UTF-8
  EXPECT_NE(bad.status().message().find("invalid UTF-8 at byte 1"), std::string::npos) << bad.status();
  // Labels that are not characters: not a character-level model.
  bad = TextToTokens("a", {"a", "bc"});
  EXPECT_NE(bad.status().message().find("label 1 ('bc') is not one character"), std::string::npos) << bad.status();
}

TEST(TextTokens, WindowsNeedTheNextCharacter) {
  EXPECT_EQ(CountWindows(64, 64, 64), 0);   // no character after the window
  EXPECT_EQ(CountWindows(65, 64, 64), 1);
  EXPECT_EQ(CountWindows(128, 64, 64), 1);  // the second window would need character 128
  EXPECT_EQ(CountWindows(129, 64, 64), 2);
  EXPECT_EQ(CountWindows(129, 64, 1), 65);
  EXPECT_EQ(CountWindows(129, 64, 1, 10), 10);
  EXPECT_EQ(CountWindows(10, 64, 1), 0);
  EXPECT_EQ(CountWindows(100, 64, 0), 0);
}

TEST(TextTokens, TokenRequestIsInt64LittleEndian) {
  InferSettings s;
  s.model = "kjv_charlm";
  const std::vector<int64_t> ids = {1, 258, 3, 4, 5, 72};
  auto req = MakeTokenRequest(s, ids.data(), 2, 3);
  EXPECT_EQ(req.model_name(), "kjv_charlm");
  ASSERT_EQ(req.inputs_size(), 1);
  EXPECT_EQ(req.inputs(0).datatype(), "INT64");
  ASSERT_EQ(req.inputs(0).shape_size(), 2);
  EXPECT_EQ(req.inputs(0).shape(0), 2);
  EXPECT_EQ(req.inputs(0).shape(1), 3);
  ASSERT_EQ(req.raw_input_contents_size(), 1);
  const std::string& raw = req.raw_input_contents(0);
  ASSERT_EQ(raw.size(), 48u);
  EXPECT_EQ(raw[8], 2);  // 258 = 0x0102, low byte first
  EXPECT_EQ(raw[9], 1);
  EXPECT_EQ(raw[40], 72);
}

}  // namespace
}  // namespace splitrans::client
