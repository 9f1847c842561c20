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


def test_second_turn_reuses_the_cache_exactly(model):
    s = start(model)
    s.reply(max_new_tokens=len(REF["greedy_reply_ids"]), temperature=0.0)
    s.add_message(volt.Role.USER, text_of(REF["second_turn_messages"][-1]))
    # The rendered text is transformers' (the reply as an assistant message, then the new user message).
    ran_text = REF["prompt_text"] + model.detokenize(REF["greedy_reply_ids"])
    assert REF["second_turn_text"].startswith(ran_text)
    # The ids keep what the model ran (first prompt + reply ids) and tokenize only the new text, so the recurrent
    # state carries over: re-tokenizing the reply's text would not give the same ids here.
    held = REF["prompt_ids"] + REF["greedy_reply_ids"]
    assert REF["second_turn_ids"][: len(held)] != held
    expected = held + model.tokenize(REF["second_turn_text"][len(ran_text):])
    assert s.count_prompt_tokens() == len(expected)
    events = s.reply(max_new_tokens=2, temperature=0.0)
    done = events[-1]
    assert done.type == "done" and done.prompt_tokens == len(expected)
    assert done.reused_tokens == len(held) - 1  # everything the session ran (the last reply id never runs)
    # The same conversation without the anchor (fresh session, same messages) is rendered like transformers.
    fresh = model.session()
    for m in REF["second_turn_messages"]:
        fresh.add_message({"system": 0, "user": 1, "assistant": 2}[m["role"]], text_of(m))
    assert fresh.count_prompt_tokens() == len(REF["second_turn_ids"])


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
