#include <gtest/gtest.h>

#include <cstring>

#include "sdk/safetensors.h"
#include "test_helpers.h"

namespace volt {
namespace {

using test::safetensors_bytes;

Expected<SafetensorsHeader> parse(const std::string& bytes) {
    return parse_safetensors_header({reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()}, "m.safetensors");
}

TEST(Safetensors, RoundTripPreservesNamesShapesDtypesAndBytes) {
    test::TempDir dir;
    Tensor a = Tensor::empty({2, 3}, DType::kF32).value();
    for (int i = 0; i < 6; ++i) a.data_as<float>()[i] = 0.5f * i - 1.0f;
    Tensor b = a.to(DType::kBF16).value();
    Tensor c = Tensor::empty({4}, DType::kI64).value();
    for (int i = 0; i < 4; ++i) c.data_as<int64_t>()[i] = (int64_t(1) << 40) + i;
    Tensor empty = Tensor::empty({0, 5}, DType::kF16).value();
    Tensor strided = a.transpose(0, 1).value();  // written contiguous
    ASSERT_TRUE(write_safetensors(dir / "m.safetensors",
                                  {{"z.f32", a}, {"a.bf16", b}, {"ids", c}, {"empty", empty}, {"t", strided}},
                                  {{"format", "pt"}}).is_ok());

    auto f = SafetensorsFile::open(dir / "m.safetensors");
    ASSERT_TRUE(f.has_value()) << f.status().to_string();
    EXPECT_EQ(f->tensors().size(), 5u);
    EXPECT_EQ(f->metadata().at("format"), "pt");
    const auto* e = f->find("a.bf16");
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->dtype, DType::kBF16);
    EXPECT_EQ(e->shape, (Shape{2, 3}));
    Tensor v = f->view(*e).to(DType::kF32).value();
    for (int i = 0; i < 6; ++i) EXPECT_EQ(v.data_as<float>()[i], 0.5f * i - 1.0f);
    Tensor ids = f->view(*f->find("ids"));
    EXPECT_EQ(ids.data_as<int64_t>()[3], (int64_t(1) << 40) + 3);
    Tensor t = f->view(*f->find("t"));
    EXPECT_EQ(t.shape(), (Shape{3, 2}));
    EXPECT_EQ(t.data_as<float>()[1], a.data_as<float>()[3]);  // t[0][1] = a[1][0]
    EXPECT_EQ(f->view(*f->find("empty")).numel(), 0);
    EXPECT_EQ(f->find("nope"), nullptr);
}

TEST(Safetensors, ViewOutlivesFileObject) {
    test::TempDir dir;
    Tensor a = Tensor::zeros({16}, DType::kF32).value();
    a.data_as<float>()[15] = 42.0f;
    ASSERT_TRUE(write_safetensors(dir / "m.safetensors", {{"a", a}}).is_ok());
    Tensor view;
    {
        auto f = SafetensorsFile::open(dir / "m.safetensors").value();
        view = f.view(*f.find("a"));
    }
    EXPECT_EQ(view.data_as<float>()[15], 42.0f);  // the mapping is held by the view
}

TEST(Safetensors, MissingFileIsNotFound) {
    auto f = SafetensorsFile::open("/nonexistent/dir/model.safetensors");
    ASSERT_FALSE(f.has_value());
    EXPECT_EQ(f.status().code(), StatusCode::kNotFound);
    EXPECT_NE(f.status().message().find("/nonexistent/dir/model.safetensors"), std::string::npos);
}

// One malformed file per row: every one must be rejected with DATA_LOSS, naming the file and (where there is one)
// the tensor, with a message that says what is wrong.
struct Malformed {
    const char* what;
    std::string bytes;
    const char* expected_fragment;
};

std::vector<Malformed> malformed_cases() {
    const std::string ok_entry = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
    const std::string data8(8, '\x01');
    return {
        {"shorter than the length prefix", std::string("\x05\x00\x00", 3), "too short"},
        {"header length beyond the cap", safetensors_bytes("{}", "", 200'000'000), "exceeds the limit"},
        {"header length past the end", safetensors_bytes("{" + ok_entry + "}", data8, 4096), "runs past the end"},
        {"header not starting with {", safetensors_bytes(" [1,2]  ", ""), "does not start with"},
        {"invalid JSON", safetensors_bytes("{\"a\":{\"dtype\":}", ""), "not valid JSON"},
        {"empty header", safetensors_bytes("", ""), "does not start with"},
        {"entry not an object", safetensors_bytes(R"({"a":[1,2]})", ""), "tensor 'a': entry is not an object"},
        {"missing dtype", safetensors_bytes(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", data8), "'dtype'"},
        {"unknown dtype", safetensors_bytes(R"({"a":{"dtype":"F128","shape":[2],"data_offsets":[0,8]}})", data8), "unknown dtype 'F128'"},
        {"missing shape", safetensors_bytes(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", data8), "'shape'"},
        {"negative dimension", safetensors_bytes(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data8), "not a non-negative integer"},
        {"fractional dimension", safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", data8), "not a non-negative integer"},
        {"shape overflow", safetensors_bytes(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", data8), "too large"},
        {"too many dims", safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}})", std::string(4, 'x')), "at most 8"},
        {"missing offsets", safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2]}})", data8), "data_offsets"},
        {"offsets reversed", safetensors_bytes(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", data8), "end before begin"},
        {"bytes do not match shape", safetensors_bytes(R"({"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,8]}})", data8), "needs 4 bytes"},
        {"range past the data (truncated file)", safetensors_bytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", data8), "run past the data section"},
        {"overlapping tensors", safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", data8), "overlap"},
        {"gap between tensors", safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}})", data8), "belong to no tensor"},
        {"trailing bytes", safetensors_bytes("{" + ok_entry + "}", data8 + "xxxx"), "cover 8"},
        {"duplicate tensor name", safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", data8), "names 'a' twice"},
        {"metadata not strings", safetensors_bytes(R"({"__metadata__":{"n":3},)" + ok_entry + "}", data8), "__metadata__"},
    };
}

TEST(Safetensors, MalformedFilesGiveOneClearError) {
    auto cases = malformed_cases();
    ASSERT_GE(cases.size(), 15u);
    for (const auto& c : cases) {
        auto h = parse(c.bytes);
        ASSERT_FALSE(h.has_value()) << c.what;
        EXPECT_EQ(h.status().code(), StatusCode::kDataLoss) << c.what;
        const std::string msg = h.status().message();
        EXPECT_NE(msg.find("m.safetensors"), std::string::npos) << c.what << ": " << msg;
        EXPECT_NE(msg.find(c.expected_fragment), std::string::npos) << c.what << ": " << msg;
        EXPECT_EQ(msg.find('\n'), std::string::npos) << c.what << ": one line";
    }
}

TEST(Safetensors, TruncatedRealFileIsRejected) {
    test::TempDir dir;
    Tensor a = Tensor::zeros({64}, DType::kF32).value();
    ASSERT_TRUE(write_safetensors(dir / "m.safetensors", {{"w", a}}).is_ok());
    std::ifstream in(dir / "m.safetensors", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (size_t cut : {size_t(0), size_t(4), size_t(20), bytes.size() - 1}) {
        test::write_file(dir / "cut.safetensors", bytes.substr(0, cut));
        auto f = SafetensorsFile::open(dir / "cut.safetensors");
        ASSERT_FALSE(f.has_value()) << cut;
        EXPECT_EQ(f.status().code(), StatusCode::kDataLoss) << cut;
    }
}

TEST(Safetensors, EmptyHeaderObjectIsAValidEmptyFile) {
    auto h = parse(safetensors_bytes("{}      ", ""));  // padded with spaces, as writers do
    ASSERT_TRUE(h.has_value()) << h.status().to_string();
    EXPECT_TRUE(h->tensors.empty());
}

}  // namespace
}  // namespace volt
