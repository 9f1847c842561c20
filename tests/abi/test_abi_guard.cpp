// The firewall every volt_ function runs in: no C++ exception may cross the C boundary, and messages belong to the
// last call on the thread.
#include <gtest/gtest.h>

#include <cstddef>
#include <stdexcept>
#include <thread>

#include "bindings/c/abi_guard.h"

namespace volt::capi {
namespace {

TEST(AbiGuard, ExceptionsBecomeStatuses) {
    EXPECT_EQ(guarded("f", []() -> volt_status { throw std::runtime_error("boom"); }), VOLT_INTERNAL);
    EXPECT_EQ(last_error(), "f: internal error: boom");
    EXPECT_EQ(guarded("g", []() -> volt_status { throw std::bad_alloc(); }), VOLT_RESOURCE_EXHAUSTED);
    EXPECT_EQ(last_error(), "g: out of memory");
    EXPECT_EQ(guarded("h", []() -> volt_status { throw 42; }), VOLT_INTERNAL);
    EXPECT_EQ(last_error(), "h: internal error");
    static_assert(noexcept(guarded("x", [] { return VOLT_OK; })));
}

TEST(AbiGuard, MessagesAreThreadLocalAndClearedBySuccess) {
    EXPECT_EQ(guarded("f", [] { return fail(VOLT_DATA_LOSS, "bad file"); }),
              VOLT_DATA_LOSS);
    std::string other;
    std::thread([&] { other = last_error(); }).join();
    EXPECT_EQ(other, "");  // another thread sees its own (empty) message
    EXPECT_EQ(last_error(), "bad file");
    EXPECT_EQ(guarded("f", [] { return VOLT_OK; }), VOLT_OK);
    EXPECT_EQ(last_error(), "");
}

struct Params {
    uint32_t struct_size;
    int32_t a;
    int32_t b;  // appended in a later version
};
void init_params(Params* p) { *p = {sizeof(Params), 1, 2}; }

TEST(AbiGuard, ParamsAreReadUpToTheCallersSize) {
    Params out{};
    volt_status err = VOLT_OK;
    struct OldParams {
        uint32_t struct_size;
        int32_t a;
    } old{sizeof(OldParams), 7};
    ASSERT_TRUE(read_params(reinterpret_cast<const Params*>(&old), &out, init_params, "f", &err));
    EXPECT_EQ(out.a, 7);
    EXPECT_EQ(out.b, 2);  // default for the field the old caller does not know
    EXPECT_EQ(out.struct_size, sizeof(Params));
    ASSERT_TRUE(read_params<Params>(nullptr, &out, init_params, "f", &err));
    EXPECT_EQ(out.a, 1);
    Params bad{0, 5, 5};
    EXPECT_FALSE(read_params(&bad, &out, init_params, "volt_x", &err));
    EXPECT_EQ(err, VOLT_INVALID_ARGUMENT);
    EXPECT_NE(last_error().find("volt_x: params.struct_size 0"), std::string::npos);
}

TEST(AbiGuard, OutputsAreWrittenUpToTheCallersSize) {
    struct OldOut {
        uint32_t struct_size;
        int32_t a;
        int32_t sentinel;  // where a newer library's `b` would go: the caller's own memory
    } old{offsetof(Params, b), 0, 0x5eed};
    volt_status err = VOLT_OK;
    ASSERT_TRUE(write_output(reinterpret_cast<Params*>(&old), Params{sizeof(Params), 7, 8}, "f: out", "f_init", &err));
    EXPECT_EQ(old.a, 7);
    EXPECT_EQ(old.sentinel, 0x5eed);  // not written
    EXPECT_EQ(old.struct_size, offsetof(Params, b));  // the caller's size stays
    Params full{sizeof(Params), 0, 0};
    ASSERT_TRUE(write_output(&full, Params{123, 7, 8}, "f: out", "f_init", &err));
    EXPECT_EQ(full.b, 8);
    EXPECT_EQ(full.struct_size, sizeof(Params));
    Params unset{0, 0, 0};
    EXPECT_FALSE(write_output(&unset, Params{sizeof(Params), 7, 8}, "volt_y: out", "volt_y_init", &err));
    EXPECT_EQ(err, VOLT_INVALID_ARGUMENT);
    EXPECT_EQ(unset.a, 0);
    EXPECT_NE(last_error().find("volt_y: out.struct_size 0 is not a size (use volt_y_init)"), std::string::npos);
}

}  // namespace
}  // namespace volt::capi
