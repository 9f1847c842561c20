"""Chat sessions through the C ABI on tests/data/tiny-chat (tools/make_chat_fixture.py): the conversation rendered
by the model's chat template must tokenize like transformers' apply_chat_template, the greedy reply must equal the
reference chain, and the streamed text must add up to the HF tokenizer's decode."""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import volt  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
CHAT = os.path.join(REPO, "tests", "data", "tiny-chat")
DOCS = os.path.join(REPO, "tests", "data", "documents")
with open(os.path.join(CHAT, "reference", "chat.json"), encoding="utf-8") as f:
    REF = json.load(f)


def text_of(message):
    return "".join(part["text"] for part in message["content"] if part["type"] == "text")


@pytest.fixture(scope="module")
def model():
    with volt.Model(CHAT) as m:
        yield m


def start(model):
    s = model.session()
    for m in REF["messages"]:
        s.add_message({"system": volt.Role.SYSTEM, "user": volt.Role.USER}[m["role"]], text_of(m))
    return s


def test_template_tokens_match_transformers(model):
    s = start(model)
    assert s.count_prompt_tokens() == len(REF["prompt_ids"])
    assert model.tokenize(REF["prompt_text"]) == REF["prompt_ids"]


def test_greedy_reply_and_streamed_text(model):
    s = start(model)
    events = s.reply(max_new_tokens=len(REF["greedy_reply_ids"]), temperature=0.0)
    ids = [e.token_id for e in events if e.type == "token" and e.token_id >= 0]
    assert ids == REF["greedy_reply_ids"]
    assert "".join(e.text for e in events if e.type == "token") == REF["greedy_reply_text"]
    assert events[-1].type == "done" and events[-1].prompt_tokens == len(REF["prompt_ids"])
    assert s.num_messages == 3  # system, user, and the reply


def test_second_turn_renders_like_transformers_and_reuses_the_cache(model):
    s = start(model)
    s.reply(max_new_tokens=len(REF["greedy_reply_ids"]), temperature=0.0)
    second = REF["second_turn_messages"][-1]
    s.add_message(volt.Role.USER, text_of(second))
    assert s.count_prompt_tokens() == len(REF["second_turn_ids"])
    events = s.reply(max_new_tokens=2, temperature=0.0)
    done = events[-1]
    assert done.type == "done" and done.prompt_tokens == len(REF["second_turn_ids"])
    # A recurrent (lightning) state cannot be rolled back, so the cache is reused exactly when what the session ran
    # (the first prompt and the reply's ids but the last) is a prefix of the re-rendered conversation.
    held = REF["prompt_ids"] + REF["greedy_reply_ids"][:-1]
    expected_reuse = len(held) if REF["second_turn_ids"][: len(held)] == held else 0
    assert done.reused_tokens == expected_reuse


def test_documents_are_attached_to_the_next_user_message(model):
    s = model.session()
    s.add_message(volt.Role.SYSTEM, "You answer questions about documents.")
    before = s.count_prompt_tokens()
    tokens = s.attach_document(os.path.join(DOCS, "notes_crlf.txt"))
    assert tokens > 0 and tokens == len(model.tokenize("Line one\nLigne deux \u00e9t\u00e9\n\u5730\u56fe\u662f\u4ec0\u4e48\n"))
    s.add_message(volt.Role.USER, "What does line one say?")
    assert s.count_prompt_tokens() > before + tokens
    with pytest.raises(volt.VoltError) as err:
        s.attach_document(os.path.join(DOCS, "encrypted.pdf"))
    assert err.value.status == volt.Status.INVALID_ARGUMENT and "encrypted.pdf" in err.value.message
    with pytest.raises(volt.VoltError) as err:
        s.attach_document(os.path.join(DOCS, "nope.pdf"))
    assert err.value.status == volt.Status.NOT_FOUND


def test_bad_chat_input(model):
    s = model.session()
    with pytest.raises(volt.VoltError) as err:
        s.reply(max_new_tokens=1)
    assert err.value.status == volt.Status.INVALID_ARGUMENT  # no messages
    with pytest.raises(volt.VoltError):
        s.add_message(7, "hi")
    s.attach_document(os.path.join(DOCS, "notes_crlf.txt"))
    with pytest.raises(volt.VoltError) as err:
        s.add_message(volt.Role.ASSISTANT, "documents belong to user messages")
    assert "user message" in err.value.message


def test_model_without_chat_template():
    with volt.Model(os.path.join(REPO, "tests", "data", "tiny-text")) as m:
        s = m.session()
        s.add_message(volt.Role.USER, "hello")
        with pytest.raises(volt.VoltError) as err:
            s.reply(max_new_tokens=1)
        assert err.value.status == volt.Status.NOT_FOUND and "tokenizer" in err.value.message
