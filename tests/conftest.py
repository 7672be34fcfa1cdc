"""Shared fixtures: tokenizers trained on the fly and tiny random models saved to disk, so the
real loading code runs in milliseconds; the development corpus when it lies beside the clone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.helpers import DOCS, bucket_fs, free_port, stop
from tests.servers import dask_cluster_factory, postgres, postgres_catalog, prefect_server_env  # noqa: F401

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_configure(config: pytest.Config) -> None:
    """Prefect's logging set up once, before any test: its first setup closes every live log
    handler (dictConfig), and one a library bound to a test's captured stderr (absl, by way of
    rouge_score) would then close that capture under pytest. In-process CLI tests set it up."""
    from prefect.logging.configuration import setup_logging

    setup_logging()


# CI explores the same examples every time (a red CI must be reproducible); a developer's run
# explores new ones, and LONGDOC_HYPOTHESIS=deep explores many.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.register_profile("deep", max_examples=3000, deadline=None)
settings.load_profile(os.environ.get("LONGDOC_HYPOTHESIS", "ci" if os.environ.get("CI") else "dev"))

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"

TRAINING_TEXT = [
    "The committee met on Tuesday to discuss the budget. Members asked for more detail!",
    "A remote control needs buttons, a battery and a case. The designer drew three options.",
    "Speech recognition models were trained on meetings; the error rate fell by ten percent.",
    "Libraries lend books, run reading groups and teach adults to read. Visits rose again.",
    "The database ran out of disk space at 02:14 and the team restored service by 04:51.",
    "Émile wrote naïve café notes — with “quotes”, ellipses… and numbers like 3.14 or 1,000.",
    "東京で会議がありました。予算について話しました！ ภาษาไทยไม่มีช่องว่าง 😀👍🏽 👨‍👩‍👧",
] * 20

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def wordpiece_tokenizer():
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(TRAINING_TEXT, trainers.WordPieceTrainer(vocab_size=400, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def byte_bpe_tokenizer(template: str | None = None):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "</s>", "<pad>", "<|im_start|>", "<|im_end|>", "<|endoftext|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(TRAINING_TEXT, trainer)
    if template == "bart":
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>" if template == "bart" else "<|im_end|>",
        pad_token="<pad>",
    )


def unigram_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=300, special_tokens=["<pad>", "<unk>", "</s>"], unk_token="<unk>")
    tok.train_from_iterator(TRAINING_TEXT, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="</s>")


def document_row(doc_id: str, text: str) -> dict:
    """A `documents` row as ingest writes it, for tests of the storage layer."""
    from datetime import UTC, datetime

    return {
        "doc_id": doc_id,
        "source_uri": f"file:///{doc_id}.txt",
        "format": "txt",
        "title": doc_id,
        "text": text,
        "n_chars": len(text),
        "content_sha256": "0" * 64,
        "ingested_at": datetime.now(UTC),
        "metadata": "{}",
    }


def _save(model, tokenizer, path: Path) -> str:
    import torch

    torch.manual_seed(0)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_bert_classifier(tmp_path_factory: pytest.TempPathFactory) -> str:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = wordpiece_tokenizer()
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=128,
        num_labels=3,
        id2label={0: "alpha", 1: "beta", 2: "gamma"},
        label2id={"alpha": 0, "beta": 1, "gamma": 2},
    )
    return _save(BertForSequenceClassification(config), tokenizer, tmp_path_factory.mktemp("bert-cls"))


@pytest.fixture(scope="session")
def tiny_embedder(tmp_path_factory: pytest.TempPathFactory) -> str:
    import torch
    from transformers import BertConfig, BertModel

    tokenizer = wordpiece_tokenizer()
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=96,
    )
    return _save(BertModel(config), tokenizer, tmp_path_factory.mktemp("bert-embed"))


@pytest.fixture(scope="session")
def tiny_bart(tmp_path_factory: pytest.TempPathFactory) -> str:
    import torch
    from transformers import BartConfig, BartForConditionalGeneration

    tokenizer = byte_bpe_tokenizer("bart")
    torch.manual_seed(0)
    config = BartConfig(
        vocab_size=len(tokenizer),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
        forced_eos_token_id=None,
    )
    model = BartForConditionalGeneration(config)
    model.final_logits_bias[0, tokenizer.eos_token_id] = -5.0  # random weights would stop at once
    return _save(model, tokenizer, tmp_path_factory.mktemp("bart"))


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> str:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = byte_bpe_tokenizer()
    tokenizer.chat_template = CHATML
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return _save(LlamaForCausalLM(config), tokenizer, tmp_path_factory.mktemp("llama"))


@pytest.fixture
def corpus() -> Path:
    """The development corpus (../shared/corpus); CI always has it, a user's clone may not."""
    if not CORPUS.is_dir():
        pytest.skip("development corpus ../shared/corpus is absent")
    return CORPUS


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """An S3-compatible server (moto) in its own process; the environment that reaches it."""
    port = free_port()
    log_dir = tmp_path_factory.mktemp("moto")
    log = (log_dir / "moto.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log
    )
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                bucket_fs(env, create=True).create_dir("longdoc-test")
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError((log_dir / "moto.log").read_text()[-2000:]) from None
                time.sleep(0.5)
        for name, text in DOCS.items():
            with bucket_fs(env).open_output_stream(f"longdoc-test/inbox/{name}") as out:
                out.write(text.encode())
        yield env
    finally:
        stop(process)
        log.close()
