#!/usr/bin/env python3
"""Reference fixtures for Volt's tokenizer and chat-template engine (tests/data/tokenizer/).

Everything here is produced by the reference implementations, never typed by hand:
  * Hugging Face `tokenizers`: byte-level BPE tokenizers trained on a small multilingual corpus, one with a
    GPT-4o (o200k) style split regex and one with GPT-2's, carrying the MiniMax-01 special tokens; a byte-fallback
    (Llama-style) BPE; a Metaspace/NFKC/Lowercase BPE; a Whitespace/Digits BPE; and variants of them made by editing
    tokenizer.json (merges as strings, Split behaviours, add_prefix_space) so each loader branch is exercised.
  * `sentencepiece`: a unigram and a BPE (byte-fallback) model.
  * transformers' chat-template renderer (jinja2 with HF's environment): the MiniMax-VL-01 template and a
    Text-01-style template, for a set of conversations.

For every tokenizer the fixture records, per test string, the ids without and with special tokens and the
reference decode. Run from the repository root:  python3 tools/make_tokenizer_fixture.py
"""
import copy
import io
import json
import os
import random
import sys

# One training thread: BPE training breaks frequency ties by arrival order, so threads make the fixture vary.
os.environ.setdefault("RAYON_NUM_THREADS", "1")

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "tokenizer")

# GPT-4o / o200k split regex (tiktoken), as used by MiniMax-M2-class tokenizers.
O200K_REGEX = "|".join([
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"\p{N}{1,3}",
    r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
    r"\s*[\r\n]+",
    r"\s+(?!\S)",
    r"\s+",
])

# MiniMax-01 special tokens (minimax01-architecture.md §6); ids here are the trained vocab's, not 2000xx.
MINIMAX_SPECIAL = ["<end_of_document>", "<begin_of_document>", "<beginning_of_sentence>", "<end_of_sentence>",
                   "<image>", "<function_call>", "<pad>"]

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "It's a truth universally acknowledged that we'll need more tests; they're cheap and I've written many.",
    "MiniMax-VL-01 runs a CLIP ViT-L/14-336 encoder, a 2-layer MLP projector and a 456B MoE backbone.",
    "def fibonacci(n: int) -> int:\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)\n",
    "for (int i = 0; i < 1024; ++i) { sum += a[i] * b[i]; }  // dot product",
    "SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name ORDER BY 2 DESC;",
    "In 2024, revenue grew 12.5% to $3,141,592.65 (up from $2.7M in 2023).",
    "我们今天去公园散步，天气非常好。人工智能正在改变世界。",
    "東京は日本の首都です。ひらがなとカタカナと漢字を使います。",
    "한국어 문장도 포함합니다. 안녕하세요, 만나서 반갑습니다!",
    "Привет, мир! Это тестовое предложение на русском языке.",
    "Γειά σου Κόσμε· η γρήγορη καφέ αλεπού πηδά.",
    "مرحبا بالعالم، هذه جملة اختبار باللغة العربية.",
    "שלום עולם, זה משפט בדיקה בעברית.",
    "नमस्ते दुनिया, यह हिंदी में एक परीक्षण वाक्य है।",
    "สวัสดีชาวโลก นี่คือประโยคทดสอบภาษาไทย",
    "Tiếng Việt có nhiều dấu: ắ ằ ẳ ẵ ặ ế ề ể ễ ệ.",
    "Emoji: 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ 🇯🇵 🧑🏿‍💻",
    "Combining marks: e\u0301 a\u0308 n\u0303 o\u0302\u0323 Z\u0351\u0352\u0353",
    "Tabs\tand  double  spaces   and\n\nnewlines\r\nwith CRLF.",
    "URLs like https://example.com/path?q=1&r=two#frag and emails like a.b@c.io",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}",
    "<html><body class=\"main\">Hello &amp; welcome</body></html>",
    "Numbers: 0 7 42 123 4567 89012 3.14159 -2.5e-10 1,000,000",
    "ALL CAPS SENTENCE WITH SHOUTING AND CamelCaseWords and snake_case_words.",
    "Ünïcödé àccênts façade naïve coöperate résumé jalapeño.",
]

WORDS = ("the of and to in is you that it he was for on are as with his they at be this have from or one had by "
         "word but not what all were we when your can said there use an each which she do how their if will up "
         "model token embedding attention expert router lightning softmax vision image prompt").split()


def training_corpus(seed=1234, lines=6000):
    rng = random.Random(seed)
    out = []
    for i in range(lines):
        kind = i % 4
        if kind == 0:
            out.append(rng.choice(SENTENCES))
        elif kind == 1:
            out.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 15))) + rng.choice([".", "!", "?", ","]))
        elif kind == 2:
            s = rng.choice(SENTENCES)
            a = rng.randint(0, len(s))
            out.append(s[a:] + " " + s[:a])
        else:
            out.append(" ".join(str(rng.randint(0, 10 ** rng.randint(1, 6))) for _ in range(rng.randint(1, 6))))
    return out


def test_strings():
    """>= 300 strings across the categories the issue lists; deterministic."""
    base = [
        "", " ", "  ", "\t", "\n", "\r\n", "\n\n\n", " \n ", "a", "A", "0", "00", "000", "0000", "12345678901234567890",
        "hello", "Hello world", " Hello world", "Hello  world", "Hello   world  ", "hello\tworld", "hello\r\nworld\r\n",
        "I'm", "I'M", "you're we'll they've she'd it's", "DON'T WON'T", "'s 't 're", "x'sy",
        "   leading spaces", "trailing spaces   ", "\t\ttabs\tinside\t", " \t \n mixed \r\n\t whitespace ",
        "line1\nline2\n\nline4", "crlf\r\n\r\nblank\r\n", "\r", "a\rb", "\u000b\u000c", "\u0085nel", "nbsp\u00a0here",
        "ideographic\u3000space", "thin\u2009space", "zero\u200bwidth", "em\u2003space",
        "ctrl\u0001\u0002\u0003\u001f\u007f", "bell\u0007 and escape\u001b[0m", "null\u0000byte",
        "你好", "你好世界", "中文，标点。", "汉字漢字", "日本語のテキスト", "カタカナ", "ｆｕｌｌｗｉｄｔｈ　ＡＢＣ１２３",
        "한국어", "한글 자모 ㄱㄴㄷ", "混合English和中文text", "数字123和文字", "𠀀𠀁𪚥 rare CJK extension B",
        "😀", "👍", "👍🏻👍🏼👍🏽👍🏾👍🏿", "👨‍👩‍👧‍👦", "👩‍💻", "🧑🏽‍🚀", "🏳️‍🌈", "🏴‍☠️", "🇺🇸🇫🇷🇨🇳", "❤️‍🔥",
        "1️⃣ 2️⃣ #️⃣", "emoji😀inside😀words", "😀 😀  😀", "🫠🫡🫥",
        "مرحبا", "العربية مع أرقام ١٢٣ و 456", "שלום", "עברית עם ניקוד: שָׁלוֹם", "mixed עברית and English",
        "ltr\u200frtl\u200emark", "\u202eoverride\u202c", "فارسی: سلام دنیا", "اردو: ہیلو",
        "e\u0301", "\u00e9", "e\u0301\u0301\u0301", "a\u0300\u0301\u0302\u0303\u0304", "Z\u0351\u0352\u0353\u0354a",
        "\u0915\u094d\u0937", "नमस्ते", "ก่ข้", "\u1100\u1161\u11a8", "Å", "A\u030a", "\u212b", "ﬁ ligature", "①②③",
        "x²", "½ ¼", "™ ® ©", "Ω ≈ ç √ ∫", "ß", "ẞ", "İstanbul", "ǅ ǈ ǋ", "Σίσυφος ΣΑΣ",
        "def f(x):\n    return x * 2\n", "if (a && b || !c) { return; }", "x += 1; y -= 2; z *= 3;",
        "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); }", "a->b->c", "a::b::c", "[1, 2, 3]",
        "{'a': 1}", "lambda x: x**2", "    indented\n        more\n", "\t\tdef g():\n\t\t\tpass",
        "// comment\n/* block */", "<|endoftext|>", "<s></s>", "[CLS] [SEP]", "@@ -1,3 +1,4 @@", "$ ls -la | grep .py",
        "path/to/file.txt", "C:\\Windows\\System32", "https://example.com/a/b?c=d&e=f", "user@example.com",
        "3.14159", "-42", "+1 (555) 123-4567", "1,234,567.89", "1e-10", "0x1F 0b1010 0o777", "2024-11-22T10:15:51Z",
        "v1.2.3-rc.4", "100%", "$5.00", "€12,50", "¥1000", "١٢٣٤٥", "०१२३", "一二三",
        "<beginning_of_sentence>", "<end_of_sentence>", "<image>", "<beginning_of_sentence>user name=user\nHi<end_of_sentence>\n",
        "text<image>text", "<image><image><image>", "a <image> b", "<image>\nDescribe this image.",
        "<begin_of_document><beginning_of_sentence>system ai_setting=assistant\nYou are helpful.<end_of_sentence>\n",
        "<end_of_document>", "<beginning_of_sentence", "<image", "image>", "<<image>>", "<IMAGE>", "< image >",
        "<think>reasoning</think>", "a<think>b", " [MASK] ", "x [MASK]y", "[MASK][MASK]", "hello_world", "hello_worlds",
        "say hello_world now", "ÅNGSTRÖM", "ångström ÅNGSTRÖM",
        "a" * 300, "ab" * 400, "x" * 1000, "Supercalifragilisticexpialidocious" * 10, "🙂" * 200,
        "中" * 500, "1" * 100, " " * 100, "\n" * 50, "\t" * 30, "-" * 80, "=" * 120, "é" * 150,
        "pneumonoultramicroscopicsilicovolcanoconiosis", "Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch",
    ]
    out = list(base)
    out += SENTENCES
    rng = random.Random(99)
    pool = [s for s in base if 0 < len(s) < 40] + SENTENCES
    # Concatenations: boundaries between categories are where pre-tokenizers differ most.
    while len(out) < 330:
        k = rng.randint(2, 4)
        sep = rng.choice(["", " ", "\n", "\t", "  ", "\r\n"])
        out.append(sep.join(rng.choice(pool) for _ in range(k)))
    # Random code points from many blocks (valid scalar values, no surrogates or noncharacters).
    ranges = [(0x20, 0x7e), (0xa0, 0x24f), (0x370, 0x3ff), (0x400, 0x4ff), (0x590, 0x6ff), (0x900, 0x97f),
              (0xe00, 0xe7f), (0x3040, 0x30ff), (0x4e00, 0x4fff), (0xac00, 0xad00), (0x1f300, 0x1f64f),
              (0x2000, 0x206f), (0x300, 0x36f)]
    for _ in range(40):
        s = "".join(chr(rng.randint(*rng.choice(ranges))) for _ in range(rng.randint(1, 30)))
        out.append(s)
    return out


def train_bpe(normalizer, pre_tokenizer, decoder, vocab_size, special, model_kwargs=None, alphabet=None, corpus=None):
    tok = Tokenizer(models.BPE(**(model_kwargs or {})))
    if normalizer is not None:
        tok.normalizer = normalizer
    if pre_tokenizer is not None:
        tok.pre_tokenizer = pre_tokenizer
    if decoder is not None:
        tok.decoder = decoder
    kw = dict(vocab_size=vocab_size, special_tokens=special, show_progress=False, min_frequency=2)
    if alphabet is not None:
        kw["initial_alphabet"] = alphabet
    tok.train_from_iterator(corpus or training_corpus(), trainers.BpeTrainer(**kw))
    return tok


def minimax_post_processor(tok):
    bos = "<beginning_of_sentence>"
    return processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B:1",
                                         special_tokens=[(bos, tok.token_to_id(bos))])


def add_feature_tokens(tok):
    # One added token per matching option the loader must honour.
    tok.add_tokens([
        AddedToken("<think>", normalized=False, special=False),
        AddedToken("</think>", normalized=False, special=False),
        AddedToken("hello_world", single_word=True, normalized=False),
        AddedToken("ÅNGSTRÖM", normalized=True),
    ])
    tok.add_special_tokens([AddedToken("[MASK]", lstrip=True, rstrip=True, normalized=False, special=True)])


def with_json(tok, edit):
    j = json.loads(tok.to_str())
    edit(j)
    return Tokenizer.from_str(json.dumps(j, ensure_ascii=False))


def merges_as_strings(j):
    j["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in j["model"]["merges"]]


def build_tokenizers():
    toks = {}
    byte_alphabet = pre_tokenizers.ByteLevel.alphabet()

    # GPT-4o style: Split(o200k regex, isolated) + ByteLevel without its own regex, NFC, ignore_merges.
    t = train_bpe(normalizers.NFC(),
                  pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(O200K_REGEX), behavior="isolated", invert=False),
                                           pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
                  decoders.ByteLevel(), 4000, MINIMAX_SPECIAL, dict(ignore_merges=True), alphabet=byte_alphabet)
    t.post_processor = minimax_post_processor(t)
    add_feature_tokens(t)
    toks["bpe_gpt4o"] = t
    toks["bpe_gpt4o_string_merges"] = with_json(t, merges_as_strings)

    # GPT-2: ByteLevel with its built-in regex, no normalizer, merges as "a b" strings.
    t = train_bpe(None, pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel(), 3000,
                  MINIMAX_SPECIAL, alphabet=byte_alphabet)
    t.post_processor = processors.ByteLevel(trim_offsets=False)
    toks["bpe_gpt2"] = with_json(t, merges_as_strings)

    def prefix_space(j):
        j["pre_tokenizer"]["add_prefix_space"] = True
        j["decoder"]["add_prefix_space"] = True
    toks["bpe_gpt2_prefix_space"] = with_json(t, prefix_space)

    # Split behaviours on a string and a regex pattern, each followed by ByteLevel without regex.
    def split_variant(pattern, behavior, invert=False):
        def edit(j):
            j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": pattern, "behavior": behavior, "invert": invert},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
        return edit
    toks["split_removed_space"] = with_json(t, split_variant({"String": " "}, "Removed"))
    toks["split_prev_space"] = with_json(t, split_variant({"String": " "}, "MergedWithPrevious"))
    toks["split_next_regex"] = with_json(t, split_variant({"Regex": r"\s+"}, "MergedWithNext"))
    toks["split_contiguous_punct"] = with_json(t, split_variant({"Regex": r"[[:punct:]]"}, "Contiguous"))
    toks["split_invert_words"] = with_json(t, split_variant({"Regex": r"\p{L}+|\p{N}"}, "Isolated", True))

    # Llama-style SentencePiece-as-BPE: normalizer prepends/replaces "▁", byte_fallback, Fuse/Strip decoder.
    llama_norm = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    t = train_bpe(llama_norm, None,
                  decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)]),
                  1500, ["<unk>", "<s>", "</s>"], dict(unk_token="<unk>", fuse_unk=True, byte_fallback=True),
                  corpus=training_corpus(lines=2000))

    def add_byte_tokens(j):
        vocab = j["model"]["vocab"]
        for b in range(256):
            vocab.setdefault(f"<0x{b:02X}>", len(vocab))
    t = with_json(t, add_byte_tokens)
    t.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A </s> $B",
                                                     special_tokens=[("<s>", t.token_to_id("<s>")),
                                                                     ("</s>", t.token_to_id("</s>"))])
    toks["bpe_llama_bytefallback"] = t

    # Metaspace pre-tokenizer + decoder, NFKC + Lowercase, individual digits, a Replace on a regex.
    t = train_bpe(normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase(),
                                        normalizers.Replace(Regex(r"\d{4,}"), "#")]),
                  pre_tokenizers.Sequence([pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always"),
                                           pre_tokenizers.Digits(individual_digits=True)]),
                  decoders.Metaspace(replacement="▁", prepend_scheme="always"), 2000, ["<unk>"],
                  dict(unk_token="<unk>"))
    toks["bpe_metaspace_nfkc"] = t

    # Whitespace + Digits pre-tokenizers, NFD + StripAccents-free, no decoder (tokens joined by spaces), suffix.
    t = train_bpe(normalizers.NFD(), pre_tokenizers.Sequence([pre_tokenizers.Whitespace(),
                                                              pre_tokenizers.Digits(individual_digits=False)]),
                  None, 2000, ["<unk>"], dict(unk_token="<unk>", continuing_subword_prefix="##"))
    toks["bpe_whitespace_nfd"] = t
    return toks


def record_cases(tok, strings):
    cases = []
    for s in strings:
        plain = tok.encode(s, add_special_tokens=False).ids
        special = tok.encode(s, add_special_tokens=True).ids
        cases.append({"ids": plain, "ids_special": special,
                      "decoded": tok.decode(plain, skip_special_tokens=False),
                      "decoded_skip_special": tok.decode(plain, skip_special_tokens=True)})
    return cases


def build_sentencepiece(strings):
    import sentencepiece as spm
    corpus = training_corpus(lines=3000)
    out = {}
    for name, kw in [("spm_unigram", dict(model_type="unigram", vocab_size=800)),
                     ("spm_bpe_bytefallback", dict(model_type="bpe", vocab_size=800, byte_fallback=True,
                                                   character_coverage=0.995))]:
        buf = io.BytesIO()
        spm.SentencePieceTrainer.train(sentence_iterator=iter(corpus), model_writer=buf, minloglevel=2,
                                       max_sentence_length=8192, num_threads=1, **kw)
        model = buf.getvalue()
        sp = spm.SentencePieceProcessor(model_proto=model)
        cases = []
        for s in strings:
            ids = sp.encode(s)
            # Skipping special tokens = transformers' rule for SentencePiece tokenizers: drop control and unknown ids.
            kept = [i for i in ids if not (sp.is_control(i) or sp.is_unknown(i))]
            cases.append({"ids": ids, "ids_special": ([sp.bos_id()] if sp.bos_id() >= 0 else []) + ids,
                          "decoded": sp.decode(ids), "decoded_skip_special": sp.decode(kept)})
        out[name] = (model, cases)
    return out


VL01_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' %}{{ '<beginning_of_sentence>system ai_setting=assistant\\n' }}"
    "{% for item in message['content'] %}{% if item.type == 'image' %}<image>{% elif item.type == 'text' %}{{ item.text }}{% endif %}{% endfor %}"
    "{{ '<end_of_sentence>\\n' }}{% endif %}{% if message['role'] == 'assistant' %}{{ '<beginning_of_sentence>ai name=assistant\\n' }}"
    "{% for item in message['content'] %}{% if item.type == 'image' %}<image>{% elif item.type == 'text' %}{{ item.text }}{% endif %}{% endfor %}"
    "{{ '<end_of_sentence>\\n' }}{% endif %}{% if message['role'] == 'user' %}{{ '<beginning_of_sentence>user name=user\\n' }}"
    "{% for item in message['content'] %}{% if item.type == 'image' %}<image>{% elif item.type == 'text' %}{{ item.text }}{% endif %}{% endfor %}"
    "{{ '<end_of_sentence>\\n' }}{% endif %}{% if message['role'] == 'function' %}{{ '<beginning_of_sentence>system function_response=functions\\n' + "
    "'{\\\"name\\\": \\\"' + message['name'] + '\\\", \\\"response\\\": ' + message['content'][0]['text'] + '}' + '<end_of_sentence>\\n'}}{% endif %}"
    "{% endfor %}{% if tools %}{% for function in tools %}{{ '<beginning_of_sentence>system function_setting=functions\\n' + function | tojson + "
    "'<end_of_sentence>\\n'}}{% endfor %}{% endif %}{% if add_generation_prompt %}{{ '<beginning_of_sentence>ai name=assistant\\n' }}"
    "{% generation %}{% endgeneration %}{% endif %}")

# A Text-01-style template (architecture notes §6): document prefix, optional system block, role headers, a tools
# block; written to exercise the Jinja constructs such templates use (namespace, set, slicing, tests, filters,
# loop variables, whitespace control, comments).
TEXT01_TEMPLATE = """{{- '<begin_of_document>' -}}
{#- system prompt: a string or a list of text parts #}
{%- set ns = namespace(system='') %}
{%- if messages and messages[0]['role'] == 'system' %}
    {%- if messages[0]['content'] is string %}
        {%- set ns.system = messages[0]['content'] | trim %}
    {%- else %}
        {%- for part in messages[0]['content'] if part.type == 'text' %}{% set ns.system = ns.system ~ part.text %}{% endfor %}
    {%- endif %}
    {%- set messages = messages[1:] %}
{%- endif %}
{%- if ns.system != '' %}
{{- '<beginning_of_sentence>system ai_setting=assistant\\n' + ns.system + '<end_of_sentence>\\n' }}
{%- endif %}
{%- if tools is defined and tools is not none and tools | length > 0 %}
{{- '<beginning_of_sentence>system tool_setting=tools\\nYou are provided with these tools:\\n<tools>\\n' }}
    {%- for tool in tools %}
{{- tool | tojson }}{{ '\\n' if not loop.last else '' }}
    {%- endfor %}
{{- '\\n</tools>\\n\\nIf you need to call tools, respond with <tool_calls></tool_calls>.<end_of_sentence>\\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if message.role == 'user' %}{% set header = 'user name=user' %}
    {%- elif message.role == 'assistant' %}{% set header = 'ai name=assistant' %}
    {%- elif message.role == 'tool' %}{% set header = 'tool name=tools' %}
    {%- else %}{{ raise_exception('Unknown role: ' ~ message.role) }}
    {%- endif %}
{{- '<beginning_of_sentence>' ~ header ~ '\\n' }}
    {%- if message.content is string %}
{{- message.content }}
    {%- else %}
        {%- for item in message.content %}
            {%- if item.type == 'image' %}{{ '<image>' }}
            {%- elif item.type == 'text' %}{{ item.text }}
            {%- elif item.type == 'document' %}{{ '[document ' ~ loop.index ~ ': ' ~ item.name | default('untitled') ~ ']\\n' ~ item.text }}
            {%- endif %}
        {%- endfor %}
    {%- endif %}
    {%- if message.tool_calls is defined %}
{{- '<tool_calls>\\n' }}
        {%- for call in message.tool_calls %}
{{- '{"name": "' + call.function.name + '", "arguments": ' + call.function.arguments | tojson + '}\\n' }}
        {%- endfor %}
{{- '</tool_calls>' }}
    {%- endif %}
{{- '<end_of_sentence>\\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<beginning_of_sentence>ai name=assistant\\n' }}
{%- endif %}"""


def conversations():
    img = {"type": "image"}
    txt = lambda t: {"type": "text", "text": t}
    weather_tool = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                                     "parameters": {"type": "object", "properties": {
                                                         "city": {"type": "string", "description": "城市名"}},
                                                         "required": ["city"]}}}
    return [
        {"messages": [{"role": "user", "content": [txt("Hello!")]}], "add_generation_prompt": True},
        {"messages": [{"role": "system", "content": [txt("You are a helpful assistant.")]},
                      {"role": "user", "content": [img, txt("Describe this image.")]}], "add_generation_prompt": True},
        {"messages": [{"role": "user", "content": [img, img, txt("Compare these two.")]},
                      {"role": "assistant", "content": [txt("The first is red; the second is blue.")]},
                      {"role": "user", "content": [txt("Which is larger?\n  Explain.")]}], "add_generation_prompt": True},
        {"messages": [{"role": "user", "content": [txt("中文问题：这是什么？😀")]}], "add_generation_prompt": False},
        {"messages": [{"role": "system", "content": [txt("  padded system  ")]},
                      {"role": "user", "content": [txt("x")]}], "add_generation_prompt": True, "tools": [weather_tool]},
        {"messages": [{"role": "user", "content": [{"type": "document", "name": "report.pdf", "text": "Q3 revenue rose."},
                                                   {"type": "document", "text": "Second doc."}, txt("Summarise.")]}],
         "add_generation_prompt": True},
        {"messages": [{"role": "system", "content": "  string system prompt \n"},
                      {"role": "user", "content": "plain string content"},
                      {"role": "assistant", "content": "",
                       "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
                      {"role": "tool", "content": "{\"temp\": 21}"}], "add_generation_prompt": True,
         "tools": [weather_tool, {"type": "function", "function": {"name": "noop"}}]},
        {"messages": [], "add_generation_prompt": True},
    ]


# Small templates, one Jinja feature each, rendered by transformers' Jinja environment (trim_blocks, lstrip_blocks,
# tojson, raise_exception): the expected outputs of Volt's template engine.
CONSTRUCTS = [
    ("{{ 'a' }}{{ \"b\" }}{{ 1 }}{{ 1.5 }}{{ 1.0 }}{{ true }}{{ none }}{{ [1, 'x', none] }}{{ {'k': 'v'} }}", {}),
    ("{{ x }}|{{ x.y is defined }}|{{ y is defined }}|{{ y | default('dflt') }}|{{ '' | default('e', true) }}", {"x": {"y": 1}}),
    ("{% for m in ms %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.length }}/{{ loop.first }}/{{ loop.last }}/{{ loop.revindex }};{% endfor %}", {"ms": ["a", "b", "c"]}),
    ("{% for m in ms if m != 'b' %}{{ m }}{{ ',' if not loop.last }}{% else %}none{% endfor %}", {"ms": ["a", "b", "c"]}),
    ("{% for m in [] %}x{% else %}empty{% endfor %}", {}),
    ("{% for k, v in d.items() %}{{ k }}={{ v }} {% endfor %}{% for k in d %}{{ k }}{% endfor %}", {"d": {"z": 1, "a": [2], "m": None}}),
    ("{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i > 5 %}{% break %}{% endif %}{{ i }}{% endfor %}", {}),
    ("{% set ns = namespace(n=0, s='') %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.n }} {{ ns.s }}", {}),
    ("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{{ x }}{% endfor %}{{ x }}", {}),
    ("{% set a, b = 1, 'two' %}{{ a }}{{ b }}{% set blk %}inside {{ a }}{% endset %}[{{ blk }}]", {}),
    ("{% macro greet(name, punct='!') %}Hello {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', '?') }} {{ greet(name='C', punct='.') }}", {}),
    ("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 'ab' * 3 }} {{ 10 - 2.5 }}", {}),
    ("{{ 0.0001 }} {{ 0.00001 }} {{ 1e16 }} {{ 1e15 }} {{ 123456789.125 }} {{ 1 / 3 }} {{ -2.5e-7 }} {{ 10 / 4 }} {{ [0.1, 2.5e-7, 1e22] | tojson }} {{ 3.0 | int }} {{ 2 ** 62 }}", {}),
    ("{{ 'x' ~ 1 ~ none }} {{ 'a' + 'b' }} {{ [1] + [2, 3] }} {{ 1 < 2 < 3 }} {{ 'b' > 'a' }} {{ 2 in [1, 2] }} {{ 'el' in 'hello' }} {{ 'k' not in {'k': 1} }}", {}),
    ("{{ s[1:3] }}|{{ s[-2:] }}|{{ s[::-1] }}|{{ l[1:] }}|{{ l[:-1] }}|{{ l[::2] }}|{{ s[0] }}|{{ l[-1] }}", {"s": "héllo wörld", "l": [1, 2, 3, 4, 5]}),
    ("{{ '  pad  ' | trim }}|{{ 'xxhixx' | trim('x') }}|{{ 'Hello' | upper }}|{{ 'Hello' | lower }}|{{ 'hello world' | title }}|{{ 'hELLO' | capitalize }}", {}),
    ("{{ [3, 1, 2] | sort }}|{{ [3, 1, 2] | sort(reverse=true) }}|{{ ['b', 'A', 'c'] | sort }}|{{ [1, 2, 2, 3, 1] | unique | list }}|{{ [1, 2, 3] | reverse | list }}|{{ [4, 9] | max }}|{{ [4, 9] | min }}|{{ [1, 2.5] | sum }}", {}),
    ("{{ items | selectattr('type', 'equalto', 'text') | map(attribute='text') | join(', ') }}|{{ items | rejectattr('type', 'eq', 'text') | list | length }}|{{ items | map(attribute='type') | first }}|{{ items | last }}", {"items": [{"type": "text", "text": "a"}, {"type": "image"}, {"type": "text", "text": "b"}]}),
    ("{{ [1, 2, 3, 4] | select('odd') | list }} {{ [1, 2, 3, 4] | reject('even') | list }} {{ ['a', 'b'] | map('upper') | list }} {{ [0, 1, none, 'x'] | select | list }}", {}),
    ("{{ d | tojson }}|{{ d | tojson(indent=2) }}|{{ 'é\"\n' | tojson }}|{{ [] | tojson }}|{{ {} | tojson }}|{{ 1.5 | tojson }}", {"d": {"b": [1, 2.0, None, True], "a": {"x": "中文"}}}),
    ("{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'x-y-z'.split('-', 1) }}|{{ 'Hi'.startswith('H') }}|{{ 'Hi'.endswith(('x', 'i')) }}|{{ 'aXbX'.replace('X', '.') }}|{{ '  s '.strip() }}|{{ 'xxsxx'.lstrip('x') }}|{{ 'abc'.upper() }}|{{ ', '.join(['a', 'b']) }}|{{ 'hello'.find('l') }}|{{ 'a\nb\r\nc'.splitlines() }}", {}),
    ("{{ d.get('a') }}|{{ d.get('zz', 'fallback') }}|{{ d.get('zz') }}|{{ d.keys() | list }}|{{ d.values() | list }}|{{ d['a'] }}|{{ d.a }}", {"d": {"a": 1, "b": "two"}}),
    ("{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 'x' is string }} {{ 1 is number }} {{ 1 is integer }} {{ 1.0 is float }} {{ none is none }} {{ {} is mapping }} {{ [] is sequence }} {{ 'a' is in 'abc' }} {{ 2 is gt(1) }} {{ x is undefined }} {{ true is boolean }} {{ 'abc' is lower }}", {}),
    ("{{ 'yes' if flag else 'no' }} {{ 'y' if not flag else 'n' }} {{ flag and 'both' }} {{ none or 'dflt' }} {{ 0 or '' or 'last' }}", {"flag": True}),
    ("{{ [1, 2, 3] | length }} {{ 'héllo' | length }} {{ {'a': 1} | count }} {{ '12' | int + 1 }} {{ '2.5' | float }} {{ -3 | abs }} {{ 2.567 | round(2) }} {{ 'x' | string }} {{ 5 | string | length }}", {}),
    ("{{ 'line1\nline2\n\nline4' | indent(2) }}|{{ 'a\nb' | indent(4, true) }}|{{ 'one two  three' | wordcount }}|{{ '<a href=\"x\">' | e }}|{{ {'b': 1, 'a': 2} | dictsort }}|{{ {'x': 1} | items | list }}", {}),
    # Whitespace control and the trim_blocks / lstrip_blocks environment.
    ("line1\n{% if true %}\nkept\n{% endif %}\nline3\n    {% if true %}indented-tag{% endif %}\n  {{ 'expr keeps indent' }}\n", {}),
    ("a  {%- if true -%}  b  {%- endif -%}  c\n{{- ' d ' -}}\n e {# comment #}f\n  {#- trimmed comment -#}  g", {}),
    ("{% for i in range(3) %}\n  item {{ i }}\n{% endfor %}\n{%+ if true %}plus{% endif %}", {}),
    ("{% if true +%}\nkept newline\n{% endif %}\n  {%+ if true +%}\nboth\n{%- endif %}", {}),
    ("{% raw %}{{ not rendered }}{% endraw %}|{{ '{{' }}|{{ \"%}\" }}", {}),
    ("{% if a is defined and a.b is defined and a.b.c > 1 %}deep{% elif a is defined %}shallow{% else %}none{% endif %}", {"a": {"b": {"c": 2}}}),
    ("{% for m in messages %}{% if m.content is string %}{{ m.content }}{% else %}{% for c in m.content %}{{ c.text | default('') }}{% endfor %}{% endif %}{% endfor %}", {"messages": [{"role": "user", "content": "s"}, {"role": "user", "content": [{"text": "l1"}, {"type": "image"}]}]}),
    ("{{ messages[0]['content'][0]['text'] }}|{{ messages[-1].role }}|{{ (messages | length) > 1 }}|{{ messages[1:] | length }}", {"messages": [{"role": "system", "content": [{"text": "sys"}]}, {"role": "user", "content": "u"}]}),
    ("{{ 'caf\u00e9 \x41 \\n' }}|{{ \"it's\" }}|{{ 'say \"hi\"' }}|{{ ['it\\'s'] }}", {}),
    ("{{ loop_count | default(0) + 1 }}{% set items = [1, 2] %}{% for x in items %}{% for y in items %}{{ loop.index }}{% endfor %}{{ loop.index }}|{% endfor %}", {}),
]


def build_chat_fixture():
    from transformers.utils.chat_template_utils import _compile_jinja_template, render_jinja_template
    out = {"templates": {"minimax_vl01": VL01_TEMPLATE, "minimax_text01_style": TEXT01_TEMPLATE}, "cases": [],
           "constructs": [{"template": t, "variables": v, "rendered": _compile_jinja_template(t).render(**v)}
                          for t, v in CONSTRUCTS]}
    for name, template in out["templates"].items():
        for conv in conversations():
            if name == "minimax_vl01" and any(isinstance(m["content"], str) or m["role"] == "tool"
                                              for m in conv["messages"]):
                continue  # the VL-01 template only takes content lists and its own roles
            kwargs = {}
            if "tools" in conv:
                kwargs["tools"] = conv["tools"]
            rendered, _ = render_jinja_template(conversations=[conv["messages"]], chat_template=template,
                                                add_generation_prompt=conv["add_generation_prompt"], **kwargs)
            out["cases"].append({"template": name, "messages": conv["messages"], "tools": conv.get("tools"),
                                 "add_generation_prompt": conv["add_generation_prompt"], "rendered": rendered[0]})
    return out


# Character classes whose meaning differs between Oniguruma (HF tokenizers) and PCRE2 (Volt translates them).
REGEX_CLASSES = [r"\w", r"\W", r"\s", r"\S", r"\d", r"[[:punct:]]", r"[^\s\p{L}\p{N}]", r"[\w\s]", r"\p{L}"]


def regex_class_members():
    """For each class, the code points U+0021..U+2FFFF (no surrogates) that HF's Oniguruma matches, as ranges."""
    from tokenizers import pre_tokenizers as pt
    cps = [c for c in range(0x21, 0x30000) if not 0xD800 <= c <= 0xDFFF]
    text = "".join(map(chr, cps))
    out = []
    for pattern in REGEX_CLASSES:
        kept = set()
        for _, (a, b) in pt.Split(Regex(pattern), behavior="removed").pre_tokenize_str(text):
            kept.update(range(a, b))
        ranges = []
        for i, c in enumerate(cps):
            if i in kept:
                continue
            if ranges and ranges[-1][1] == c - 1:
                ranges[-1][1] = c
            else:
                ranges.append([c, c])
        out.append({"pattern": pattern, "ranges": ranges})
    return out


def whitespace_pre_tokenizer_classes():
    """HF's Whitespace pre-tokenizer runs on Rust's `regex` crate, not Oniguruma: how it treats each code point c in
    "a" + c + "a" (0 = joins the word, 1 = removed as whitespace, 2 = split off as a symbol), as ranges per class."""
    from tokenizers import pre_tokenizers as pt
    ws = pt.Whitespace()
    ranges = {0: [], 1: [], 2: []}
    for c in range(0x21, 0x30000):
        if 0xD800 <= c <= 0xDFFF:
            continue
        n = len(ws.pre_tokenize_str("a" + chr(c) + "a"))
        kind = 0 if n == 1 else 1 if n == 2 else 2
        r = ranges[kind]
        if r and r[-1][1] == c - 1:
            r[-1][1] = c
        else:
            r.append([c, c])
    return {"word": ranges[0], "space": ranges[1], "symbol": ranges[2]}


def normalizer_code_points():
    """HF's Lowercase / NFC / NFKC on every single code point U+0020..U+2FFFF: the ones that change, with results."""
    out = {}
    for name, norm in [("Lowercase", normalizers.Lowercase()), ("NFC", normalizers.NFC()), ("NFKC", normalizers.NFKC())]:
        changed = []
        for c in range(0x20, 0x30000):
            if 0xD800 <= c <= 0xDFFF:
                continue
            r = norm.normalize_str(chr(c))
            if r != chr(c):
                changed.append([c, r])
        out[name] = changed
    return out


def lossy_cases():
    """Byte strings and Python's errors="replace" decode (the same maximal-subpart rule as Rust's from_utf8_lossy)."""
    samples = [b"", b"abc", "é".encode(), "中".encode()[:2], "😀".encode()[:3], b"\xff", b"\xc0\x80", b"\xe0\x80\x80",
               b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"a\xe4\xb8b", b"\xf0\x9f\x98", b"\x80\x80abc\xc3",
               "ok".encode() + "中".encode()[:1] + "é".encode(), b"\xf8\x88\x80\x80\x80", b"\xe2\x82", b"\xc3\xa9\xc3"]
    rng = random.Random(7)
    for _ in range(60):
        s = "".join(rng.choice(["a", "é", "中", "😀", "\n"]) for _ in range(rng.randint(1, 6))).encode()
        cut = bytearray(s[:rng.randint(0, len(s))])
        if cut and rng.random() < 0.5:
            cut[rng.randrange(len(cut))] = rng.randrange(256)
        samples.append(bytes(cut))
    return [{"hex": b.hex(), "decoded": b.decode("utf-8", errors="replace")} for b in samples]


def main():
    os.makedirs(OUT, exist_ok=True)
    strings = test_strings()
    assert len(strings) >= 300, len(strings)
    fixture = {"strings": strings, "tokenizers": {}}
    for name, tok in build_tokenizers().items():
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        j = json.loads(tok.to_str())
        if name == "bpe_gpt2" or name == "bpe_gpt4o_string_merges":
            merges_as_strings(j)  # to_str() re-emits pairs; keep the string form on disk
        with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(j, f, ensure_ascii=False, separators=(",", ":"))
        fixture["tokenizers"][name] = {"kind": "tokenizer.json", "cases": record_cases(tok, strings)}
        print(f"{name}: vocab {tok.get_vocab_size()}", file=sys.stderr)
    for name, (model, cases) in build_sentencepiece(strings).items():
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "tokenizer.model"), "wb") as f:
            f.write(model)
        fixture["tokenizers"][name] = {"kind": "sentencepiece", "cases": cases}
    fixture["lossy_utf8"] = lossy_cases()
    fixture["regex_classes"] = regex_class_members()
    fixture["whitespace_classes"] = whitespace_pre_tokenizer_classes()
    fixture["normalizer_code_points"] = normalizer_code_points()
    with open(os.path.join(OUT, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=False, separators=(",", ":"))
    with open(os.path.join(OUT, "chat_templates.json"), "w", encoding="utf-8") as f:
        json.dump(build_chat_fixture(), f, ensure_ascii=False, indent=1)
    # A model directory for the CLI tests: the GPT-4o-style tokenizer with a chat template in tokenizer_config.json.
    d = os.path.join(OUT, "bpe_gpt4o")
    with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump({"bos_token": "<beginning_of_sentence>", "eos_token": "<end_of_sentence>",
                   "unk_token": "<end_of_document>", "chat_template": VL01_TEMPLATE}, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
