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

}  // namespace
}  // namespace splitrans::client
