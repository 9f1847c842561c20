#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "sdk/env.h"
#include "sdk/log.h"
#include "sdk/status.h"

namespace volt {
namespace {

Expected<int> parse_positive(int v) {
    if (v <= 0) return invalid_argument("value ", v, " is not positive");
    return v;
}

Status chain(int v) {
    VOLT_ASSIGN_OR_RETURN(int x, parse_positive(v));
    if (x > 100) return resource_exhausted("too big");
    return Status::ok();
}

TEST(Status, OkAndErrors) {
    EXPECT_TRUE(Status::ok().is_ok());
    Status s = data_loss("file.bin: tensor 'x': truncated");
    EXPECT_FALSE(s.is_ok());
    EXPECT_EQ(s.code(), StatusCode::kDataLoss);
    EXPECT_EQ(s.to_string(), "DATA_LOSS: file.bin: tensor 'x': truncated");
    EXPECT_EQ(s.with_context("loading").message(), "loading: file.bin: tensor 'x': truncated");
    EXPECT_EQ(s.with_context("loading").code(), StatusCode::kDataLoss);
}

TEST(Status, ExpectedPropagates) {
    EXPECT_TRUE(chain(5).is_ok());
    EXPECT_EQ(chain(-1).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(chain(-1).message(), "value -1 is not positive");
    EXPECT_EQ(chain(500).code(), StatusCode::kResourceExhausted);
    Expected<int> e = parse_positive(3);
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(*e, 3);
    EXPECT_TRUE(e.status().is_ok());
}

TEST(Status, ExpectedFromOkStatusIsInternalError) {
    Expected<int> e = Status::ok();  // a bug in the caller must not look like success
    EXPECT_FALSE(e.has_value());
    EXPECT_EQ(e.status().code(), StatusCode::kInternal);
}

TEST(Status, CodeNames) {
    EXPECT_EQ(status_code_name(StatusCode::kResourceExhausted), "RESOURCE_EXHAUSTED");
    EXPECT_EQ(status_code_name(StatusCode::kUnimplemented), "UNIMPLEMENTED");
    EXPECT_EQ(status_code_name(StatusCode::kCancelled), "CANCELLED");
}

TEST(Log, SinkReceivesMessagesAtOrAboveThreshold) {
    std::vector<std::string> got;
    set_log_sink([&](LogLevel l, LogCategory c, std::string_view m) {
        got.push_back(std::string(log_level_name(l)) + "/" + std::string(log_category_name(c)) + "/" + std::string(m));
    });
    set_log_level(LogLevel::kInfo);
    VOLT_LOG(kDebug, kLoad, "hidden");
    VOLT_LOG(kInfo, kLoad, "shard ", 3, " of ", 7);
    VOLT_LOG(kError, kNccl, "boom");
    set_log_level(LogLevel::kOff);
    VOLT_LOG(kError, kNccl, "silenced");
    set_log_sink(nullptr);
    set_log_level(LogLevel::kWarn);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0], "info/load/shard 3 of 7");
    EXPECT_EQ(got[1], "error/nccl/boom");
}

// A/B switches in the environment (sdk/env.h): a known value maps, unset and empty give the fallback, and a misspelt
// one gives the fallback with a warning that names the variable, the value and the accepted values.
TEST(Env, ChoiceMapsKnownValuesAndWarnsAboutUnknownOnes) {
    enum class Pick { kA, kB, kDefault };
    const char* var = "VOLT_TEST_ENV_CHOICE";
    std::vector<std::string> warnings;
    set_log_sink([&](LogLevel l, LogCategory, std::string_view m) {
        if (l == LogLevel::kWarn) warnings.emplace_back(m);
    });
    const auto pick = [&] { return env_choice(var, {{"a", Pick::kA}, {"b", Pick::kB}}, Pick::kDefault); };
    ::unsetenv(var);
    EXPECT_EQ(pick(), Pick::kDefault);
    ::setenv(var, "", 1);
    EXPECT_EQ(pick(), Pick::kDefault);
    ::setenv(var, "b", 1);
    EXPECT_EQ(pick(), Pick::kB);
    EXPECT_EQ(env_choice_index(var, {"a", "b"}), 1);
    EXPECT_TRUE(warnings.empty());
    ::setenv(var, "bb", 1);
    EXPECT_EQ(pick(), Pick::kDefault);
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_NE(warnings[0].find("VOLT_TEST_ENV_CHOICE='bb' is not one of a, b"), std::string::npos) << warnings[0];
    ::unsetenv(var);
    set_log_sink(nullptr);
}

}  // namespace
}  // namespace volt
