"""The rule-based enhancer: technique selection, determinism, the original kept verbatim, speed."""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_backend.enhancer import NO_WORDS, TECHNIQUES, UnenhanceablePrompt, enhance

pytestmark = pytest.mark.area("Enhancer and provider")

LOREM = "Explain why our data code fails, then write a short story: the quick brown fox's report."
FULLY_SPECIFIED = (
    "I want you to act as a travel guide. We are a family of four because my parents visit in May. "
    "For the kids, suggest three museums in Rome, for example the Vatican, as a bulleted list under 80 words."
)


@pytest.mark.parametrize(
    ("prompt", "category"),
    [
        ("python", "coding"),
        ("Explain how TCP handshakes work", None),
        ("Write a tagline for our coffee shop", "Marketing"),
        ("  leading and trailing whitespace\n", None),
        ("multi\nline\r\nprompt with \"quotes\" and 'apostrophes'", "writing"),
        ("写一首关于秋天的诗", None),
        ("שלום, explain the weather 👩‍👩‍👧 e\u0301", "education"),
        (FULLY_SPECIFIED, None),
    ],
    ids=[
        "one-word",
        "explain",
        "tagline",
        "whitespace",
        "multiline",
        "cjk",
        "rtl-emoji-combining",
        "complete",
    ],
)
def test_enhance_keeps_the_original_verbatim_and_is_deterministic(prompt: str, category: str | None) -> None:
    first = enhance(prompt, category)
    assert prompt in first.text
    assert enhance(prompt, category) == first
    assert set(first.techniques) <= set(TECHNIQUES)
    assert list(first.techniques) == sorted(first.techniques, key=TECHNIQUES.index)


@given(prompt=st.text(min_size=1, max_size=300).filter(lambda text: any(c.isalnum() for c in text)))
@settings(max_examples=200, deadline=None, database=None)
def test_enhance_of_any_text_with_a_word_contains_it(prompt: str) -> None:
    result = enhance(prompt, None)
    assert prompt in result.text
    assert result == enhance(prompt, None)


def test_enhance_adds_a_role_fitting_the_category() -> None:
    assert "software engineer" in enhance("Make this faster", "coding").text
    assert "marketing" in enhance("Make this faster", "marketing").text
    assert "travel planner" in enhance("Make this faster", "Travel").text


def test_enhance_infers_the_role_from_the_topic_without_a_category() -> None:
    result = enhance("Fix the bug in this Python function that parses dates")
    assert "role" in result.techniques
    assert "software engineer" in result.text


def test_enhance_with_an_unknown_category_falls_back_to_the_topic() -> None:
    assert "data analyst" in enhance("Build a dashboard of these metrics", "misc stuff").text


@pytest.mark.parametrize(
    "prompt",
    [
        "I want you to act as a Linux terminal and run ls",
        "You are a senior chef. Plan a menu.",
        "Pretend to be a pirate and say hello",
        "As an expert gardener, list spring tasks",
    ],
)
def test_enhance_skips_the_role_when_the_prompt_has_one(prompt: str) -> None:
    assert "role" not in enhance(prompt).techniques


@pytest.mark.parametrize(
    "prompt",
    [
        "Explain recursion",
        "How do vaccines work?",
        "Why is the sky blue?",
        "Analyse the causes of the 2008 crisis",
        "Plan a week of meals",
    ],
)
def test_enhance_asks_for_steps_on_reasoning_prompts(prompt: str) -> None:
    result = enhance(prompt)
    assert "step_by_step" in result.techniques
    assert "step by step" in result.text


def test_enhance_does_not_ask_for_steps_twice_or_on_plain_requests() -> None:
    assert "step_by_step" not in enhance("Explain recursion step-by-step").techniques
    assert "step_by_step" not in enhance("Translate 'good morning' into French").techniques


@pytest.mark.parametrize("verb", ["Write", "Create", "Generate", "Draft", "Brainstorm"])
def test_enhance_asks_for_examples_on_creative_prompts(verb: str) -> None:
    assert "examples" in enhance(f"{verb} a slogan for a bakery").techniques


def test_enhance_skips_examples_when_the_prompt_gives_some() -> None:
    assert "examples" not in enhance("Write slogans, e.g. 'Fresh every day', for a bakery").techniques
    assert "examples" not in enhance("Summarise this article").techniques


@pytest.mark.parametrize("prompt", ["python", "help", "fix it", "写诗"])
def test_enhance_asks_to_clarify_very_short_prompts(prompt: str) -> None:
    assert "clarify_ambiguity" in enhance(prompt).techniques


def test_enhance_does_not_ask_to_clarify_a_full_sentence() -> None:
    assert "clarify_ambiguity" not in enhance("Summarise the plot of Hamlet in plain words").techniques


@pytest.mark.parametrize(
    ("prompt", "technique"),
    [
        ("Summarise Hamlet because I have an exam", "context"),
        ("I am a nurse. Summarise the new guidance", "context"),
        ("Summarise Hamlet for beginners", "audience"),
        ("Summarise Hamlet in under 100 words", "constraints"),
        ("Summarise Hamlet, and avoid spoilers", "constraints"),
        ("Summarise Hamlet as a table", "output_format"),
        ("Summarise Hamlet in JSON", "output_format"),
    ],
)
def test_enhance_skips_a_technique_the_prompt_already_covers(prompt: str, technique: str) -> None:
    assert technique not in enhance(prompt).techniques
    assert technique in enhance("Summarise Hamlet").techniques


def test_enhance_of_a_fully_specified_prompt_changes_nothing() -> None:
    result = enhance(FULLY_SPECIFIED)
    assert result.techniques == ()
    assert result.text == FULLY_SPECIFIED


def test_enhance_reads_the_ask_at_the_end_of_a_long_pasted_text() -> None:
    pasted = "lorem ipsum dolor sit amet " * 200
    result = enhance(f"{pasted}\n\nExplain why this text repeats.")
    assert "step_by_step" in result.techniques
    assert "context" not in result.techniques


@pytest.mark.parametrize(
    "prompt",
    ["!!!", "🙂🙂", "", "   \n\t", "___", "\u0301\u0301", "— … ?!", "👩‍👩‍👧"],
    ids=["bangs", "emoji", "empty", "whitespace", "underscores", "combining", "punctuation", "zwj"],
)
def test_enhance_refuses_a_prompt_without_letters_or_digits(prompt: str) -> None:
    with pytest.raises(UnenhanceablePrompt) as raised:
        enhance(prompt)
    assert raised.value.reason == NO_WORDS == "the prompt has no words to enhance"


@pytest.mark.parametrize("prompt", ["42", "é", "名", "!!!a"])
def test_enhance_accepts_a_single_letter_or_digit(prompt: str) -> None:
    assert prompt in enhance(prompt).text


def test_enhance_of_1000_long_prompts_is_fast() -> None:
    rng = random.Random(7)
    words = LOREM.split()
    prompts = [" ".join(rng.choice(words) for _ in range(400))[:2000] for _ in range(1000)]
    started = time.thread_time()  # CPU time: unaffected by other processes on the machine
    for prompt in prompts:
        enhance(prompt, "coding")
    # A sanity bound only; the design target is well under 100 ms on a laptop.
    assert time.thread_time() - started < 1.0
