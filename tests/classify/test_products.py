"""Product tagging: the names, and the false friends the issue lists."""

from __future__ import annotations

import pytest

from classify.products import brand_product, tag_products


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Claude refused to summarize a court ruling", ["claude"]),
        ("cancel ChatGPT and come to Claude", ["claude", "chatgpt"]),
        ("GPT-4o keeps lecturing me", ["chatgpt"]),
        ("Grok answered in two seconds", ["grok"]),
        ("switching to grok, it won't refuse", ["grok"]),
        ("Gemini 2.5 Pro deleted my notes", ["gemini"]),
        ("Google Bard said no", ["gemini"]),
        ("Running Llama 3 locally, no refusals", ["llama"]),
        ("Mistral Large is fine for this", ["mistral"]),
        ("Le Chat answered it", ["mistral"]),
        ("GitHub Copilot wrote half my tests", ["copilot"]),
        ("asked Perplexity for sources", ["perplexity"]),
        ("Perplexity AI cites its sources", ["perplexity"]),
        ("DeepSeek R1 answered straight away", ["deepseek"]),
        ("Qwen2.5 is underrated", ["qwen"]),
        ("character.ai wiped my bots", ["other"]),
    ],
)
def test_names_products(text: str, expected: list[str]) -> None:
    assert tag_products(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "I finally grok how closures work",
        "it took me a week to grok the borrow checker",
        "grokking transformers is a fun paper",
        "Typical Gemini, can't pick a restaurant. Gemini season is chaos",
        "As a Gemini I change my mind twice a day, ask my horoscope",
        "Listening to Claude Debussy's Clair de lune tonight",
        "Claude Monet painted the same haystack thirty times",
        "The copilot took over when the captain felt ill during the flight",
        "the mistral was blowing so hard in Provence we stayed in",
        "We saw a llama at the zoo and it spat at my brother",
        "To my perplexity, the bus never came",
        "Much perplexity in the meeting today.",
    ],
)
def test_false_friends_are_not_products(text: str) -> None:
    assert tag_products(text) == []


def test_brand_author_and_mentions() -> None:
    assert tag_products("we'll finish it for you", author_handle="@Grok") == ["grok"]
    assert tag_products("happy to help", author_handle="acme", registry={"acme": "other"}) == [
        "other"
    ]
    assert tag_products("@AnthropicAI why was my chat deleted") == ["claude"]
    assert brand_product("nobody") is None


def test_stable_order_and_empty() -> None:
    assert tag_products("Grok vs Claude vs ChatGPT") == ["claude", "chatgpt", "grok"]
    assert tag_products("") == []
