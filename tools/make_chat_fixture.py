#!/usr/bin/env python3
"""tests/data/tiny-chat: a complete (random-weight) model directory for chat-level tests of the C ABI and CLI.

Unlike tiny-text it has everything a user's model directory has: a MiniMax-Text-01 checkpoint (original layout,
made by make_text_fixture.py's functions), a byte-level BPE tokenizer.json trained here with HF `tokenizers` on the
demo data's text and carrying the MiniMax special tokens, and tokenizer_config.json with MiniMax-VL-01's chat
template and eos_token. The vocabulary (512) is the model's, so every token id is valid.

References (reference/chat.json), all from Hugging Face code:
  - the conversation rendered by transformers' apply_chat_template (text) and its ids from the HF tokenizer;
  - the greedy reply: argmax chain of full forwards of the patched transformers model (make_text_fixture.py's
    reference), until <end_of_sentence> or 12 tokens, with the minimal top-2 logit gap recorded (near-ties rejected);
  - the reply's text decoded by the HF tokenizer with special tokens skipped (what a streamed answer must add up to);
  - a second turn (the reply appended as an assistant message plus a new user message) rendered the same way.

Run from the repository root: python3 tools/make_chat_fixture.py   (CPU, a few seconds)
"""
from __future__ import annotations

import json
import os
import shutil
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "train_demo"))
import make_text_fixture as mtf  # noqa: E402
from documents import make_document  # noqa: E402
from maps import make_map  # noqa: E402

OUT = os.path.join(HERE, "..", "tests", "data", "tiny-chat")
SPECIALS = ["<end_of_document>", "<begin_of_document>", "<beginning_of_sentence>", "<end_of_sentence>", "<image>"]
VOCAB = 512

FIXTURE = dict(
    name="tiny-chat",
    vocab_size=VOCAB, hidden_size=64, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
    head_dim=16, rotary_dim=8, intermediate_size=96, num_local_experts=4, num_experts_per_tok=2,
    attn_type_list=[0, 0, 0, 1], rope_theta=10000000.0,
    alphas=dict(full=3.5565588200778455, linear=3.5565588200778455, mlp=3.5565588200778455),
    betas=dict(full=1.0, linear=1.0, mlp=1.0),
    prompts=[], greedy=None, shards=1, seed=2024,
)

CONVERSATION = [
    {"role": "system", "content": [{"type": "text", "text": "You answer questions about maps."}]},
    {"role": "user", "content": [{"type": "text", "text": "Which city is north of the river?"}]},
]
SECOND_USER = {"role": "user", "content": [{"type": "text", "text": "How many bridges are there?"}]}


def corpus() -> list[str]:
    lines = []
    for seed in range(300):
        d = make_document(seed)
        lines.append(d.text)
        lines += [q + " " + a for q, a in d.qa]
    for seed in range(60):
        lines += [q + " " + a for q, a in make_map(seed).qa]
    lines += ["You answer questions about maps.", "system ai_setting=assistant", "user name=user", "ai name=assistant"]
    return lines


def train_tokenizer(path: str) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus(), trainer)
    assert tok.get_vocab_size() <= VOCAB, tok.get_vocab_size()
    tok.save(path)


def main() -> int:
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    os.makedirs(os.path.join(OUT, "reference"))
    train_tokenizer(os.path.join(OUT, "tokenizer.json"))
    with open(os.path.join(HERE, "..", "tests", "data", "tokenizer", "chat_templates.json")) as f:
        template = json.load(f)["templates"]["minimax_vl01"]
    tok_config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<beginning_of_sentence>",
                  "eos_token": "<end_of_sentence>", "unk_token": "<end_of_document>", "chat_template": template,
                  "model_max_length": 4096}
    with open(os.path.join(OUT, "tokenizer_config.json"), "w") as f:
        json.dump(tok_config, f, indent=1)

    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(OUT)
    eos = hf.convert_tokens_to_ids("<end_of_sentence>")

    config = mtf.original_config(FIXTURE)
    config["eos_token_id"] = eos
    config["max_position_embeddings"] = 4096
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    mtf.patch_transformers()
    mtf.write_checkpoint(OUT, mtf.make_weights(FIXTURE), FIXTURE["shards"])
    model = mtf.native_model(FIXTURE, mtf.read_checkpoint(OUT))

    def render(messages):
        text = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return text, hf(text, add_special_tokens=False)["input_ids"]

    text, ids = render(CONVERSATION)
    seq, reply, min_gap = list(ids), [], float("inf")
    for _ in range(12):
        last = mtf.native_logits(model, seq)[-1:]
        min_gap = min(min_gap, mtf.logit_gap(last))
        nxt = int(last.argmax())
        reply.append(nxt)
        seq.append(nxt)
        if nxt == eos:
            break
    if min_gap < mtf.LOGIT_GAP_MIN:
        sys.exit(f"tiny-chat: the greedy reply has a near-tie ({min_gap:.2e}); change the seed")
    reply_text = hf.decode(reply, skip_special_tokens=True)
    turn2 = CONVERSATION + [{"role": "assistant", "content": [{"type": "text", "text": reply_text}]}, SECOND_USER]
    text2, ids2 = render(turn2)
    ref = {"messages": CONVERSATION, "prompt_text": text, "prompt_ids": ids, "greedy_reply_ids": reply,
           "greedy_reply_text": reply_text, "min_top2_logit_gap": min_gap, "eos_token_id": eos,
           "second_turn_messages": turn2, "second_turn_text": text2, "second_turn_ids": ids2,
           "reference": f"transformers apply_chat_template + tokenizers; patched MiniMaxForCausalLM fp32 full "
                        f"forwards (torch {torch.__version__})"}
    with open(os.path.join(OUT, "reference", "chat.json"), "w") as f:
        json.dump(ref, f, indent=1, ensure_ascii=False)
    print(f"tiny-chat: prompt {len(ids)} tokens, reply {reply} = {reply_text!r}, min gap {min_gap:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
