// Images in conversations (ChatSession on tests/data/tiny-vl-chat, the tiny VL model with a chat tokenizer): a reply
// about an image computes exactly what the verified path computes (template text -> ids -> image tokens expanded ->
// token embeddings with the packed features spliced in -> the backbone from embeddings, greedy decode), later turns
// reuse what the model ran (images included), forks and truncation branch the conversation without recomputing it,
// and bad input (text-only model, corrupt file, budget, the placeholder typed as text) gets a clear error.
#include <atomic>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "kernels/sampling.h"
#include "sdk/engine/chat_session.h"
#include "vision/image_decode.h"
#include "vision/image_prompt.h"

namespace volt {
namespace {

const std::filesystem::path kData = VOLT_TEST_DATA_DIR;
const std::filesystem::path kModel = kData / "tiny-vl-chat";
const std::filesystem::path kPhoto = kData / "vision" / "images" / "photo_640x480.jpg";
const std::filesystem::path kTall = kData / "vision" / "images" / "tall_70x1300.png";

const ChatModel& model() {
    static const std::unique_ptr<ChatModel> m = [] {
        auto loaded = ChatModel::load(kModel);
        EXPECT_TRUE(loaded) << loaded.status().to_string();
        return loaded ? std::move(loaded).value() : nullptr;
    }();
    return *m;
}

GenerationOptions greedy(int64_t n) {
    GenerationOptions g;
    g.max_new_tokens = n;
    g.sampling.temperature = 0;
    return g;
}

// The reference computation, spelled out: what a reply to `text` (a user message with `images` before it) must be.
std::vector<int32_t> expected_reply(const std::vector<std::filesystem::path>& images, const std::string& text,
                                    int64_t max_new) {
    const ChatModel& m = model();
    std::string rendered = "<beginning_of_sentence>user name=user\n";
    for (size_t i = 0; i < images.size(); ++i) rendered += "<image>";
    rendered += text + "<end_of_sentence>\n<beginning_of_sentence>ai name=assistant\n";
    auto ids = m.tokenizer->encode(rendered, false);
    EXPECT_TRUE(ids);
    std::vector<Tensor> features;
    std::vector<int64_t> counts;
    for (const auto& path : images) {
        auto e = m.vision->encode_file(path);
        EXPECT_TRUE(e) << e.status().to_string();
        counts.push_back(e->features.dim(0));
        features.push_back(e->features);
    }
    auto prompt = vision::expand_image_tokens(*ids, m.image_token_id, counts);
    EXPECT_TRUE(prompt) << prompt.status().to_string();
    auto embeds = m.lm->embed(prompt->ids);
    EXPECT_TRUE(embeds);
    EXPECT_TRUE(vision::splice_image_features(*embeds, *prompt, features).is_ok());
    auto session = Session::create(*m.lm);
    EXPECT_TRUE(session);
    auto logits = session->append_embeddings(*embeds, prompt->ids, LogitsMode::kLast);
    EXPECT_TRUE(logits) << logits.status().to_string();
    std::vector<int32_t> out;
    for (int64_t step = 0; step < max_new; ++step) {
        const float* row = logits->data_as<float>();
        const int32_t id =
            static_cast<int32_t>(std::max_element(row, row + logits->dim(1)) - row);
        out.push_back(id);
        if (id == m.stop_ids.front()) break;
        const int32_t one[1] = {id};
        logits = session->append(one, LogitsMode::kLast);
        EXPECT_TRUE(logits);
    }
    return out;
}

TEST(VLChat, LoadsTheImagePath) {
    const ChatModel& m = model();
    ASSERT_NE(m.vision, nullptr);
    EXPECT_EQ(m.image_token_id, 4);
    EXPECT_EQ(m.tokenizer->token_to_id("<image>"), 4);
}

TEST(VLChat, ReplyAboutOneImageIsTheSplicedEmbeddingsComputation) {
    auto chat = ChatSession::create(model());
    ASSERT_TRUE(chat) << chat.status().to_string();
    auto tokens = chat->attach_image(kPhoto);
    ASSERT_TRUE(tokens) << tokens.status().to_string();
    auto img = vision::decode_image_file(kPhoto);
    ASSERT_TRUE(img);
    EXPECT_EQ(*tokens, *model().vision->count_tokens(img->width, img->height));
    ASSERT_TRUE(chat->add_message(Role::kUser, "What is shown?").is_ok());
    auto count = chat->count_prompt_tokens();
    ASSERT_TRUE(count);
    auto plain = model().tokenizer->encode(
        "<beginning_of_sentence>user name=user\nWhat is shown?<end_of_sentence>\n<beginning_of_sentence>ai name=assistant\n");
    EXPECT_EQ(*count, static_cast<int64_t>(plain->size()) + *tokens);  // the placeholder becomes the image's tokens

    auto reply = chat->reply(greedy(12));
    ASSERT_TRUE(reply) << reply.status().to_string();
    EXPECT_EQ(reply->generation.result.ids, expected_reply({kPhoto}, "What is shown?", 12));
    EXPECT_EQ(reply->generation.result.prompt_tokens, *count);
    EXPECT_EQ(reply->generation.result.reused_tokens, 0);
}

TEST(VLChat, TwoImagesInOneMessageGoInOrder) {
    auto chat = ChatSession::create(model());
    ASSERT_TRUE(chat);
    ASSERT_TRUE(chat->attach_image(kTall));
    ASSERT_TRUE(chat->attach_image(kPhoto));
    ASSERT_TRUE(chat->add_message(Role::kUser, "Compare them.").is_ok());
    auto reply = chat->reply(greedy(8));
    ASSERT_TRUE(reply) << reply.status().to_string();
    EXPECT_EQ(reply->generation.result.ids, expected_reply({kTall, kPhoto}, "Compare them.", 8));
}

TEST(VLChat, LaterTurnsReuseTheImageAndMatchARecompute) {
    auto chat = ChatSession::create(model());
    ASSERT_TRUE(chat);
    ASSERT_TRUE(chat->attach_image(kPhoto));
    ASSERT_TRUE(chat->add_message(Role::kUser, "Describe it.").is_ok());
    auto first = chat->reply(greedy(6));
    ASSERT_TRUE(first);
    const int64_t held = static_cast<int64_t>(chat->session().tokens().size());
    ASSERT_TRUE(chat->add_message(Role::kUser, "And the colours?").is_ok());
    auto full = chat->fork();
    ASSERT_TRUE(full);
    full->session().reset();  // this branch recomputes everything, the image included
    auto second = chat->reply(greedy(6));
    ASSERT_TRUE(second) << second.status().to_string();
    EXPECT_EQ(second->generation.result.reused_tokens, held);  // the image ran once
    auto recomputed = full->reply(greedy(6));
    ASSERT_TRUE(recomputed) << recomputed.status().to_string();
    EXPECT_EQ(recomputed->generation.result.reused_tokens, 0);
    EXPECT_EQ(recomputed->generation.result.prompt_tokens, second->generation.result.prompt_tokens);
    EXPECT_EQ(recomputed->generation.result.ids, second->generation.result.ids);
}

TEST(VLChat, ForkAndTruncateRegenerateWithoutRecomputing) {
    auto chat = ChatSession::create(model());
    ASSERT_TRUE(chat);
    ASSERT_TRUE(chat->attach_image(kPhoto));
    ASSERT_TRUE(chat->add_message(Role::kUser, "Describe it.").is_ok());
    auto branch = chat->fork();  // before the reply: the restore point of a regenerate
    ASSERT_TRUE(branch) << branch.status().to_string();
    auto first = chat->reply(greedy(6));
    ASSERT_TRUE(first);
    auto regen = branch->reply(greedy(6));
    ASSERT_TRUE(regen);
    EXPECT_EQ(regen->generation.result.ids, first->generation.result.ids);

    // Fork after a turn: the branch continues from the cache (the whole first turn is reused).
    ASSERT_TRUE(chat->add_message(Role::kUser, "More.").is_ok());
    auto before_second = chat->fork();
    ASSERT_TRUE(before_second);
    const int64_t held = static_cast<int64_t>(chat->session().tokens().size());
    auto second = before_second->reply(greedy(4));
    ASSERT_TRUE(second);
    EXPECT_EQ(second->generation.result.reused_tokens, held);
    EXPECT_EQ(chat->num_messages(), 3u);  // the original did not change
    EXPECT_EQ(before_second->num_messages(), 4u);

    // Edit the last user message: truncate to before it and send another; the reply is a fresh run's.
    ASSERT_TRUE(before_second->truncate_messages(2).is_ok());
    ASSERT_TRUE(before_second->add_message(Role::kUser, "Less.").is_ok());
    auto edited = before_second->reply(greedy(4));
    ASSERT_TRUE(edited) << edited.status().to_string();
    EXPECT_FALSE(before_second->truncate_messages(99).is_ok());
}

TEST(VLChat, TruncatingAwayAnImageDoesNotReuseItsFeatures) {
    auto chat = ChatSession::create(model());
    ASSERT_TRUE(chat);
    ASSERT_TRUE(chat->attach_image(kPhoto));
    ASSERT_TRUE(chat->add_message(Role::kUser, "Q").is_ok());
    ASSERT_TRUE(chat->reply(greedy(3)));
    // Same text, another image: the rendered text is identical up to the reply, the pixels are not.
    ASSERT_TRUE(chat->truncate_messages(0).is_ok());
    ASSERT_TRUE(chat->attach_image(kTall));
    ASSERT_TRUE(chat->add_message(Role::kUser, "Q").is_ok());
    auto reply = chat->reply(greedy(5));
    ASSERT_TRUE(reply) << reply.status().to_string();
    EXPECT_EQ(reply->generation.result.reused_tokens, 0);
    EXPECT_EQ(reply->generation.result.ids, expected_reply({kTall}, "Q", 5));
}

TEST(VLChat, BadInputIsRefusedClearly) {
    auto chat = ChatSession::create(model());
    ASSERT_TRUE(chat);
    // A corrupt file names itself.
    const auto bad = std::filesystem::temp_directory_path() / "volt_vl_chat_corrupt.png";
    { std::ofstream(bad, std::ios::binary) << "\x89PNG\r\n\x1a\n garbage"; }
    auto r = chat->attach_image(bad);
    ASSERT_FALSE(r);
    EXPECT_NE(r.status().message().find("volt_vl_chat_corrupt.png"), std::string::npos) << r.status().to_string();
    std::filesystem::remove(bad);
    // The placeholder typed as text would stand for an image that is not there.
    auto st = chat->add_message(Role::kUser, "look: <image>");
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    // Images go with a user message.
    ASSERT_TRUE(chat->attach_image(kPhoto));
    EXPECT_EQ(chat->add_message(Role::kSystem, "hi").code(), StatusCode::kInvalidArgument);
    // A per-image budget refuses (never downscales) a larger image and names the cost.
    auto tight = ChatSession::create(model(), ChatSessionOptions{.max_tokens_per_image = 600});
    ASSERT_TRUE(tight);
    auto over = tight->attach_image(kPhoto);
    ASSERT_FALSE(over);
    EXPECT_EQ(over.status().code(), StatusCode::kResourceExhausted);
    EXPECT_NE(over.status().message().find("budget of 600"), std::string::npos) << over.status().to_string();
    // An image larger than the session's context is refused at attach time.
    auto small = ChatSession::create(model(), SessionOptions{.max_context = 1000});
    ASSERT_TRUE(small);
    auto big = small->attach_image(kPhoto);
    EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted);
    // A bad RGB buffer.
    vision::Image wrong;
    wrong.width = 4;
    wrong.height = 4;
    wrong.pixels.resize(10);
    EXPECT_EQ(chat->attach_image(std::move(wrong), "buffer").status().code(), StatusCode::kInvalidArgument);
}

TEST(VLChat, CancelStopsImageEncodingAndTheSessionStaysUsable) {
    // The encoder asks between ViT layers.
    vision::ImageEncodeOptions stop_now;
    stop_now.cancelled = [] { return true; };
    auto img = vision::decode_image_file(kPhoto);
    ASSERT_TRUE(img);
    auto encoded = model().vision->encode(*img, stop_now);
    ASSERT_FALSE(encoded);
    EXPECT_EQ(encoded.status().code(), StatusCode::kCancelled);

    // A reply cancelled from another thread (while the image is encoded or while tokens stream, whichever the
    // cancel lands in) ends as cancelled; the next reply in the same session is the uncancelled computation.
    auto chat = ChatSession::create(model());
    ASSERT_TRUE(chat);
    ASSERT_TRUE(chat->attach_image(kPhoto));
    ASSERT_TRUE(chat->add_message(Role::kUser, "What is shown?").is_ok());
    std::atomic<bool> done{false};
    std::thread canceller([&] {
        while (!done.load()) chat->cancel();
    });
    auto reply = chat->reply(greedy(200));
    done = true;
    canceller.join();
    if (reply) {
        EXPECT_EQ(reply->generation.result.reason, StopReason::kCancelled);
        ASSERT_TRUE(chat->truncate_messages(1).is_ok());  // drop the partial answer
    } else {
        EXPECT_EQ(reply.status().code(), StatusCode::kCancelled) << reply.status().to_string();
        EXPECT_EQ(chat->num_messages(), 1u);
    }
    auto again = chat->reply(greedy(6));
    ASSERT_TRUE(again) << again.status().to_string();
    EXPECT_EQ(again->generation.result.ids, expected_reply({kPhoto}, "What is shown?", 6));
}

TEST(VLChat, TextOnlyModelsRefuseImages) {
    auto text_model = ChatModel::load(kData / "tiny-chat");
    ASSERT_TRUE(text_model);
    auto chat = ChatSession::create(**text_model);
    ASSERT_TRUE(chat);
    auto r = chat->attach_image(kPhoto);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("text-only"), std::string::npos);
}

}  // namespace
}  // namespace volt
