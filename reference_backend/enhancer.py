"""A deterministic, rule-based prompt improver: named techniques chosen from the prompt and its category."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from enum import StrEnum

# Every technique the enhancer knows, in the order it applies them.
TECHNIQUES = (
    "role",
    "context",
    "audience",
    "step_by_step",
    "examples",
    "constraints",
    "output_format",
    "clarify_ambiguity",
)

NO_WORDS = "the prompt has no words to enhance"


class UnenhanceablePrompt(ValueError):
    """The prompt cannot be improved at all; ``reason`` is the text shown on the failed row."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Enhancement:
    """The improved prompt and the techniques applied to it, in the order they appear in ``text``."""

    text: str
    techniques: tuple[str, ...]


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


def _whole_words(*phrases: str) -> tuple[str, ...]:
    """Phrases padded with spaces, matched against the text with punctuation turned into single spaces."""
    return tuple(f" {phrase} " for phrase in phrases)


# Role, format and the ask itself sit at the start or the end of a prompt; the middle of a long one is
# usually material (a pasted document, code) whose words say nothing about what the user wants. Reading
# only the two ends also keeps the cost per prompt bounded however long the prompt is.
_HEAD_CHARS = 600
_TAIL_CHARS = 400
# Prompts at least this long are taken to carry their own context.
_LONG_PROMPT_CHARS = 400
_SHORT_PROMPT_WORDS = 4
_SHORT_PROMPT_CHARS = 40

_ANY_WORD_CHAR = re.compile(r"[^\W_]")
_SEPARATORS = str.maketrans(
    {char: " " for char in string.punctuation if char != "'"}
    | {"\u2019": "'", "\u2018": "'", "\u201c": " ", "\u201d": " ", "\u2013": " ", "\u2014": " "}
    | {"\u2026": " ", "\u00a0": " "}
)

_ROLE_PHRASES = _whole_words(
    "act as",
    "acting as",
    "you are a",
    "you are an",
    "you're a",
    "you're an",
    "pretend to be",
    "pretend you are",
    "imagine you are",
    "the role of",
    "as an expert",
    "as an experienced",
    "as a senior",
    "as a seasoned",
    "as a professional",
    "as a specialist",
)
_CONTEXT_WORDS = _word_set("context background because currently situation i'm we're")
_CONTEXT_PHRASES = _whole_words(
    "working on",
    "i am",
    "we are",
    "our company",
    "our team",
    "our product",
    "our business",
    "my company",
    "my team",
    "my product",
    "my business",
    "my project",
    "my job",
)
_STEP_PHRASES = _whole_words("step by step")
_EXAMPLE_WORDS = _word_set("example examples instance")
# "e.g." reads "e g" once punctuation is gone.
_EXAMPLE_PHRASES = _whole_words("e g", "such as")
_STEP_WORDS = _word_set(
    "explain explaining explanation how why analyse analyze analysis plan planning compare evaluate "
    "solve debug troubleshoot calculate prove derive diagnose reason"
)
_CREATE_WORDS = _word_set("write create generate draft compose design brainstorm invent produce suggest")
_CONSTRAINT_WORDS = _word_set(
    "must should limit maximum minimum max min most least under within avoid without only exactly "
    "words characters sentences don't never"
)
_FORMAT_WORDS = _word_set(
    "list table bullet bullets bulleted json csv markdown yaml xml html paragraph paragraphs format "
    "formatted headings outline essay email tweet poem haiku letter slide slides"
)
_AUDIENCE_WORDS = _word_set(
    "audience reader readers beginner beginners expert experts student students children kids "
    "customer customers client clients developers engineers manager managers executives stakeholders "
    "teenagers parents novice novices layman laypeople"
)


class Domain(StrEnum):
    """The field a prompt belongs to; it picks the wording of the role, context and audience."""

    SOFTWARE = "software"
    DATA = "data"
    MARKETING = "marketing"
    WRITING = "writing"
    EDUCATION = "education"
    BUSINESS = "business"
    HEALTH = "health"
    LEGAL = "legal"
    RESEARCH = "research"
    TRAVEL = "travel"
    DESIGN = "design"
    SUPPORT = "support"
    GENERAL = "general"


@dataclass(frozen=True)
class _DomainText:
    label: str
    role: str
    audience: str


_DOMAIN_TEXT = {
    Domain.SOFTWARE: _DomainText(
        "software development",
        "You are a senior software engineer who writes correct, readable and well-tested code.",
        "developers who will read, run and maintain the result",
    ),
    Domain.DATA: _DomainText(
        "data analysis",
        "You are an experienced data analyst who is careful with numbers and honest about uncertainty.",
        "stakeholders who need the conclusions as well as the numbers",
    ),
    Domain.MARKETING: _DomainText(
        "marketing",
        "You are an experienced marketing strategist and conversion copywriter.",
        "the prospective customers the message is meant to win",
    ),
    Domain.WRITING: _DomainText(
        "writing",
        "You are a skilled writer and editor with a clear, vivid style.",
        "a general adult readership",
    ),
    Domain.EDUCATION: _DomainText(
        "teaching and learning",
        "You are a patient, expert teacher who builds understanding from first principles.",
        "learners meeting the topic for the first time",
    ),
    Domain.BUSINESS: _DomainText(
        "business",
        "You are a seasoned business consultant who gives practical, prioritised advice.",
        "busy decision-makers who need the key points first",
    ),
    Domain.HEALTH: _DomainText(
        "health and wellbeing",
        "You are a knowledgeable health educator who follows mainstream medical guidance.",
        "a lay reader without medical training",
    ),
    Domain.LEGAL: _DomainText(
        "legal",
        "You are a careful legal analyst who explains the law in plain language.",
        "a reader who is not a lawyer",
    ),
    Domain.RESEARCH: _DomainText(
        "scientific research",
        "You are a rigorous scientist who separates established evidence from speculation.",
        "an informed reader who is not a specialist in the field",
    ),
    Domain.TRAVEL: _DomainText(
        "travel planning",
        "You are an experienced travel planner with up-to-date local knowledge.",
        "the travellers who will follow the plan",
    ),
    Domain.DESIGN: _DomainText(
        "product and UX design",
        "You are an experienced product designer who grounds choices in user needs.",
        "the product team who will build the design",
    ),
    Domain.SUPPORT: _DomainText(
        "customer support",
        "You are a friendly, expert customer support specialist.",
        "the customer asking for help",
    ),
    Domain.GENERAL: _DomainText(
        "general-knowledge",
        "You are a knowledgeable expert in the subject of this request.",
        "an intelligent reader who is not a specialist",
    ),
}

_CATEGORY_ALIASES = {
    Domain.SOFTWARE: "code coding programming software development dev engineering devops web",
    Domain.DATA: "data analytics analysis statistics stats data-science ml machine-learning ai",
    Domain.MARKETING: "marketing sales advertising ads seo copywriting social social-media branding",
    Domain.WRITING: "writing creative content blog blogging fiction story storytelling poetry copy",
    Domain.EDUCATION: "education teaching learning school tutoring study training",
    Domain.BUSINESS: "business strategy management finance startup productivity hr operations",
    Domain.HEALTH: "health medical medicine fitness nutrition wellness wellbeing",
    Domain.LEGAL: "legal law compliance contracts",
    Domain.RESEARCH: "research science academic physics chemistry biology",
    Domain.TRAVEL: "travel tourism trip trips",
    Domain.DESIGN: "design ux ui product-design",
    Domain.SUPPORT: "support customer-support customer-service helpdesk service",
}
_CATEGORY_TO_DOMAIN = {alias: domain for domain, aliases in _CATEGORY_ALIASES.items() for alias in aliases.split()}

# Topic words found in the prompt itself, used when the category is missing or unknown.
_TOPIC_WORDS = {
    Domain.SOFTWARE: "code python javascript typescript java rust golang sql function bug debug api "
    "algorithm regex script program programming database backend frontend docker kubernetes git",
    Domain.DATA: "data dataset datasets statistics statistical regression correlation dashboard metrics "
    "spreadsheet excel pandas chart analytics",
    Domain.MARKETING: "marketing campaign ad ads slogan tagline brand seo audience conversion newsletter "
    "landing funnel",
    Domain.WRITING: "story poem essay novel blog article fiction haiku character plot chapter",
    Domain.EDUCATION: "teach lesson students student quiz curriculum homework learn learning exam",
    Domain.BUSINESS: "business startup revenue strategy investors pitch market pricing budget profit management okrs",
    Domain.HEALTH: "health diet exercise workout nutrition sleep symptoms calories fitness meal",
    Domain.LEGAL: "legal law contract clause lawsuit gdpr liability regulation tenant",
    Domain.RESEARCH: "research hypothesis experiment scientific physics chemistry biology quantum study",
    Domain.TRAVEL: "travel trip itinerary flight hotel vacation holiday visit tourist",
    Domain.DESIGN: "design ux ui wireframe prototype usability layout logo",
    Domain.SUPPORT: "customer complaint refund ticket support apology",
}
# A word listed under two domains counts for the first; reversed() makes the first one win the overwrite.
_TOPIC_TO_DOMAIN = {word: domain for domain, words in reversed(_TOPIC_WORDS.items()) for word in words.split()}
_ALL_TOPIC_WORDS = frozenset(_TOPIC_TO_DOMAIN)
_DOMAIN_ORDER = {domain: index for index, domain in enumerate(Domain)}


def enhance(prompt: str, category: str | None = None) -> Enhancement:
    """Improve ``prompt`` with the techniques it lacks; the original text is kept verbatim inside.

    Raises :class:`UnenhanceablePrompt` when the prompt has no letters or digits at all.
    """
    check_enhanceable(prompt)
    words = _scan_window(prompt).split()
    padded = f" {' '.join(words)} "
    vocabulary = frozenset(words)
    domain = _domain_of(category, vocabulary)
    text = _DOMAIN_TEXT[domain]
    asks_for_steps = not _STEP_WORDS.isdisjoint(vocabulary)
    asks_to_create = not _CREATE_WORDS.isdisjoint(vocabulary)

    techniques: list[str] = []
    before: list[str] = []
    after: list[str] = []
    if not _has_phrase(padded, _ROLE_PHRASES):
        techniques.append("role")
        before.append(text.role)
    if (
        len(prompt) < _LONG_PROMPT_CHARS
        and _CONTEXT_WORDS.isdisjoint(vocabulary)
        and not _has_phrase(padded, _CONTEXT_PHRASES)
    ):
        techniques.append("context")
        after.append(
            f"Context: this is a {text.label} request. Draw on what is standard in the field and state "
            "any assumption you make where background is missing."
        )
    if _AUDIENCE_WORDS.isdisjoint(vocabulary):
        techniques.append("audience")
        after.append(f"Audience: write for {text.audience}.")
    if asks_for_steps and not _has_phrase(padded, _STEP_PHRASES):
        techniques.append("step_by_step")
        after.append(
            "Approach: reason through it step by step, making each step explicit, before giving the final answer."
        )
    if asks_to_create and _EXAMPLE_WORDS.isdisjoint(vocabulary) and not _has_phrase(padded, _EXAMPLE_PHRASES):
        techniques.append("examples")
        after.append("Examples: include one or two concrete examples, or offer two contrasting variants.")
    if _CONSTRAINT_WORDS.isdisjoint(vocabulary):
        techniques.append("constraints")
        after.append(
            "Constraints: be accurate and specific, say when you are unsure instead of guessing, and leave out filler."
        )
    if _FORMAT_WORDS.isdisjoint(vocabulary):
        techniques.append("output_format")
        after.append(f"Output format: {_output_format(domain, asks_for_steps, asks_to_create)}")
    if len(words) <= _SHORT_PROMPT_WORDS and len(prompt.strip()) < _SHORT_PROMPT_CHARS:
        techniques.append("clarify_ambiguity")
        after.append(
            "Clarity: the request is brief. If it could mean several things, pick the most likely "
            "reading and say which, or ask one clarifying question first."
        )

    if not techniques:
        return Enhancement(text=prompt, techniques=())
    parts = [*before, prompt]
    if after:
        parts.append("\n".join(after))
    return Enhancement(text="\n\n".join(parts), techniques=tuple(techniques))


def check_enhanceable(prompt: str) -> None:
    """Raise :class:`UnenhanceablePrompt` for a prompt without a single letter or digit."""
    if not _ANY_WORD_CHAR.search(prompt):
        raise UnenhanceablePrompt(NO_WORDS)


def _scan_window(prompt: str) -> str:
    """The lowercased ends of the prompt with punctuation turned into spaces."""
    if len(prompt) > _HEAD_CHARS + _TAIL_CHARS:
        prompt = f"{prompt[:_HEAD_CHARS]} {prompt[-_TAIL_CHARS:]}"
    return prompt.lower().translate(_SEPARATORS)


def _has_phrase(padded: str, phrases: tuple[str, ...]) -> bool:
    return any(phrase in padded for phrase in phrases)


def _domain_of(category: str | None, vocabulary: frozenset[str]) -> Domain:
    if category:
        key = "-".join(category.lower().replace("_", " ").split())
        if key in _CATEGORY_TO_DOMAIN:
            return _CATEGORY_TO_DOMAIN[key]
    hits: dict[Domain, int] = {}
    for word in vocabulary & _ALL_TOPIC_WORDS:
        domain = _TOPIC_TO_DOMAIN[word]
        hits[domain] = hits.get(domain, 0) + 1
    if not hits:
        return Domain.GENERAL
    return min(hits, key=lambda domain: (-hits[domain], _DOMAIN_ORDER[domain]))


def _output_format(domain: Domain, asks_for_steps: bool, asks_to_create: bool) -> str:
    if domain is Domain.SOFTWARE and asks_to_create:
        return "one fenced code block, followed by a short explanation of how it works."
    if asks_to_create:
        return "the finished piece first, then one line on the choices you made."
    if asks_for_steps:
        return "short sections with headings, and numbered steps where order matters."
    return "a direct answer first, then the supporting points as a short bulleted list."
