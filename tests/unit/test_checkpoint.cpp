#include <gtest/gtest.h>

#include "sdk/checkpoint.h"
#include "test_helpers.h"

namespace volt {
namespace {

Tensor filled(const Shape& s, float v) {
    Tensor t = Tensor::empty(s, DType::kF32).value();
    for (int64_t i = 0; i < t.numel(); ++i) t.data_as<float>()[i] = v + static_cast<float>(i);
    return t;
}

// Two shards and an index naming them, as transformers writes them.
void write_sharded(const test::TempDir& dir) {
    ASSERT_TRUE(write_safetensors(dir / "model-00001-of-00002.safetensors", {{"a", filled({2, 2}, 1)}, {"b", filled({3}, 10)}}).is_ok());
    ASSERT_TRUE(write_safetensors(dir / "model-00002-of-00002.safetensors", {{"c", filled({4}, 100)}}).is_ok());
    test::write_file(dir / "model.safetensors.index.json", R"({"metadata":{"total_size":40},"weight_map":{
        "a":"model-00001-of-00002.safetensors","b":"model-00001-of-00002.safetensors",
        "c":"model-00002-of-00002.safetensors"}})");
}

TEST(Checkpoint, SingleFile) {
    test::TempDir dir;
    ASSERT_TRUE(write_safetensors(dir / "model.safetensors", {{"w", filled({2}, 5)}}).is_ok());
    auto ck = Checkpoint::open(dir.path());
    ASSERT_TRUE(ck.has_value()) << ck.status().to_string();
    EXPECT_EQ(ck->num_tensors(), 1u);
    EXPECT_EQ(ck->view("w").value().data_as<float>()[1], 6.0f);
    auto missing = ck->view("nope");
    ASSERT_FALSE(missing.has_value());
    EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
    EXPECT_NE(missing.status().message().find("'nope'"), std::string::npos);
}

TEST(Checkpoint, ShardedIndex) {
    test::TempDir dir;
    write_sharded(dir);
    auto ck = Checkpoint::open(dir.path());
    ASSERT_TRUE(ck.has_value()) << ck.status().to_string();
    EXPECT_EQ(ck->files().size(), 2u);
    EXPECT_EQ(ck->names(), (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_EQ(ck->view("c").value().data_as<float>()[3], 103.0f);
    EXPECT_EQ(ck->view("a").value().data_as<float>()[3], 4.0f);
    // Moving the checkpoint keeps its entries valid.
    Checkpoint moved = std::move(ck).value();
    EXPECT_EQ(moved.view("b").value().data_as<float>()[2], 12.0f);
}

TEST(Checkpoint, NotAModelDirectory) {
    test::TempDir dir;
    auto ck = Checkpoint::open(dir.path());
    ASSERT_FALSE(ck.has_value());
    EXPECT_EQ(ck.status().code(), StatusCode::kNotFound);
    EXPECT_NE(ck.status().message().find("model.safetensors"), std::string::npos);
}

struct BadIndex {
    const char* what;
    std::string index;
    StatusCode code;
    const char* fragment;
};

TEST(Checkpoint, BadIndexesGiveOneClearError) {
    const std::vector<BadIndex> cases = {
        {"invalid JSON", "{\"weight_map\": {", StatusCode::kDataLoss, "not valid JSON"},
        {"no weight_map", R"({"metadata":{}})", StatusCode::kDataLoss, "'weight_map'"},
        {"empty weight_map", R"({"weight_map":{}})", StatusCode::kDataLoss, "lists no tensors"},
        {"shard not a string", R"({"weight_map":{"a":3}})", StatusCode::kDataLoss, "not a file name"},
        {"missing shard", R"({"weight_map":{"a":"model-00009-of-00009.safetensors"}})", StatusCode::kNotFound, "does not exist"},
        {"path escaping the directory", R"({"weight_map":{"a":"../model-00001-of-00002.safetensors"}})", StatusCode::kDataLoss, "not a file in the model directory"},
        {"tensor not in its shard", R"({"weight_map":{"c":"model-00001-of-00002.safetensors"}})", StatusCode::kDataLoss, "does not contain it"},
    };
    for (const auto& c : cases) {
        test::TempDir dir;
        write_sharded(dir);
        test::write_file(dir / "model.safetensors.index.json", c.index);
        auto ck = Checkpoint::open(dir.path());
        ASSERT_FALSE(ck.has_value()) << c.what;
        EXPECT_EQ(ck.status().code(), c.code) << c.what << ": " << ck.status().message();
        EXPECT_NE(ck.status().message().find(c.fragment), std::string::npos) << c.what << ": " << ck.status().message();
        EXPECT_NE(ck.status().message().find("model.safetensors.index.json"), std::string::npos) << c.what;
    }
}

TEST(Checkpoint, CorruptShardNamesTheShard) {
    test::TempDir dir;
    write_sharded(dir);
    test::write_file(dir / "model-00002-of-00002.safetensors", "garbage!garbage!");
    auto ck = Checkpoint::open(dir.path());
    ASSERT_FALSE(ck.has_value());
    EXPECT_EQ(ck.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(ck.status().message().find("model-00002-of-00002.safetensors"), std::string::npos) << ck.status().message();
}

}  // namespace
}  // namespace volt
